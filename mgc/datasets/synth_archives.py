"""The synthetic corpus packed exactly as the real datasets are: GTZAN's `genres.tar.gz` of
.au files with fault-filtered-style split lists, FMA's `fma_small.zip` (or `fma_medium.zip`,
`fma_large.zip`) of mp3 and `fma_metadata.zip` with tracks.csv, so the real unpack and
index code runs on it.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile

from mgc.datasets.fma import SUBSETS, TOP_GENRES
from mgc.datasets.synthesis import (
    FMA_GENRES,
    FMA_RATE_HZ,
    GTZAN_GENRES,
    GTZAN_RATE_HZ,
    render_clip,
)


@dataclass(frozen=True)
class ClipJob:
    """One clip to render and encode; a plain value so it can cross process boundaries."""

    genre: str
    seconds: float
    sample_rate: int
    seed: int
    file_format: str
    stereo: bool
    corrupt: bool


CORRUPT_AU_HEADER = b".snd" + bytes(20)
"""An AU header claiming zero channels: libsndfile refuses it, as with GTZAN's jazz.00054."""


def _render_encoded(job: ClipJob) -> bytes:
    if job.corrupt:
        return CORRUPT_AU_HEADER if job.file_format == "AU" else b""
    wave = render_clip(job.genre, job.seconds, job.sample_rate, job.seed)
    if job.stereo:
        wave = np.stack([wave, 0.9 * np.roll(wave, 7)], axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, job.sample_rate, format=job.file_format,
                    subtype="PCM_16" if job.file_format == "AU" else None)
    return buffer.getvalue()


def _render_all(jobs: list[ClipJob]) -> Iterator[bytes]:
    """Render and encode clips on every core, in job order (each clip has its own seed)."""
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_render_encoded, jobs, chunksize=4)


def _add_bytes_to_tar(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    archive.addfile(info, io.BytesIO(payload))


def _stratified_official_split(labels: list[str], rng: np.random.Generator) -> list[str]:
    """An 80/10/10 split per genre: the synthetic stand-in for a dataset's official split."""
    split = [""] * len(labels)
    for genre in sorted(set(labels)):
        members = [i for i, label in enumerate(labels) if label == genre]
        rng.shuffle(members)
        n_test = max(1, round(0.1 * len(members)))
        n_val = max(1, round(0.1 * len(members)))
        for rank, index in enumerate(members):
            split[index] = ("test" if rank < n_test else
                            "validation" if rank < n_test + n_val else "training")
    return split


def render_gtzan_archive(dest_dir: Path, clips_per_genre: int, clip_seconds: float, seed: int,
                         corrupt_tracks: int = 1) -> Path:
    """Write `genres.tar.gz` in GTZAN's layout into `dest_dir` and return its path.

    The tarball also carries `split_lists/{train,valid,test}_filtered.txt` in the format of
    the fault-filtered GTZAN lists (`blues/blues.00029.wav` per line), so the `standard`
    protocol runs the same code on synthetic and real data. `corrupt_tracks` jazz files get an
    AU header libsndfile refuses, as `jazz.00054` is broken in some real copies, so the skip
    path is exercised.
    """
    rng = np.random.default_rng(seed)
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive_path = dest_dir / "genres.tar.gz"
    names, labels, jobs = [], [], []
    for genre_index, genre in enumerate(GTZAN_GENRES):
        for clip_index in range(clips_per_genre):
            names.append(f"{genre}/{genre}.{clip_index:05d}")
            labels.append(genre)
            jobs.append(ClipJob(genre, clip_seconds, GTZAN_RATE_HZ,
                                seed * 1_000_003 + genre_index * 10_007 + clip_index, "AU",
                                stereo=False,
                                corrupt=genre == "jazz" and clip_index < corrupt_tracks))
    with tarfile.open(archive_path, "w:gz", compresslevel=1) as archive:
        for name, payload in zip(names, _render_all(jobs), strict=True):
            _add_bytes_to_tar(archive, f"genres/{name}.au", payload)
        split = _stratified_official_split(labels, rng)
        for part, list_name in (("training", "train"), ("validation", "valid"), ("test", "test")):
            lines = [f"{name}.wav" for name, s in zip(names, split, strict=True) if s == part]
            _add_bytes_to_tar(archive, f"split_lists/{list_name}_filtered.txt",
                              ("\n".join(lines) + "\n").encode())
    return archive_path


def render_fma_archives(dest_dir: Path, clips_per_genre: int, clip_seconds: float, seed: int,
                        corrupt_tracks: int = 1, subset: str = "small") -> dict[str, Path]:
    """Write `fma_<subset>.zip` (mp3, `fma_<subset>/NNN/NNNNNN.mp3`) and `fma_metadata.zip`.

    tracks.csv has FMA's real 3-row header and the columns the indexer reads. `small`: the
    8 synthetic FMA genres, every track marked small, plus rows of another subset
    ('medium') without audio, which the indexer must filter out. `medium` and `large`:
    FMA's 16 top genres (rendered from the 8 recipes in turn), the tracks marked in turn
    with each nested subset the archive holds (small, medium(, large)), and for medium rows
    of 'large' without audio; large adds 2 tracks with audio and no top genre, which the
    indexer must leave out. `corrupt_tracks` mp3 files hold no audio, like FMA's 099134,
    108925 and 133297.
    """
    rng = np.random.default_rng(seed + 1)
    dest_dir.mkdir(parents=True, exist_ok=True)
    genres = list(FMA_GENRES) if subset == "small" else list(TOP_GENRES)
    recipes = list(FMA_GENRES.values())
    levels = SUBSETS[subset].members
    rows: list[dict[tuple[str, str], object]] = []
    track_ids: list[int] = []
    labels: list[str] = []
    next_id = 2
    for genre_top in genres:
        for _ in range(clips_per_genre):
            track_ids.append(next_id)
            labels.append(genre_top)
            next_id += int(rng.integers(1, 40))
    official = _stratified_official_split(labels, rng)
    unlabelled = 2 if subset == "large" else 0
    track_ids += [next_id + extra for extra in range(unlabelled)]
    next_id += unlabelled
    labels += [""] * unlabelled
    official += ["training"] * unlabelled
    jobs = [ClipJob(FMA_GENRES.get(genre_top, recipes[order % len(recipes)]), clip_seconds,
                    FMA_RATE_HZ, seed * 1_000_003 + 500_000 + track_id, "MP3", stereo=True,
                    corrupt=genre_top == "Rock" and order % clips_per_genre < corrupt_tracks)
            for order, (track_id, genre_top) in enumerate(zip(track_ids, labels, strict=True))]
    audio_zip = dest_dir / SUBSETS[subset].archive
    with zipfile.ZipFile(audio_zip, "w", compression=zipfile.ZIP_STORED) as archive:
        for order, (payload, track_id, genre_top, split) in enumerate(
                zip(_render_all(jobs), track_ids, labels, official, strict=True)):
            tid = f"{track_id:06d}"
            archive.writestr(f"fma_{subset}/{tid[:3]}/{tid}.mp3", payload)
            rows.append({("artist", "id"): 1000 + order // 3, ("set", "split"): split,
                         ("set", "subset"): levels[order % len(levels)] if genre_top else "large",
                         ("track", "duration"): int(clip_seconds),
                         ("track", "genre_top"): genre_top or None,
                         ("track", "title"): f"synth {tid}", "track_id": track_id})
    outside = {"small": "medium", "medium": "large"}.get(subset)
    for extra in range(5 if outside else 0):
        rows.append({("artist", "id"): 9000 + extra, ("set", "split"): "training",
                     ("set", "subset"): outside, ("track", "duration"): 30,
                     ("track", "genre_top"): "Pop", ("track", "title"): f"not in {subset}",
                     "track_id": next_id + extra})
    tracks = pd.DataFrame(rows).set_index("track_id")
    tracks.columns = pd.MultiIndex.from_tuples(tracks.columns)
    metadata_zip = dest_dir / "fma_metadata.zip"
    with zipfile.ZipFile(metadata_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fma_metadata/tracks.csv", tracks.to_csv())
    return {"audio": audio_zip, "metadata": metadata_zip}
