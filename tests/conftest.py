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


OWN_GENRES = {"Blues": "blues", "classical ": "classical", "METAL": "metal", "reggae": "reggae"}
"""Folder name -> the synthetic recipe it is rendered from: mixed case and a trailing space,
as people name folders."""
OWN_FORMATS = (("wav", "PCM_16", 8000, 1), ("flac", "PCM_24", 16000, 2),
               ("ogg", "VORBIS", 22050, 1), ("mp3", None, 44100, 2), ("wav", "FLOAT", 48000, 2),
               ("flac", "PCM_16", 32000, 1))
OWN_CLIP_SECONDS = 3.0


@pytest.fixture(scope="session")
def own_music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of your own music: 4 genres x 6 files in wav, flac, ogg and mp3 at 8-48 kHz,
    mono and stereo, 2-4 s long; one corrupt, one empty, one in a nested subfolder, one
    cover image and one file with no genre folder, plus a held-out clip outside it."""
    import numpy as np
    import soundfile

    from mgc.datasets.synthesis import render_clip

    root = tmp_path_factory.mktemp("own_music") / "music"
    for genre_index, (folder, recipe) in enumerate(OWN_GENRES.items()):
        for index, (extension, subtype, rate, channels) in enumerate(OWN_FORMATS):
            directory = root / folder / ("live" if index == 5 else "")
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{recipe} {index}.{extension}"
            seconds = OWN_CLIP_SECONDS + (index % 3 - 1)
            wave = render_clip(recipe, seconds, rate, seed=100 * genre_index + index)
            data = np.stack([wave, 0.8 * wave], axis=1) if channels == 2 else wave
            soundfile.write(path, data, rate, subtype=subtype,
                            format="MP3" if extension == "mp3" else None)
    (root / "METAL" / "metal 0.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")  # corrupt
    (root / "reggae" / "reggae 3.mp3").write_bytes(b"")                           # empty
    (root / "Blues" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    soundfile.write(root / "untitled.wav", render_clip("blues", 2.0, 22050, seed=7), 22050)
    held_out = root.parent / "held_out"
    held_out.mkdir()
    soundfile.write(held_out / "classical.flac",
                    render_clip("classical", OWN_CLIP_SECONDS, 44100, seed=999), 44100)
    return root
