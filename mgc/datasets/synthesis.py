"""A deterministic synthesiser of genre-like music clips, the default corpus's sound.

No dataset can be downloaded on a machine without a network, yet a new user should see the
whole pipeline run in minutes. So clips are rendered from genre-like recipes (tempo, drum
pattern, bass line, chord progression, instrument timbre, distortion, swing, noise floor)
with random variation per clip. Genres overlap on purpose (shared tempos, borrowed drum
patterns, noise), so no classifier scores 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
