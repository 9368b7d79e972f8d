"""What every dataset provides: its archives, its catalogue of tracks and its official split.

A dataset module knows its files, labels, official splits, URLs and checksums; everything
else (safe unpacking, decoding every file once, recording what is unusable and why) is the
same for all of them and lives in `indexing`, so the synthetic corpus exercises the real
code. A subclass that sets `name` registers itself: adding a dataset is adding one module
to this package, its constructor's keyword parameters being its options
(`data.sources.<name>.*` in the pipeline).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from mgc.config import check_options
from mgc.registry import Registry

REGISTRY: Registry[type[Dataset]] = Registry("dataset")
"""Every dataset class by its `name`, filled as the modules of this package are imported."""

TRACK_COLUMNS = (
    "track_id", "path", "label", "duration_s", "sample_rate_hz", "channels",
    "status", "reason", "artist_id", "official_split", "content_sha256",
)
USABLE_STATUSES = ("ok", "short")


class Dataset(ABC):
    """A labelled audio collection that can be fetched, unpacked and indexed."""

    name: str
    """The registry key of the class; an instance built for a dataset of your own (`kind`)
    carries your name instead."""
    labels: ClassVar[tuple[str, ...]]
    paper_split_stratified: ClassVar[bool]
    """The authors stratified GTZAN's 80/20 split but not FMA's; `paper` copies that."""

    nominal_clip_seconds: float = 30.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY.add(cls)

    @classmethod
    def check_options(cls, options: Mapping[str, Any], key: str) -> dict[str, Any]:
        """`options` typed, or a ConfigError naming `key.<option>` and the valid options."""
        return check_options(cls.__init__, options, key)

    @abstractmethod
    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        """Return the archive files to unpack (downloading, reusing or rendering them)."""

    @abstractmethod
    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        """Catalogue the unpacked tree: track_id, path (relative to `audio_root`), label,
        and where known artist_id, official_split and content_sha256."""

    def audio_root(self, raw_dir: Path) -> Path:
        """The folder the catalogued paths are relative to: the unpacked archives in
        `raw_dir`, or, for a collection read in place, its own folder."""
        return raw_dir

    @abstractmethod
    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        """The community's split for this dataset: 'train'/'val'/'test' per track, NaN if none."""
