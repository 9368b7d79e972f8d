"""Speed: our batched, streaming path against each model's reference code, on one corpus.

How much faster is `mgc.embeddings.extract_embeddings` (thread-pool decode + soxr resample,
batched forward, Parquet parts) than running each model the way its README shows it (one
clip at a time, its own decoder and resampler), on the same files and the same random
weights? Does it compute the same function (same decoded waveforms in, same vectors out, to
TOLERANCE)? And how close to the machine's own matmul rate does each path run: the roofline
is measured in the same run, and each model's FLOPs per 30 s clip are counted by torch.

Each timed run follows one untimed warm-up clip, so one-off costs (resampy's numba JIT, lazy
imports, oneDNN set-up) do not swamp the per-clip figures of a short run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import (
    CORPUS_RATE_HZ,
    PROBE_N,
    best_seconds,
    in_subprocess,
    load_ours,
    matmul_gflops,
    ours_job,
    peak_rss_mb,
    progress,
    render_corpus,
    rss_mb,
    set_threads,
)
from benchmarks.references import (
    HUB_MODELS,
    REFERENCE_RECIPES,
    REFERENCES,
    save_weights,
    weights_path,
)

CLIP_SECONDS = 30.0
TOLERANCE = 1e-4
IDENTITY_CLIPS = 2
NEURAL_MODELS = ("byola", "panns", "vggish")
ALL_MODELS = (*NEURAL_MODELS, *HUB_MODELS)
"""The hub models (tiny random snapshots, `mgc[hf]`) run when asked for with --models."""
IDENTITY_SECONDS = {"mert": 5.0, "clap": 10.0}
"""The hub models are checked on one window of their trained length: beyond it ours
averages windows (bounded memory) where the model cards run the whole clip (MERT) or crop
it at random (CLAP's processor), so the functions differ there by design. Both paths are
also timed on those clips (`at_identity`: ours batched, the reference one clip at a
time, model and front end only), the speed ratio at identical outputs."""

PROJECTED_CORPORA = {"gtzan": 1000, "fma_small": 8000}
"""Clips of 30 s in GTZAN and FMA-small: each path's s/clip here times these, in hours (FMA's
mp3 decode costs a little more than this corpus's .au)."""
SAME_ARITHMETIC = ("muq",)
"""The reference runs in a process of its own (MuQ's needs transformers 4), out of the FLOP
counter's sight; it computes what our eager network does on a 30 s clip (one window)."""

MATMUL_N = 2048
CONV_SHAPE = (1, 128, 256, 64)
"""Input of the 3x3, 128 -> 128 convolution probe: a mid-network CNN14-like layer."""


# --- what runs inside the spawned processes ------------------------------------------------

@contextmanager
def eager_attention(reference: Any) -> Iterator[None]:
    """A transformers reference with eager attention while its FLOPs are counted (the
    counter has no formula for PyTorch's fused CPU attention); as it was afterwards."""
    config = getattr(getattr(reference, "model", None), "config", None)
    previous = getattr(config, "_attn_implementation", None)
    if previous is not None:
        config._attn_implementation = "eager"
    try:
        yield
    finally:
        if previous is not None:
            config._attn_implementation = previous


def _counted(run: Callable[[], Any]) -> tuple[int, Any]:
    """(torch FLOPs `run` executed, what it returned): the identity check's forward passes
    are the ones counted, so no extra pass is spent on counting."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        result = run()
    return int(counter.get_total_flops()), result


def measure_roofline() -> dict[str, Any]:
    """fp32 matmul (MKL's sgemm, torch's default, and oneDNN's) and 3x3 conv throughput,
    best of a few repetitions after a warm-up."""
    import torch

    from mgc.extractors.kernels import ONEDNN_LINEAR

    conv = torch.nn.Conv2d(CONV_SHAPE[1], CONV_SHAPE[1], 3, padding=1, bias=False).eval()
    x = torch.randn(*CONV_SHAPE)
    conv_flop = _counted(lambda: conv(x))[0]
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    with torch.inference_mode():
        conv_s = best_seconds(lambda: conv(x), reps=5)
        conv_last = conv.to(memory_format=torch.channels_last)
        x_last = x.contiguous(memory_format=torch.channels_last)
        conv_last_s = best_seconds(lambda: conv_last(x_last), reps=5)
        onednn_s = best_seconds(lambda: torch.ops.mkldnn._linear_pointwise(
            a, b, None, "none", [], ""), reps=10) if ONEDNN_LINEAR else float("inf")
    return {"matmul_n": MATMUL_N, "matmul_gflops": matmul_gflops(MATMUL_N),
            "onednn_matmul_gflops": 2 * MATMUL_N**3 / onednn_s / 1e9,
            "conv_input_shape": list(CONV_SHAPE), "conv_gflop": conv_flop / 1e9,
            "conv_gflops": conv_flop / conv_s / 1e9,
            "conv_channels_last_gflops": conv_flop / conv_last_s / 1e9}


def _eager_run(ours: Any, waves: np.ndarray, model: str, weights: Path,
               device: str) -> Callable[[], Any]:
    """Our path's arithmetic on `waves`, as the FLOP counter can see it, to be called under
    `kernels.unfused()`. Inside a frozen TorchScript graph, oneDNN's linear operator or the
    fused attention the counter sees no ops (or none of their FLOPs): the same network is
    rebuilt and run eagerly, linear layers as F.linear and attention as matmul-softmax-
    matmul (the arithmetic is the same; only its scheduling differs)."""
    import torch

    from mgc.extractors.kernels import unfused

    if not hasattr(ours, "build_network"):
        with unfused():
            eager_hub = load_ours(model, str(weights), device)
        return lambda: eager_hub.embed(waves)
    eager = ours.build_network()
    if ours.weights.path is not None:
        ours.load_weights(eager, ours.weights.path)
    eager.eval()
    return lambda: eager(torch.from_numpy(waves))


def _check_job(models: list[str], weights_dir: Path, paths: list[Path],
               threads: int, device: str, hub_size: str = "tiny") -> dict[str, Any]:
    """Write the shared weights, then for each model: feed identical decoded waveforms to
    our extractor and to the reference network (max abs difference), and count the FLOPs of
    one 30 s clip on each path (the hub models' identity is on one window, IDENTITY_SECONDS).
    Also measure the roofline."""
    import torch

    from mgc.audio import fit_length, load_audio
    from mgc.extractors.kernels import unfused

    set_threads(threads)
    result: dict[str, Any] = {"roofline": measure_roofline(), "models": {}}
    for model in models:
        weights = save_weights(model, weights_dir, hub_size)
        ours, reference = load_ours(model, str(weights), device), REFERENCES[model](weights)
        decoded = [load_audio(p, ours.sample_rate) for p in paths]
        waves = np.stack([fit_length(d, round(CLIP_SECONDS * ours.sample_rate)) for d in decoded])
        with torch.inference_mode(), unfused():
            ours_flops = _counted(_eager_run(ours, waves, model, weights, device))[0]
        with eager_attention(reference):
            reference_flops, reference_vectors = _counted(
                lambda r=reference, w=waves: np.stack([r.embed_wave(clip) for clip in w]))
        if model in SAME_ARITHMETIC:     # its FLOPs are out of sight, in another process
            reference_flops = ours_flops
        at_identity: dict[str, float] = {}
        if model in IDENTITY_SECONDS:     # FLOPs on 30 s clips, identity on one window
            waves = np.stack([fit_length(d, round(IDENTITY_SECONDS[model] * ours.sample_rate))
                              for d in decoded])
            start = time.perf_counter()
            reference_vectors = np.stack([reference.embed_wave(clip) for clip in waves])
            at_identity["reference_s_per_clip"] = (time.perf_counter() - start) / len(waves)
        start = time.perf_counter()
        ours_vectors = ours.embed(waves)
        if at_identity:
            at_identity["ours_s_per_clip"] = (time.perf_counter() - start) / len(waves)
            at_identity["speedup"] = (at_identity["reference_s_per_clip"]
                                      / at_identity["ours_s_per_clip"])
        result["models"][model] = {
            "sample_rate": ours.sample_rate, "dim": ours.dim,
            "max_abs_diff": float(np.abs(ours_vectors - reference_vectors).max()),
            "max_abs_embedding": float(np.abs(reference_vectors).max()),
            "identity_clips": len(paths),
            "ours_gflop_per_clip": ours_flops / len(paths) / 1e9,
            "reference_gflop_per_clip": reference_flops / len(paths) / 1e9,
            **({"at_identity": {"clip_seconds": IDENTITY_SECONDS[model], **at_identity}}
               if at_identity else {}),
        }
        progress(f"{model}: max |ours - reference| = "
                 f"{result['models'][model]['max_abs_diff']:.2e}")
    return result


def _reference_job(model: str, weights: Path, paths: list[Path], threads: int) -> dict[str, Any]:
    """The reference path, one clip at a time, timed from the loaded and warmed-up model to
    the last vector."""
    set_threads(threads)
    libraries_rss = rss_mb()
    reference = REFERENCES[model](weights)
    reference.embed_file(paths[0])
    probe = matmul_gflops(PROBE_N)
    start = time.perf_counter()
    vectors = [reference.embed_file(path) for path in paths]
    seconds = time.perf_counter() - start
    if any(not np.isfinite(v).all() for v in vectors):
        raise RuntimeError(f"{model}: the reference path produced non-finite embeddings")
    run = {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "matmul_gflops_at_start": probe}
    server = getattr(reference, "server_peak_rss_mb", None)   # MuQ's: its model's process
    if server is None:
        run["libraries_rss_mb"] = libraries_rss
    else:       # the libraries' share of the server's peak is not known
        run["peak_rss_mb"] += server()
    return run


# --- the parent: orchestration and summary ---------------------------------------------------

def _path_summary(run: dict[str, Any], n_clips: int, gflop_per_clip: float) -> dict[str, Any]:
    """Per-clip figures of one timed run (roofline fractions come once every probe is in)."""
    s_per_clip = run["seconds"] / n_clips
    return {**run, "s_per_clip": s_per_clip, "rtf": CLIP_SECONDS / s_per_clip,
            "gflop_per_clip": gflop_per_clip, "gflops": gflop_per_clip / s_per_clip}


def timed_runs(models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every timed run's summary, our path's at each batch size and the reference's."""
    return [run for result in models.values()
            for run in (*result["ours"]["by_batch_size"].values(), result["reference"])]


def add_roofline(roofline: dict[str, Any], models: dict[str, dict[str, Any]]) -> None:
    """Take the fastest matmul rate seen in the run as the roofline, and put every timed run
    against it (`roofline_fraction`) and against the fastest probe of all
    (`best_probe_fraction`): oneDNN's convolutions can beat MKL's sgemm, which takes its
    AVX2 path on AMD CPUs."""
    runs = timed_runs(models)
    roofline["matmul_gflops_probe_job"] = roofline["matmul_gflops"]
    roofline["matmul_gflops"] = max(roofline["matmul_gflops"],
                                    *(run["matmul_gflops_at_start"] for run in runs))
    roofline["best_probe_gflops"] = max(roofline["matmul_gflops"], roofline["conv_gflops"],
                                        roofline["conv_channels_last_gflops"],
                                        roofline["onednn_matmul_gflops"])
    for run in runs:
        run["roofline_fraction"] = run["gflops"] / roofline["matmul_gflops"]
        run["best_probe_fraction"] = run["gflops"] / roofline["best_probe_gflops"]
    for result in models.values():
        result["ours"].update(result["ours"]["by_batch_size"][str(result["ours"]["batch_size"])])
        ours, reference = result["ours"], result["reference"]
        result["peak_rss_ratio"] = ours["peak_rss_mb"] / reference["peak_rss_mb"]
        if "libraries_rss_mb" in reference:   # not MuQ's: its model has a process of its own
            result["peak_rss_above_libraries_ratio"] = (
                (ours["peak_rss_mb"] - ours["libraries_rss_mb"])
                / (reference["peak_rss_mb"] - reference["libraries_rss_mb"]))
        result["projected_hours"] = {
            corpus: {path: clips * result[path]["s_per_clip"] / 3600
                     for path in ("ours", "reference")}
            for corpus, clips in PROJECTED_CORPORA.items()}


def benchmark_model(model: str, check: dict[str, Any], root: Path, tracks: list[tuple[str, str]],
                    batch_sizes: list[int], threads: int, device: str) -> dict[str, Any]:
    """Time our path at each batch size and the reference path, each in its own process."""
    weights = weights_path(model, root / "weights")
    raw_dir = root / "corpus"
    by_batch = {}
    for batch_size in batch_sizes:
        progress(f"{model}: our path, batch {batch_size}, {len(tracks)} clips")
        out_path = root / "out" / f"{model}-{batch_size}.parquet"
        run = in_subprocess(ours_job, model, str(weights), raw_dir, tracks, CLIP_SECONDS,
                            batch_size, threads, out_path, None, device)
        by_batch[batch_size] = _path_summary(run, len(tracks), check["ours_gflop_per_clip"])
    best_batch = min(by_batch, key=lambda b: by_batch[b]["s_per_clip"])
    progress(f"{model}: reference path, one clip at a time")
    reference = in_subprocess(_reference_job, model, weights,
                              [raw_dir / path for _, path in tracks], threads)
    reference_summary = _path_summary(reference, len(tracks), check["reference_gflop_per_clip"])
    ours = {**by_batch[best_batch], "batch_size": best_batch,
            "by_batch_size": {str(b): summary for b, summary in by_batch.items()}}
    return {**{key: check[key] for key in ("sample_rate", "dim", "max_abs_diff",
                                           "max_abs_embedding", "identity_clips",
                                           "at_identity") if key in check},
            "speedup": reference_summary["s_per_clip"] / ours["s_per_clip"],
            "ours": ours, "reference": {**reference_summary, "recipe": REFERENCE_RECIPES[model]}}


def measure_speed(root: Path, models: list[str], clips: int, batch_sizes: list[int],
                  threads: int, device: str, hub_size: str = "tiny"
                  ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(roofline, per-model results) on `clips` fresh 30 s clips written under `root`."""
    progress(f"rendering {clips} clips of {CLIP_SECONDS:g} s at {CORPUS_RATE_HZ} Hz")
    tracks = render_corpus(root / "corpus", clips, CLIP_SECONDS)
    identity_paths = [root / "corpus" / path for _, path in tracks[:IDENTITY_CLIPS]]
    progress("weights, identity checks, FLOP counts and roofline")
    checks = in_subprocess(_check_job, models, root / "weights", identity_paths, threads, device,
                           hub_size)
    results = {model: benchmark_model(model, checks["models"][model], root, tracks,
                                      batch_sizes, threads, device)
               for model in models}
    add_roofline(checks["roofline"], results)
    return checks["roofline"], results


def check_identity(models: dict[str, dict[str, Any]]) -> None:
    """Exit with the offending models if any max abs difference is not below TOLERANCE (NaN
    included): a faster path that computes something else is not a result."""
    wrong = {m: r["max_abs_diff"] for m, r in models.items() if not r["max_abs_diff"] < TOLERANCE}
    if wrong:
        raise SystemExit(f"embeddings differ from the reference by >= {TOLERANCE}: {wrong}")
