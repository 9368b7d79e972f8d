"""What the speed and memory measurements share: the synthetic corpus, a fresh process per
measured run, and our extraction path as one job.

Every measured run goes through `in_subprocess`, a spawned interpreter, so its peak RSS is
its own and no run inherits another's warm caches. Heavy imports sit inside the job functions
for the same reason: a process pays only for the modules its path needs.
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

CORPUS_RATE_HZ = 22050
"""The corpus is written like GTZAN: 22,050 Hz mono 16-bit .au, `genres/<g>/<g>.000NN.au`."""
SEED = 0
OPTIONS: dict[str, dict[str, Any]] = {"byola": {}, "panns": {}, "vggish": {"postprocess": False},
                                      "mert": {}, "clap": {}, "muq": {}}
"""Extractor options: defaults, except VGGish's PCA, which is fitted to the real weights and
means nothing on random ones (the reference path runs without it too)."""
PROBE_N = 1024
"""Matmul size of the probe each timed process runs just before its timed run: as fast per
FLOP as 2048 here, and its 12 MB stay far below any path's peak RSS. The machine is shared,
so its speed drifts between runs; these probes say by how much, and the roofline is the
fastest rate seen anywhere in the run."""

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """Seconds since this process imported the module, then the message."""
    print(f"[bench {time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr,
          flush=True)


def in_subprocess(job: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `job(*args)` in a fresh spawned interpreter and return its result."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(job, *args).result()


def render_corpus(raw_dir: Path, n_clips: int, clip_seconds: float,
                  distinct_clips: int | None = None) -> list[tuple[str, str]]:
    """Write `n_clips` synthetic clips in GTZAN's layout; return (track_id, relative path).

    With `distinct_clips`, only that many are rendered and the other files are copies of
    them: enough for a memory run, where what is in the files does not matter."""
    import shutil

    import soundfile

    from mgc.datasets.synthesis import GTZAN_GENRES, render_clip

    tracks: list[tuple[str, str]] = []
    for index in range(n_clips):
        genre = GTZAN_GENRES[index % len(GTZAN_GENRES)]
        track_id = f"{genre}.{index // len(GTZAN_GENRES):05d}"
        relative = Path("genres") / genre / f"{track_id}.au"
        (raw_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        if distinct_clips is not None and index >= distinct_clips:
            shutil.copyfile(raw_dir / tracks[index % distinct_clips][1], raw_dir / relative)
        else:
            wave = render_clip(genre, clip_seconds, CORPUS_RATE_HZ, seed=SEED * 1_000_003 + index)
            soundfile.write(raw_dir / relative, wave, CORPUS_RATE_HZ, format="AU",
                            subtype="PCM_16")
        tracks.append((track_id, str(relative)))
    return tracks


# --- what runs inside the spawned processes ------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident set size now (Linux: /proc/self/statm, in pages)."""
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def load_ours(model: str, weights: str, device: str = "cpu") -> Any:
    from mgc import extractors

    return extractors.load(model, weights=weights, device=device, **OPTIONS[model])


def best_seconds(run: Callable[[], object], reps: int) -> float:
    """Fastest of `reps` timed calls of `run`, after one untimed warm-up call."""
    run()
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(n: int, reps: int = 10) -> float:
    """fp32 (n, n) @ (n, n) throughput, best of `reps` after a warm-up."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        return 2 * n**3 / best_seconds(lambda: a @ b, reps) / 1e9


def ours_job(model: str, weights: str, raw_dir: Path, tracks: list[tuple[str, str]],
             clip_seconds: float, batch_size: int, threads: int, out_path: Path,
             rows_per_group: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Our whole path, timed from the loaded and warmed-up model to the final Parquet file."""
    import inspect

    import pandas as pd

    from mgc.audio import fit_length, load_audio
    from mgc.embeddings import clip_samples, extract_embeddings

    set_threads(threads)
    libraries_rss = rss_mb()
    extractor = load_ours(model, weights, device)
    frame = pd.DataFrame(tracks, columns=["track_id", "path"])
    group = {} if rows_per_group is None else {"rows_per_group": rows_per_group}
    n_samples = clip_samples("full", clip_seconds, extractor.sample_rate)
    warm_up = fit_length(load_audio(raw_dir / tracks[0][1], extractor.sample_rate), n_samples)
    for _ in range(2):      # TorchScript profiles a frozen graph's first runs per batch shape
        extractor.embed(np.repeat(warm_up[None], batch_size, axis=0))
    del warm_up
    probe = matmul_gflops(PROBE_N)
    start = time.perf_counter()
    report = extract_embeddings(
        frame, raw_dir, extractor, out_path, n_samples=n_samples,
        metadata={**extractor.describe(), "clip": "full"}, batch_size=batch_size,
        progress=False, **group)
    seconds = time.perf_counter() - start
    if report.n_embedded != len(tracks) or report.skipped:
        raise RuntimeError(f"{model}: embedded {report.n_embedded} of {len(tracks)} clips, "
                           f"skipped {report.skipped}")
    decode_workers = inspect.signature(extract_embeddings).parameters["decode_workers"].default
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "libraries_rss_mb": libraries_rss,
            "decode_workers": decode_workers, "matmul_gflops_at_start": probe}
