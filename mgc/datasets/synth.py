"""A deterministic synthetic music corpus in the real datasets' archive formats.

No dataset can be downloaded on a machine without a network, yet a new user should see the
whole pipeline run in minutes. So the corpus is rendered from genre-like recipes (tempo,
drum pattern, bass line, chord progression, instrument timbre, distortion, swing, noise
floor) with random variation per clip, and packed exactly as GTZAN (`genres.tar.gz` of .au
files) and FMA (`fma_small.zip` of mp3 + `fma_metadata.zip` with tracks.csv) are, so the
real unpack and index code runs on it. Genres overlap on purpose (shared tempos, borrowed
drum patterns, noise), so no classifier scores 100 %.
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

from mgc.datasets.base import Dataset
from mgc.datasets.fma import list_fma_tracks, official_split
from mgc.datasets.gtzan import list_gtzan_tracks, split_from_lists

GTZAN_RATE_HZ = 22050
FMA_RATE_HZ = 44100


@dataclass(frozen=True)
class Recipe:
    """How one genre sounds: the ranges each clip draws its own values from."""

    tempo_bpm: tuple[float, float]
    kick: str
    snare: str
    hat: str
    swing: float
    bass: str
    progression: tuple[int, ...]
    minor: bool
    harmonics: float
    attack_s: float
    decay_s: float
    drive: float
    noise_db: float
    melody_density: float


def _steps(pattern: str) -> np.ndarray:
    return np.array([c == "x" for c in pattern], dtype=bool)


NO_DRUMS = "................"
RECIPES: dict[str, Recipe] = {
    "blues": Recipe((70, 100), "x.....x.x.......", "....x.......x...", "x.x.x.x.x.x.x.x.",
                    0.28, "walking", (0, 5, 0, 7), False, 0.55, 0.01, 0.6, 1.5, -40, 0.5),
    "classical": Recipe((60, 110), NO_DRUMS, NO_DRUMS, NO_DRUMS,
                        0.0, "none", (0, 5, 7, 0), False, 0.35, 0.08, 1.2, 1.0, -55, 0.7),
    "country": Recipe((95, 130), "x.......x.......", "....x.......x...", "x.x.x.x.x.x.x.x.",
                      0.1, "root-fifth", (0, 5, 7, 0), False, 0.6, 0.005, 0.35, 1.2, -45, 0.6),
    "disco": Recipe((112, 128), "x...x...x...x...", "....x.......x...", "..x...x...x...x.",
                    0.0, "octave", (0, 3, 5, 3), True, 0.7, 0.005, 0.2, 1.5, -50, 0.4),
    "hiphop": Recipe((80, 100), "x......x..x.....", "....x.......x...", "x.x.x.x.x.x.x.x.",
                     0.2, "sub", (0, 8, 3, 7), True, 0.8, 0.002, 0.3, 1.8, -42, 0.25),
    "jazz": Recipe((100, 180), "x.........x.....", ".......x......x.", "x..x.xx..x.xx..x",
                   0.3, "walking", (2, 7, 0, 9), False, 0.45, 0.02, 0.5, 1.0, -48, 0.8),
    "metal": Recipe((140, 200), "x.x.x.x.x.x.x.x.", "....x.......x...", "x.x.x.x.x.x.x.x.",
                    0.0, "root", (0, 3, 5, 1), True, 0.95, 0.002, 0.25, 12.0, -38, 0.6),
    "pop": Recipe((100, 125), "x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x.",
                  0.05, "root", (0, 7, 9, 5), False, 0.6, 0.01, 0.3, 1.5, -52, 0.5),
    "reggae": Recipe((70, 90), "........x.......", "........x.......", "..x...x...x...x.",
                     0.15, "sub", (0, 5, 0, 7), False, 0.55, 0.005, 0.15, 1.3, -46, 0.3),
    "rock": Recipe((110, 150), "x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x.",
                   0.0, "root", (0, 5, 7, 5), False, 0.85, 0.003, 0.35, 6.0, -42, 0.5),
    "electronic": Recipe((120, 140), "x...x...x...x...", "....x.......x...", "..x...x...x...x.",
                         0.0, "sub", (0, 0, 5, 3), True, 0.9, 0.001, 0.15, 2.5, -55, 0.35),
    "experimental": Recipe((60, 180), "x..x..x....x.x..", "...x.....x....x.", "x.xx..x.x..xx.x.",
                           0.2, "random", (0, 1, 6, 11), True, 0.5, 0.05, 0.8, 4.0, -30, 0.6),
    "folk": Recipe((80, 120), NO_DRUMS, NO_DRUMS, NO_DRUMS,
                   0.1, "root-fifth", (0, 5, 7, 0), False, 0.5, 0.004, 0.7, 1.0, -45, 0.6),
    "instrumental": Recipe((70, 110), "x.......x.......", NO_DRUMS, "x...x...x...x...",
                           0.05, "root", (0, 9, 5, 7), False, 0.4, 0.05, 0.9, 1.0, -50, 0.7),
    "international": Recipe((90, 140), "x..x..x.x..x..x.", "...x..x....x..x.", "xxx.xxx.xxx.xxx.",
                            0.15, "root-fifth", (0, 1, 4, 5), False, 0.65, 0.005, 0.3, 1.4, -44,
                            0.7),
}

GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop",
                "jazz", "metal", "pop", "reggae", "rock")
FMA_GENRES = {"Electronic": "electronic", "Experimental": "experimental", "Folk": "folk",
              "Hip-Hop": "hiphop", "Instrumental": "instrumental",
              "International": "international", "Pop": "pop", "Rock": "rock"}


def _envelope(n: int, sample_rate: int, attack_s: float, decay_s: float) -> np.ndarray:
    t = np.arange(n) / sample_rate
    attack = np.clip(t / max(attack_s, 1e-4), 0.0, 1.0)
    return attack * np.exp(-t / max(decay_s, 1e-3))


def _tone(freq: float, n: int, sample_rate: int, harmonics: float, attack_s: float,
          decay_s: float, phase: float) -> np.ndarray:
    """Additive tone whose upper partials fall off as harmonics**k (timbre brightness)."""
    t = np.arange(n) / sample_rate
    partials = [k for k in range(1, 9) if freq * k < sample_rate / 2.2]
    wave = sum(harmonics ** (k - 1) * np.sin(2 * np.pi * freq * k * t + phase * k)
               for k in partials)
    return wave * _envelope(n, sample_rate, attack_s, decay_s)


def _drum_sounds(sample_rate: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = int(0.25 * sample_rate)
    t = np.arange(n) / sample_rate
    kick_freq = rng.uniform(45, 65) + rng.uniform(80, 140) * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(kick_freq) / sample_rate) * np.exp(-t / 0.12)
    noise = rng.standard_normal(n)
    snare = (0.7 * noise + 0.5 * np.sin(2 * np.pi * rng.uniform(160, 220) * t)) * np.exp(-t / 0.07)
    hat = np.diff(noise, prepend=0.0) * np.exp(-t / rng.uniform(0.01, 0.04)) * 0.4
    return {"kick": kick, "snare": snare, "hat": hat}


def _place(track: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    if start >= track.size:
        return
    end = min(track.size, start + sound.size)
    track[start:end] += gain * sound[: end - start]


def _mutate(pattern: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    flips = rng.random(pattern.size) < rate
    return pattern ^ flips


def render_clip(genre: str, seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """Render one clip of `genre` as float32 in [-1, 1]; the same seed gives the same clip."""
    rng = np.random.default_rng(seed)
    recipe = RECIPES[genre]
    if rng.random() < 0.2:
        borrowed = RECIPES[rng.choice(sorted(RECIPES))]
        drums = (borrowed.kick, borrowed.snare, borrowed.hat)
    else:
        drums = (recipe.kick, recipe.snare, recipe.hat)
    n = int(seconds * sample_rate)
    half_or_double_feel = rng.choice([1.0, 1.0, 1.0, 0.75, 1.33])
    tempo = rng.uniform(*recipe.tempo_bpm) * half_or_double_feel
    step_s = 60.0 / tempo / 4
    swing = np.clip(recipe.swing + rng.normal(0, 0.05), 0, 0.4)
    key_hz = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    scale = np.array([0, 2, 3, 5, 7, 8, 10] if recipe.minor else [0, 2, 4, 5, 7, 9, 11])
    harmonics = float(np.clip(recipe.harmonics + rng.normal(0, 0.12), 0.1, 0.97))
    attack_s = recipe.attack_s * rng.uniform(0.5, 2.0)
    decay_s = recipe.decay_s * rng.uniform(0.6, 1.6)

    drums_track = np.zeros(n)
    melody_track = np.zeros(n)
    sounds = _drum_sounds(sample_rate, rng)
    patterns = {name: _mutate(_steps(p), rng, 0.08) for name, p in zip(sounds, drums, strict=True)}
    gains = {"kick": rng.uniform(0.6, 1.0), "snare": rng.uniform(0.3, 0.7),
             "hat": rng.uniform(0.1, 0.4)}
    n_steps = int(seconds / step_s) + 1
    for step in range(n_steps):
        offset = step_s * (step + (swing if step % 2 else 0.0))
        start = int(offset * sample_rate)
        for name, pattern in patterns.items():
            if pattern[step % 16]:
                _place(drums_track, sounds[name], start, gains[name])
        beat, bar = step // 4, step // 16
        degree = recipe.progression[bar % len(recipe.progression)]
        root_hz = key_hz * 2 ** (degree / 12)
        if step % 16 == 0:
            chord_n = int(16 * step_s * sample_rate)
            third = 3 if recipe.minor else 4
            for interval in (0, third, 7):
                _place(melody_track, _tone(2 * root_hz * 2 ** (interval / 12), chord_n,
                                           sample_rate, harmonics * 0.7, 0.05, 1.5,
                                           rng.uniform(0, 6.28)), start, 0.12)
        if step % 4 == 0 and recipe.bass != "none":
            bass_hz = {"root": root_hz, "sub": root_hz / 2,
                       "octave": root_hz * (2 if beat % 2 else 1),
                       "root-fifth": root_hz * (1.5 if beat % 2 else 1),
                       "walking": root_hz * 2 ** (scale[beat % 7] / 12),
                       "random": root_hz * 2 ** (rng.integers(0, 12) / 12)}[recipe.bass]
            bass = _tone(bass_hz / 2, int(4 * step_s * sample_rate), sample_rate, 0.3,
                         0.005, 0.4 if recipe.bass != "sub" else 1.0, 0.0)
            _place(melody_track, bass, start, 0.35)
        if step % 2 == 0 and rng.random() < recipe.melody_density:
            note_hz = 2 * key_hz * 2 ** ((scale[rng.integers(0, 7)] + 12 * rng.integers(0, 2)) / 12)
            note = _tone(note_hz, int(rng.uniform(1, 4) * step_s * sample_rate * 2), sample_rate,
                         harmonics, attack_s, decay_s, rng.uniform(0, 6.28))
            _place(melody_track, note, start, rng.uniform(0.15, 0.35))

    drive = recipe.drive * rng.uniform(0.6, 1.5)
    melody_track = np.tanh(drive * melody_track) / np.tanh(drive)
    mix = drums_track * rng.uniform(0.5, 1.2) + melody_track
    noise_db = recipe.noise_db + rng.uniform(-8, 8)
    mix = mix / (np.max(np.abs(mix)) + 1e-9) * 0.8
    mix += 10 ** (noise_db / 20) * rng.standard_normal(n)
    return np.clip(mix, -1.0, 1.0).astype(np.float32)


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
                        corrupt_tracks: int = 1) -> dict[str, Path]:
    """Write `fma_small.zip` (mp3, `fma_small/NNN/NNNNNN.mp3`) and `fma_metadata.zip`.

    tracks.csv has FMA's real 3-row header and the columns the indexer reads, plus rows of
    another subset ('medium') without audio, which the indexer must filter out.
    `corrupt_tracks` mp3 files hold no audio, like FMA's 099134, 108925 and 133297.
    """
    rng = np.random.default_rng(seed + 1)
    dest_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[tuple[str, str], object]] = []
    track_ids: list[int] = []
    labels: list[str] = []
    next_id = 2
    for genre_top in FMA_GENRES:
        for _ in range(clips_per_genre):
            track_ids.append(next_id)
            labels.append(genre_top)
            next_id += int(rng.integers(1, 40))
    official = _stratified_official_split(labels, rng)
    jobs = [ClipJob(FMA_GENRES[genre_top], clip_seconds, FMA_RATE_HZ,
                    seed * 1_000_003 + 500_000 + track_id, "MP3", stereo=True,
                    corrupt=genre_top == "Rock" and order % clips_per_genre < corrupt_tracks)
            for order, (track_id, genre_top) in enumerate(zip(track_ids, labels, strict=True))]
    small_zip = dest_dir / "fma_small.zip"
    with zipfile.ZipFile(small_zip, "w", compression=zipfile.ZIP_STORED) as archive:
        for order, (payload, track_id, genre_top, split) in enumerate(
                zip(_render_all(jobs), track_ids, labels, official, strict=True)):
            tid = f"{track_id:06d}"
            archive.writestr(f"fma_small/{tid[:3]}/{tid}.mp3", payload)
            rows.append({("artist", "id"): 1000 + order // 3, ("set", "split"): split,
                         ("set", "subset"): "small", ("track", "duration"): int(clip_seconds),
                         ("track", "genre_top"): genre_top, ("track", "title"): f"synth {tid}",
                         "track_id": track_id})
    for extra in range(5):
        rows.append({("artist", "id"): 9000 + extra, ("set", "split"): "training",
                     ("set", "subset"): "medium", ("track", "duration"): 30,
                     ("track", "genre_top"): "Pop", ("track", "title"): "not in small",
                     "track_id": next_id + extra})
    tracks = pd.DataFrame(rows).set_index("track_id")
    tracks.columns = pd.MultiIndex.from_tuples(tracks.columns)
    metadata_zip = dest_dir / "fma_metadata.zip"
    with zipfile.ZipFile(metadata_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fma_metadata/tracks.csv", tracks.to_csv())
    return {"audio": small_zip, "metadata": metadata_zip}


class SynthGtzan(Dataset):
    """GTZAN-shaped synthetic corpus: 10 GTZAN genres, .au files in `genres.tar.gz`."""

    name = "synth_gtzan"
    labels = GTZAN_GENRES
    paper_split_stratified = True

    def __init__(self, clips_per_genre: int = 20, clip_seconds: float = 8.0, seed: int = 0,
                 corrupt_tracks: int = 1) -> None:
        _check_synth_options(self.name, clips_per_genre, clip_seconds, corrupt_tracks)
        self.clips_per_genre = clips_per_genre
        self.nominal_clip_seconds = float(clip_seconds)
        self.seed = seed
        self.corrupt_tracks = corrupt_tracks

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        return [render_gtzan_archive(staging_dir, self.clips_per_genre,
                                     self.nominal_clip_seconds, self.seed, self.corrupt_tracks)]

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return list_gtzan_tracks(raw_dir)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return split_from_lists(tracks, raw_dir / "genres" / "split_lists")


class SynthFma(Dataset):
    """FMA-shaped synthetic corpus: 8 FMA top genres, mp3 zip + tracks.csv metadata zip."""

    name = "synth_fma"
    labels = tuple(FMA_GENRES)
    paper_split_stratified = False

    def __init__(self, clips_per_genre: int = 20, clip_seconds: float = 8.0, seed: int = 0,
                 corrupt_tracks: int = 1) -> None:
        _check_synth_options(self.name, clips_per_genre, clip_seconds, corrupt_tracks)
        self.clips_per_genre = clips_per_genre
        self.nominal_clip_seconds = float(clip_seconds)
        self.seed = seed
        self.corrupt_tracks = corrupt_tracks

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        archives = render_fma_archives(staging_dir, self.clips_per_genre,
                                       self.nominal_clip_seconds, self.seed, self.corrupt_tracks)
        return [archives["audio"], archives["metadata"]]

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return list_fma_tracks(raw_dir)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return official_split(tracks)


def _check_synth_options(dataset: str, clips_per_genre: int, clip_seconds: float,
                         corrupt_tracks: int) -> None:
    if int(clips_per_genre) < 5:
        raise ValueError(f"data.sources.{dataset}.clips_per_genre={clips_per_genre!r}: "
                         "must be at least 5 (train, validation and test need members)")
    if not 1.0 <= float(clip_seconds) <= 60.0:
        raise ValueError(f"data.sources.{dataset}.clip_seconds={clip_seconds!r}: "
                         "must be between 1 and 60")
    if not 0 <= int(corrupt_tracks) < int(clips_per_genre):
        raise ValueError(f"data.sources.{dataset}.corrupt_tracks={corrupt_tracks!r}: "
                         "must be >= 0 and fewer than clips_per_genre")
