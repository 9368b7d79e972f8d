"""Extraction benchmark: speed and identity against each model's reference code, and memory.

Runs benchmarks/speed.py (our batched, streaming path against the reference per-clip paths:
throughput, identity of the embeddings, FLOPs, roofline), benchmarks/memory.py (peak RSS
on a corpus and on one ten times larger) and benchmarks/layers.py (`layers: all` against
`last`), on one machine in one run; prints the tables and writes one JSON file. Every
measured run has a spawned process of its own (benchmarks/harness.py says why).

    python -m benchmarks.extract [--clips 8] [--models byola panns vggish] [--threads N]
        [--batch-sizes 4 8] [--memory-scale small|full] [--out benchmarks/results/extract.json]
    python -m benchmarks.extract --models mert clap muq --hub-size full [--device auto]  # hub
    python -m benchmarks.extract --layers-only [--layer-clips 16] [--layer-rounds 5]
        # only layers: all vs last (default --out benchmarks/results/extract-layers.json)
    python -m benchmarks.extract --all   # every model, hub ones at full size: the whole story

(`python benchmarks/extract.py ...` runs the same.)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

if not __package__:   # run as a script: make `benchmarks` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import CORPUS_RATE_HZ, SEED
from benchmarks.layers import format_layers_table, measure_layers
from benchmarks.memory import MEMORY_SCALES, measure_memory
from benchmarks.references import HUB_SIZES
from benchmarks.speed import (
    ALL_MODELS,
    CLIP_SECONDS,
    NEURAL_MODELS,
    TOLERANCE,
    check_identity,
    measure_speed,
    timed_runs,
)


def machine_info(threads: int, device: str) -> dict[str, Any]:
    from mgc.extractors.neural import resolve_device

    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu_model = next((line.split(":", 1)[1].strip() for line in
                          cpuinfo.read_text().splitlines() if line.startswith("model name")), "")
    return {"cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model, "torch_threads": threads,
            "device": str(resolve_device(device)),
            "torch_version": version("torch"), "python_version": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": list(os.getloadavg())}


NOTES = {
    "roofline": "matmul_gflops is torch's fp32 matmul (MKL's sgemm), the issue's denominator; "
                "on AMD CPUs MKL takes its AVX2 path, and oneDNN's fp32 GEMM "
                "(onednn_matmul_gflops) runs 2.2-2.4x faster on the same cores, so a path "
                "whose linear layers go through oneDNN can pass 100 % of it; "
                "best_probe_fraction is against the fastest probe, oneDNN's included",
    "where_the_time_went": "torch.profiler, 1 thread, CPU time, before this change: CLAP "
                           "(HTSAT-base) 71 % addmm (MKL), 4 % layout copies (window "
                           "partition/reverse, permutes), 6 % bmm+softmax of the eager window "
                           "attention, 15 % of the clip in the processor's numpy front end; "
                           "at 2 threads the copies and the front end, which scale worse, "
                           "took 23 % and more. MERT: 46 % addmm, 42 % the conv feature "
                           "encoder (oneDNN), 5 % fused attention. MuQ: 44 % convs (the "
                           "subsampling holds 62 % of its FLOPs), 33 % addmm, 9 % eager "
                           "attention (bmm, softmax, mul), 2.5 % BatchNorm, 5 % pointwise "
                           "convs on torch's slow path. BYOL-A: 59 % addmm (its fc). PANNs "
                           "and VGGish: frozen oneDNN conv stacks, 96 % and 75 %",
    "levers": "linear layers through oneDNN (mgc/extractors/kernels.py); windows of every "
              "clip batched, 30 s of audio per forward pass; fused attention "
              "(scaled_dot_product_attention: MERT, MuQ, and CLAP's window attention with "
              "its relative position bias and shift mask as the additive mask); MuQ's "
              "BatchNorms folded and its subsampling frozen; memory: conv stacks one clip "
              "at a time, one batch decoded ahead, each clip held once",
}


def format_table(models: dict[str, dict[str, Any]]) -> str:
    header = (f"{'model':<7} {'ours s/clip':>11} {'ref s/clip':>10} {'speedup':>7} "
              f"{'GFLOP/s ours':>12} {'GFLOP/s ref':>11} {'roof ours':>9} {'roof ref':>8} "
              f"{'RSS ours MB':>11} {'RSS ref MB':>10} {'RSS ratio':>9} {'max|diff|':>9} "
              f"{'GTZAN h':>7} {'FMA-small h':>11}")
    rows = [header, "-" * len(header)]
    for name, m in models.items():
        ours, ref = m["ours"], m["reference"]
        hours = m["projected_hours"]
        rows.append(
            f"{name:<7} {ours['s_per_clip']:>11.3f} {ref['s_per_clip']:>10.3f} "
            f"{m['speedup']:>6.2f}x {ours['gflops']:>12.1f} {ref['gflops']:>11.1f} "
            f"{ours['roofline_fraction']:>9.1%} {ref['roofline_fraction']:>8.1%} "
            f"{ours['peak_rss_mb']:>11.0f} {ref['peak_rss_mb']:>10.0f} "
            f"{m['peak_rss_ratio']:>8.2f}x {m['max_abs_diff']:>9.1e} "
            f"{hours['gtzan']['ours']:>7.2f} {hours['fma_small']['ours']:>11.1f}")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="30 s clips to extract (default 8)")
    parser.add_argument("--models", nargs="+", choices=ALL_MODELS, default=list(NEURAL_MODELS),
                        help="default: the paper's three; mert, clap and muq (tiny random hub "
                             "snapshots, needs mgc[hf]; muq's reference needs `make`'s "
                             ".venv/muq-reference) when named")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads in every path (default: all usable cores)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8],
                        help="batch sizes to try on our path; the fastest is reported")
    parser.add_argument("--hub-size", choices=HUB_SIZES, default="tiny",
                        help="mert/clap/muq random snapshots: tiny (tests) or full (the published "
                             "architectures' sizes, for timings)")
    parser.add_argument("--memory-scale", choices=tuple(MEMORY_SCALES), default="small",
                        help="small: 20 vs 200 clips of 3 s; full: 100 vs 1000")
    parser.add_argument("--device", default="cpu",
                        help="our path's device: cpu (default), cuda or auto; the reference "
                             "paths and the roofline are always CPU")
    parser.add_argument("--layers-only", action="store_true",
                        help="measure only layers: all against last (neural models), at the "
                             "first of --batch-sizes")
    parser.add_argument("--layer-clips", type=int, default=16,
                        help="30 s clips in each round of layers: all against last (default "
                             "16: BYOL-A's 8 clips take half a second, and such rounds "
                             "varied by ±7 %%)")
    parser.add_argument("--layer-rounds", type=int, default=5,
                        help="alternating rounds of last and all (default 5)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default benchmarks/results/extract.json (extract-layers.json "
                             "with --layers-only)")
    parser.add_argument("--all", action="store_true",
                        help="every model (the hub ones at --hub-size full): the one command "
                             "for a quiet machine")
    args = parser.parse_args(argv)
    if args.all:
        args.models, args.hub_size = list(ALL_MODELS), "full"
    if args.out is None:
        args.out = Path("benchmarks/results/extract-layers.json" if args.layers_only
                        else "benchmarks/results/extract.json")
    if min(args.clips, args.layer_clips, args.layer_rounds, args.threads,
           *args.batch_sizes) < 1:
        parser.error("--clips, --layer-clips, --layer-rounds, --threads and --batch-sizes "
                     "must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON; exit non-zero if our embeddings
    differ from the reference's by TOLERANCE or more (the JSON is written first, as evidence)."""
    from mgc.atomic import write_json

    args = parse_args(argv)
    machine = machine_info(args.threads, args.device)
    layered = [model for model in args.models if model in NEURAL_MODELS]
    with tempfile.TemporaryDirectory(prefix="mgc-bench-extract-") as temp:
        root = Path(temp)
        layers = measure_layers(root, layered, args.layer_clips, CLIP_SECONDS,
                                args.batch_sizes[0], args.threads,
                                args.layer_rounds) if layered else None
        if args.layers_only:
            machine["load_average_at_end"] = list(os.getloadavg())
            write_json(args.out, {"machine": machine, "layers": layers})
            print(format_layers_table(layers) if layers else "no neural model to measure")
            print(f"wrote {args.out}")
            return {"machine": machine, "layers": layers}
        roofline, models = measure_speed(root, args.models, args.clips, args.batch_sizes,
                                         args.threads, args.device, args.hub_size)
        memory = measure_memory(root / "memory", args.memory_scale, args.threads)
    machine["load_average_at_end"] = list(os.getloadavg())
    results = {"machine": machine,
               "setup": {"clips": args.clips, "clip_seconds": CLIP_SECONDS,
                         "corpus": f"GTZAN-like .au, {CORPUS_RATE_HZ} Hz mono PCM_16 "
                                   "(mgc.datasets.synthesis.render_clip)",
                         "batch_sizes": args.batch_sizes, "weights": f"random, seed {SEED}",
                         "hub_size": args.hub_size,
                         "tolerance": TOLERANCE,
                         "timing": "wall clock from the loaded model to the last vector "
                                   "(ours: to the final Parquet file), decode included, after "
                                   "one untimed warm-up clip on each path (numba JIT of "
                                   "resampy, lazy imports, oneDNN set-up)",
                         "notes": NOTES,
                         "gflops": "each path's own torch FLOPs per clip (FlopCounterMode) / "
                                   "its s per clip; roofline_fraction = that / matmul "
                                   "GFLOP/s, best_probe_fraction = that / the fastest probe"},
               "roofline": roofline, "models": models, "memory": memory, "layers": layers}
    write_json(args.out, results)
    print(format_table(models))
    probes = [run["matmul_gflops_at_start"] for run in timed_runs(models)]
    print(f"roofline: matmul {roofline['matmul_gflops']:.0f} GFLOP/s (MKL sgemm; probes before "
          f"the timed runs: {min(probes):.0f}-{max(probes):.0f}), oneDNN fp32 GEMM "
          f"{roofline['onednn_matmul_gflops']:.0f}, conv 3x3 {roofline['conv_gflops']:.0f} "
          f"GFLOP/s (channels_last {roofline['conv_channels_last_gflops']:.0f}); load average "
          f"{machine['load_average_at_start'][0]:.1f} at start, "
          f"{machine['load_average_at_end'][0]:.1f} at end")
    for name, result in models.items():
        if "at_identity" in result:
            same = result["at_identity"]
            print(f"{name} at identical outputs ({same['clip_seconds']:g} s clips, in memory): "
                  f"ours {same['ours_s_per_clip']:.3f} s/clip, reference "
                  f"{same['reference_s_per_clip']:.3f}, {same['speedup']:.2f}x")
        hours = result["projected_hours"]
        above = result.get("peak_rss_above_libraries_ratio")
        print(f"{name}: peak RSS {result['peak_rss_ratio']:.2f}x the reference's"
              + (f" ({above:.2f}x above the libraries each path imports before its model)"
                 if above is not None else "") + "; GTZAN (1,000 "
              f"clips) {hours['gtzan']['ours']:.2f} h (reference "
              f"{hours['gtzan']['reference']:.2f} h), FMA-small (8,000) "
              f"{hours['fma_small']['ours']:.1f} h ({hours['fma_small']['reference']:.1f} h)")
    print(f"memory: peak RSS {memory['small']['peak_rss_mb']:.0f} MB on "
          f"{memory['small']['clips']} clips, {memory['large']['peak_rss_mb']:.0f} MB on "
          f"{memory['large']['clips']} (x{memory['ratio']:.3f})")
    if layers:
        print(format_layers_table(layers))
    print(f"wrote {args.out}")
    check_identity(models)
    return results


if __name__ == "__main__":
    main()
