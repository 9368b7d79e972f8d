"""The cost of `layers: all` against `layers: last`: the whole extraction path (decode, one
forward pass, Parquet with a column per layer), per extractor, in one spawned process.

Both extractors are loaded and warmed up side by side, then timed in alternating order for
several rounds, so the machine's drift (it is shared) falls on both alike; the ratio is
the median of each round's all/last ratio.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import (
    OPTIONS,
    in_subprocess,
    matmul_gflops,
    peak_rss_mb,
    progress,
    render_corpus,
    set_threads,
)

MODES = ("last", "all")


def layers_job(model: str, raw_dir: Path, tracks: list[tuple[str, str]], clip_seconds: float,
               batch_size: int, threads: int, out_dir: Path, rounds: int) -> dict[str, Any]:
    """Seconds per clip of each mode in every round, the layers, and each file's size."""
    import pandas as pd

    from mgc import extractors
    from mgc.audio import fit_length, load_audio
    from mgc.embeddings import clip_samples, extract_embeddings

    set_threads(threads)
    loaded = {mode: extractors.load(model, weights="random", device="cpu", layers=mode,
                                    **OPTIONS[model]) for mode in MODES}
    frame = pd.DataFrame(tracks, columns=["track_id", "path"])
    n_samples = clip_samples("full", clip_seconds, loaded["last"].sample_rate)
    warm_up = np.repeat(fit_length(load_audio(raw_dir / tracks[0][1], loaded["last"].sample_rate),
                                   n_samples)[None], batch_size, axis=0)
    for _ in range(2):      # TorchScript profiles a frozen graph's first runs per batch shape
        loaded["last"].embed(warm_up)
        loaded["all"].embed_layers(warm_up)
    probe = matmul_gflops(1024)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_index in range(rounds):
        for mode in MODES if round_index % 2 == 0 else reversed(MODES):
            extractor = loaded[mode]
            start = time.perf_counter()
            extract_embeddings(frame, raw_dir, extractor, out_dir / f"{model}-{mode}.parquet",
                               n_samples=n_samples,
                               metadata={**extractor.describe(), "clip": "full"},
                               batch_size=batch_size, progress=False)
            seconds[mode].append((time.perf_counter() - start) / len(tracks))
    return {"seconds_per_clip": seconds,
            "layers": [{"name": layer.name, "dim": layer.dim} for layer in loaded["all"].layers],
            "file_bytes": {mode: (out_dir / f"{model}-{mode}.parquet").stat().st_size
                           for mode in MODES},
            "peak_rss_mb": peak_rss_mb(), "matmul_gflops_at_start": probe}


def measure_layers(root: Path, models: list[str], clips: int, clip_seconds: float,
                   batch_size: int, threads: int, rounds: int = 3) -> dict[str, Any]:
    """Per model: seconds per clip of `last` and `all` (median over rounds), their ratio
    (median of the rounds' ratios), the layer list and the file sizes."""
    raw_dir = root / "layers-corpus"
    progress(f"layers: rendering {clips} clips of {clip_seconds:g} s")
    tracks = render_corpus(raw_dir, clips, clip_seconds)
    results = {}
    for model in models:
        progress(f"{model}: layers last vs all, {rounds} rounds of {clips} clips")
        out_dir = root / "layers-out"
        out_dir.mkdir(parents=True, exist_ok=True)
        run = in_subprocess(layers_job, model, raw_dir, tracks, clip_seconds, batch_size,
                            threads, out_dir, rounds)
        per_round = run["seconds_per_clip"]
        ratios = [every / last for last, every in zip(per_round["last"], per_round["all"],
                                                       strict=True)]
        results[model] = {
            **{f"{mode}_s_per_clip": statistics.median(per_round[mode]) for mode in MODES},
            "ratio_all_to_last": statistics.median(ratios), "ratios": ratios,
            "file_ratio_all_to_last": run["file_bytes"]["all"] / run["file_bytes"]["last"],
            **{key: run[key] for key in ("layers", "file_bytes", "peak_rss_mb",
                                         "matmul_gflops_at_start", "seconds_per_clip")}}
    return {"clips": clips, "clip_seconds": clip_seconds, "batch_size": batch_size,
            "rounds": rounds, "models": results}


def format_layers_table(layers: dict[str, Any]) -> str:
    header = (f"{'model':<7} {'last s/clip':>11} {'all s/clip':>10} {'all/last':>8} "
              f"{'file all/last':>13}  layers")
    rows = [header, "-" * len(header)]
    for name, m in layers["models"].items():
        rows.append(f"{name:<7} {m['last_s_per_clip']:>11.3f} {m['all_s_per_clip']:>10.3f} "
                    f"{m['ratio_all_to_last']:>7.2f}x {m['file_ratio_all_to_last']:>12.1f}x  "
                    + ", ".join(f"{layer['name']} {layer['dim']}" for layer in m["layers"]))
    return "\n".join(rows)
