"""Ray scaling benchmark: clips/s of local extraction and of the Ray engine with 1 and 2
workers, the scaling efficiency, the driver's own cost per clip, and from those the wall
time FMA-large would take on N workers.

Each configuration runs in a spawned process of its own (benchmarks/harness.py), on the same
synthetic 30 s clips and random weights, every process and worker with one compute thread
(so 1 and 2 workers compare like for like, and the workers take the driver's counts:
mgc.ray_extraction). With no `--address` each Ray run starts its own Ray on 127.0.0.1.

- a worker's steady rate: its clips over its tasks' seconds, its first task (the model's
  warm-up) left out; the rate of a run is the sum over its workers;
- wall rate: clips over the run's wall time from start-up (Ray, actors, models) to the
  last result written;
- scaling efficiency: the 2-worker rate over twice the 1-worker rate;
- driver overhead per clip: the driver's time between start-up and the last result that it
  did not spend waiting on workers (reading and sending audio, receiving, writing parts),
  per clip; the driver alone cannot go faster than one clip per overhead, whatever the
  workers;
- projection: FMA-large's 106,574 clips over min(N x rate(1) x efficiency, 1/overhead),
  for this model and, scaled by seconds per clip, for MERT at 3.2 s per clip (issue #27).

    python -m benchmarks.ray_scaling [--clips 48] [--model byola] [--address host:port]
        [--device cuda --gpus-per-worker 0.5] [--out benchmarks/results/ray_scaling.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if not __package__:   # run as a script: make `benchmarks` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import OPTIONS, in_subprocess, progress, render_corpus

FMA_LARGE_CLIPS = 106_574
MERT_S_PER_CLIP = 3.2
"""MERT on this machine's CPU, per 30 s clip (issue #27)."""
WORKER_COUNTS = (1, 2, 4, 8, 16, 32, 64)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CLIP_SECONDS = 30.0
BATCH_SIZE = 1
MODELS = ("byola", "panns", "vggish", "mfcc")


def extractor_options(model: str, device: str) -> dict[str, Any]:
    """Random weights on `device` (mfcc has none, and runs on the CPU)."""
    if model == "mfcc":
        return {"weights": "none"}
    return {"weights": "random", "device": device, **OPTIONS[model]}


def extraction_job(model: str, raw_dir: Path, tracks: list[tuple[str, str]], out_path: Path,
                   workers: int, address: str | None, device: str,
                   gpus_per_worker: float) -> dict[str, Any]:
    """One configuration, timed from a built extractor to the final file: `workers` 0 is
    local extraction (warmed up, as benchmarks/speed.py does); otherwise the Ray engine."""
    import functools

    import numpy as np
    import pandas as pd
    import torch

    from mgc import extractors
    from mgc.audio import fit_length, load_audio
    from mgc.embeddings import clip_samples, extract_embeddings
    from mgc.ray_extraction import RayEngine, RayOptions

    torch.set_num_threads(1)
    options = extractor_options(model, device)
    extractor = extractors.load(model, **options)
    n_samples = clip_samples("full", CLIP_SECONDS, extractor.sample_rate)
    engine = None
    if workers:
        # Tasks of up to 4 clips, at least 2 per worker: a worker's first is its warm-up.
        engine = RayEngine(RayOptions(address=address, workers=workers, cpus_per_worker=1.0,
                                      gpus_per_worker=gpus_per_worker,
                                      clips_per_task=max(1, min(4, len(tracks) // 4))),
                           functools.partial(extractors.load, model, **options))
    else:
        warm_up = fit_length(load_audio(raw_dir / tracks[0][1], extractor.sample_rate),
                             n_samples)
        for _ in range(2):
            extractor.embed(warm_up[None])
    started = time.perf_counter()
    report = extract_embeddings(pd.DataFrame(tracks, columns=["track_id", "path"]), raw_dir,
                                extractor, out_path, n_samples=n_samples,
                                metadata={**extractor.describe(), "clip": "full"},
                                batch_size=BATCH_SIZE, engine=engine, progress=False)
    wall = time.perf_counter() - started
    if report.n_embedded != len(tracks):
        raise RuntimeError(f"embedded {report.n_embedded} of {len(tracks)} clips")
    if engine is None:
        return {"workers": 0, "wall_s": wall, "startup_s": 0.0,
                "wall_clips_per_s": len(tracks) / wall, "steady_clips_per_s": len(tracks) / wall}
    stats = engine.stats
    by_worker: dict[int, list[Any]] = {}
    for task in stats.tasks:
        by_worker.setdefault(task.pid, []).append(task)
    steady = sum(sum(t.clips for t in tasks[1:]) / sum(t.seconds for t in tasks[1:])
                 for tasks in by_worker.values() if len(tasks) > 1)
    return {"workers": workers, "wall_s": wall, "startup_s": stats.startup_s,
            "running_s": stats.running_s, "waiting_s": stats.waiting_s,
            "wall_clips_per_s": len(tracks) / stats.running_s, "steady_clips_per_s": steady,
            "driver_overhead_s_per_clip": (stats.running_s - stats.waiting_s) / len(tracks),
            "nodes": len({task.node_id for task in stats.tasks}),
            "tasks": len(stats.tasks), "worker_processes": len(by_worker),
            "identical_to_local": None, "worker_s_per_clip": float(np.mean(
                [t.seconds / t.clips for tasks in by_worker.values() for t in tasks[1:]]))}


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """`variables` in os.environ (what spawned processes start with), restored after."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def project(rate_one: float, efficiency: float, overhead_s: float) -> dict[str, float]:
    """FMA-large wall hours on each count of WORKER_COUNTS."""
    cap = 1 / overhead_s if overhead_s > 0 else float("inf")
    return {str(n): FMA_LARGE_CLIPS / min(n * rate_one * efficiency, cap) / 3600
            for n in WORKER_COUNTS}


def format_table(runs: dict[str, dict[str, Any]], projections: dict[str, dict[str, float]],
                 efficiency: float, overhead: float) -> str:
    lines = ["| run | wall clips/s (after start-up) | steady clips/s | start-up s | "
             "driver overhead ms/clip |", "|---|---|---|---|---|"]
    for name, run in runs.items():
        driver = run.get("driver_overhead_s_per_clip")
        lines.append(f"| {name} | {run['wall_clips_per_s']:.2f} | "
                     f"{run['steady_clips_per_s']:.2f} | {run['startup_s']:.1f} | "
                     f"{'-' if driver is None else f'{1000 * driver:.1f}'} |")
    lines += ["", f"scaling efficiency (2 workers / 2 x 1 worker): {efficiency:.2f}; driver "
              f"overhead {1000 * overhead:.1f} ms per clip (at most {1 / overhead:.0f} clips/s)",
              "", "| FMA-large hours on N workers | " + " | ".join(
                  str(n) for n in WORKER_COUNTS) + " |",
              "|---|" + "---|" * len(WORKER_COUNTS)]
    for model, hours in projections.items():
        lines.append(f"| {model} | " + " | ".join(f"{h:.1f}" for h in hours.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from benchmarks.extract import machine_info
    from mgc.atomic import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48, help="30 s clips (default 48)")
    parser.add_argument("--model", default="byola", choices=MODELS,
                        help="extractor, random weights (default byola)")
    parser.add_argument("--address", default=None,
                        help="an existing Ray cluster; default: a Ray of its own per run")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="the model's device, locally and on every worker")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0,
                        help="Ray GPUs per worker (0.5: two workers share one GPU)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray_scaling.json"))
    args = parser.parse_args(argv)
    if args.clips < 4:
        parser.error("--clips must be at least 4")
    machine = machine_info(1, args.device)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mgc-bench-ray-") as temp, _environment(ONE_THREAD):
        root = Path(temp)
        tracks = render_corpus(root / "raw", args.clips, CLIP_SECONDS)
        for name, workers in (("local", 0), ("ray, 1 worker", 1), ("ray, 2 workers", 2)):
            progress(f"{args.model}: {name}")
            runs[name] = in_subprocess(extraction_job, args.model, root / "raw", tracks,
                                       root / f"{workers}.parquet", workers, args.address,
                                       args.device, args.gpus_per_worker)
        local_bytes = (root / "0.parquet").read_bytes()
        for workers, name in ((1, "ray, 1 worker"), (2, "ray, 2 workers")):
            runs[name]["identical_to_local"] = (
                (root / f"{workers}.parquet").read_bytes() == local_bytes)
    machine["load_average_at_end"] = list(os.getloadavg())
    one, two = runs["ray, 1 worker"], runs["ray, 2 workers"]
    efficiency = two["steady_clips_per_s"] / (2 * one["steady_clips_per_s"])
    overhead = two["driver_overhead_s_per_clip"]
    projections = {args.model: project(one["steady_clips_per_s"], efficiency, overhead),
                   f"mert ({MERT_S_PER_CLIP} s/clip)": project(1 / MERT_S_PER_CLIP,
                                                               efficiency, overhead)}
    results = {"machine": machine,
               "setup": {"model": args.model, "weights": "random", "clips": args.clips,
                         "clip_seconds": CLIP_SECONDS, "batch_size": BATCH_SIZE,
                         "threads_per_process": 1, "address": args.address,
                         "gpus_per_worker": args.gpus_per_worker,
                         "corpus": "GTZAN-like .au, 22,050 Hz mono PCM_16"},
               "runs": runs, "scaling_efficiency": efficiency,
               "driver_overhead_s_per_clip": overhead,
               "fma_large_hours": {"clips": FMA_LARGE_CLIPS, "by_model": projections,
                                   "assumes": "every worker as fast as one here, the 2-worker "
                                              "efficiency holding at N, the driver's "
                                              "overhead per clip as measured"}}
    write_json(args.out, results)
    print(format_table(runs, projections, efficiency, overhead))
    print(f"load average {machine['load_average_at_start']} -> "
          f"{machine['load_average_at_end']}; wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
