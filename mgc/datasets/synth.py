"""The synthetic datasets of the default run, `synth_gtzan` and `synth_fma`: rendered by
`synthesis`, packed by `synth_archives` in the real datasets' formats, and then unpacked,
indexed and split by the very code that serves GTZAN and FMA-small.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mgc.config import check_range, invalid
from mgc.datasets.base import Dataset
from mgc.datasets.fma import list_fma_tracks, official_split
from mgc.datasets.gtzan import list_gtzan_tracks, split_from_lists
from mgc.datasets.synth_archives import render_fma_archives, render_gtzan_archive
from mgc.datasets.synthesis import FMA_GENRES, GTZAN_GENRES


class _SynthDataset(Dataset):
    """What both synthetic datasets take: how many clips per genre, how long, which seed, and
    how many deliberately broken files (so the skip path always runs)."""

    def __init__(self, clips_per_genre: int = 20, clip_seconds: float = 8.0, seed: int = 0,
                 corrupt_tracks: int = 1) -> None:
        if clips_per_genre < 5:
            raise invalid("clips_per_genre", clips_per_genre,
                          "must be at least 5 (train, validation and test need members)")
        check_range("clip_seconds", clip_seconds, 1.0, 60.0)
        if not 0 <= corrupt_tracks < clips_per_genre:
            raise invalid("corrupt_tracks", corrupt_tracks,
                          "must be >= 0 and fewer than clips_per_genre")
        self.clips_per_genre = int(clips_per_genre)
        self.nominal_clip_seconds = float(clip_seconds)
        self.seed = int(seed)
        self.corrupt_tracks = int(corrupt_tracks)


class SynthGtzan(_SynthDataset):
    """GTZAN-shaped synthetic corpus: 10 GTZAN genres, .au files in `genres.tar.gz`."""

    name = "synth_gtzan"
    labels = GTZAN_GENRES
    paper_split_stratified = True

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        return [render_gtzan_archive(staging_dir, self.clips_per_genre,
                                     self.nominal_clip_seconds, self.seed, self.corrupt_tracks)]

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return list_gtzan_tracks(raw_dir)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return split_from_lists(tracks, raw_dir / "genres" / "split_lists")


class SynthFma(_SynthDataset):
    """FMA-shaped synthetic corpus: 8 FMA top genres, mp3 zip + tracks.csv metadata zip."""

    name = "synth_fma"
    labels = tuple(FMA_GENRES)
    paper_split_stratified = False

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        archives = render_fma_archives(staging_dir, self.clips_per_genre,
                                       self.nominal_clip_seconds, self.seed, self.corrupt_tracks)
        return [archives["audio"], archives["metadata"]]

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return list_fma_tracks(raw_dir)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return official_split(tracks)
