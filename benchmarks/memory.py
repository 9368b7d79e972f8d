"""Memory: does extraction's peak RSS stay flat when the corpus grows tenfold?

Streaming extraction holds two batches of audio and one part of embeddings at a time, so
the answer should be yes; a path that kept every decoded clip or every vector alive would
grow with the corpus, and this is where it would show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness import in_subprocess, ours_job, progress, render_corpus

MEMORY_MODEL = "byola"
MEMORY_BATCH_SIZE = 8
MEMORY_CLIP_SECONDS = 3.0
"""Long enough that keeping every decoded clip alive (22,050 + 16,000 Hz float32, 460 kB a
clip) would add 80 MB over the 180 extra clips of the small scale: more than its 10 %."""
MEMORY_DISTINCT_CLIPS = 10
MEMORY_SCALES = {"small": (20, 200, 8), "full": (100, 1000, 64)}
"""(clips in the small run, clips in the tenfold run, rows per Parquet part). The small scale
shrinks the part size with the corpus, so that both of its runs write several parts: pyarrow's
mimalloc pool keeps about 50 MB after the first few parts are written and read back, a
one-off plateau (not growth) that a run writing fewer than two parts never reaches."""


def measure_memory(root: Path, scale: str, threads: int) -> dict[str, Any]:
    """Peak RSS of our path on a corpus and on one ten times larger, each in its own process."""
    small, large, rows_per_group = MEMORY_SCALES[scale]
    progress(f"memory: writing {large} clips of {MEMORY_CLIP_SECONDS:g} s")
    tracks = render_corpus(root / "corpus", large, MEMORY_CLIP_SECONDS,
                           distinct_clips=MEMORY_DISTINCT_CLIPS)
    runs = {}
    for n_clips in (small, large):
        progress(f"memory: {MEMORY_MODEL} (random weights) on {n_clips} clips")
        runs[n_clips] = in_subprocess(ours_job, MEMORY_MODEL, "random", root / "corpus",
                                      tracks[:n_clips], MEMORY_CLIP_SECONDS, MEMORY_BATCH_SIZE,
                                      threads, root / f"out-{n_clips}.parquet", rows_per_group)
    return {"extractor": MEMORY_MODEL, "weights": "random", "clip_seconds": MEMORY_CLIP_SECONDS,
            "batch_size": MEMORY_BATCH_SIZE, "rows_per_group": rows_per_group, "scale": scale,
            "small": {"clips": small, "peak_rss_mb": runs[small]["peak_rss_mb"]},
            "large": {"clips": large, "peak_rss_mb": runs[large]["peak_rss_mb"]},
            "ratio": runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"],
            "goal": "ratio below 1.10"}
