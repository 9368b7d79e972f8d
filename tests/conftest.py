"""Shared fixtures: a tiny synthetic GTZAN and FMA corpus, rendered and indexed once per session.

The corpus goes through the real render -> archive -> safe unpack -> index path
(`build_dataset`), so every test that uses it also exercises that code. Sizes are the
smallest the synthetic datasets accept (5 clips per genre, 2 s), to keep the suite fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

CLIPS_PER_GENRE = 5
CLIP_SECONDS = 2.0


@dataclass(frozen=True)
class Corpus:
    """A prepared dataset: the object, its unpacked tree and its track table."""

    dataset: object
    raw_dir: Path
    tracks: pd.DataFrame


def _build(name: str, root: Path) -> Corpus:
    from mgc.datasets import get_dataset
    from mgc.pipeline.corpus import build_dataset
    from mgc.pipeline.layout import Layout

    dataset = get_dataset(name, clips_per_genre=CLIPS_PER_GENRE, clip_seconds=CLIP_SECONDS,
                          seed=0, corrupt_tracks=1)
    tracks = build_dataset(dataset, Layout(data_dir=root), progress=False)
    return Corpus(dataset=dataset, raw_dir=root / "raw" / name, tracks=tracks)


@pytest.fixture(scope="session")
def synth_gtzan(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """synth_gtzan: 10 genres x 5 clips of 2 s, one corrupt jazz file."""
    return _build("synth_gtzan", tmp_path_factory.mktemp("synth_gtzan_data"))


@pytest.fixture(scope="session")
def synth_fma(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """synth_fma: 8 genres x 5 clips of 2 s, one empty Rock mp3, 5 'medium' rows."""
    return _build("synth_fma", tmp_path_factory.mktemp("synth_fma_data"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tiny networks train fastest on one thread, and CI machines are shared."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the user's ~/.cache/mgc."""
    monkeypatch.setenv("MGC_CACHE", str(tmp_path_factory.getbasetemp() / "mgc-cache"))
