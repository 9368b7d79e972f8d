"""Memory: does extraction's peak RSS stay flat when the corpus grows tenfold?

Streaming extraction holds two batches of audio and one part of embeddings at a time, so
the answer should be yes; a path that kept every decoded clip or every vector alive would
grow with the corpus, and this is where it would show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import in_subprocess, ours_job, peak_rss_mb, progress, render_corpus

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


LONG_FILE_MINUTES = (1, 60, 600)
LONG_FILE_RATE_HZ = 8000
"""1 minute, 1 hour and 10 hours of 8 kHz 16-bit mono (the 10-hour file is 576 MB), read at
the MFCC extractor's 22,050 Hz: a path that decoded whole would need 3.2 GB for 10 h."""


def long_file_job(path: Path, model_dir: Path) -> dict[str, Any]:
    """Peak RSS of `mgc predict` (every clip, streamed) on one file, in a fresh process."""
    from mgc.predict import GenrePredictor

    prediction = GenrePredictor(model_dir).predict_file(path)
    return {"peak_rss_mb": peak_rss_mb(), "clips": prediction.n_clips,
            "error": prediction.error}


def extract_clip_job(path: Path, sample_rate_hz: int, clip_samples: int) -> dict[str, Any]:
    """Peak RSS of extraction's decode (the first clip only) of one file, in a fresh process."""
    from mgc.audio import fit_length, load_audio

    clip = fit_length(load_audio(path, sample_rate_hz, max_samples=clip_samples), clip_samples)
    return {"peak_rss_mb": peak_rss_mb(), "samples": int(clip.size)}


def write_long_file(path: Path, seconds: int) -> Path:
    import soundfile

    t = np.arange(LONG_FILE_RATE_HZ) / LONG_FILE_RATE_HZ
    second = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    with soundfile.SoundFile(path, "w", LONG_FILE_RATE_HZ, 1, subtype="PCM_16") as handle:
        for _ in range(seconds):
            handle.write(second)
    return path


def write_mfcc_bundle(directory: Path, clip_seconds: float = 30.0) -> Path:
    """An untrained MFCC bundle: memory does not depend on what the weights learnt."""
    from mgc.bundle import BundleInfo, save_bundle
    from mgc.extractors import load
    from mgc.model import ClassifierConfig, GenreClassifier

    extractor = load("mfcc", weights="none")
    config = ClassifierConfig()
    model = GenreClassifier(extractor.dim, 10, config).eval()
    save_bundle(model, BundleInfo(
        class_names=[f"genre{i}" for i in range(10)], input_dim=extractor.dim,
        classifier=config.to_dict(), kind="dnn", heads=["anchor"], extractor="mfcc",
        extractor_options={"weights": "none"},
        clip_samples=round(clip_seconds * extractor.sample_rate), train_set="bench",
        protocol="paper"), directory)
    return directory


def measure_long_files(root: Path, minutes: tuple[int, ...] = LONG_FILE_MINUTES
                       ) -> dict[str, Any]:
    """Peak RSS of predict and of extraction's decode on files of each length in `minutes`."""
    model_dir = write_mfcc_bundle(root / "bundle")
    rows = []
    for length in minutes:
        progress(f"memory: writing a {length}-minute 8 kHz file")
        path = write_long_file(root / f"long_{length}min.wav", 60 * length)
        predicted = in_subprocess(long_file_job, path, model_dir)
        extracted = in_subprocess(extract_clip_job, path, 22050, 30 * 22050)
        rows.append({"minutes": length, "file_mb": path.stat().st_size / 2**20,
                     "predict_peak_rss_mb": predicted["peak_rss_mb"],
                     "predict_clips": predicted["clips"],
                     "extract_peak_rss_mb": extracted["peak_rss_mb"]})
        path.unlink()
    return {"rate_hz": LONG_FILE_RATE_HZ, "extractor": "mfcc", "clip_seconds": 30.0,
            "rows": rows, "goal": "peak RSS flat in file length (ratio below 1.10)"}


def main() -> None:
    """`python -m benchmarks.memory`: print the long-file table and write
    benchmarks/results/long_files.json."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        result = measure_long_files(Path(root))
    print("| file | size | predict peak RSS | clips | extraction decode peak RSS |")
    print("|---|---|---|---|---|")
    for row in result["rows"]:
        print(f"| {row['minutes']} min | {row['file_mb']:.0f} MB | "
              f"{row['predict_peak_rss_mb']:.0f} MB | {row['predict_clips']} | "
              f"{row['extract_peak_rss_mb']:.0f} MB |")
    out = Path(__file__).parent / "results" / "long_files.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
