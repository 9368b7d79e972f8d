"""Decoding audio files into the waveforms the extractors expect.

One place decides how a file becomes a float32 mono waveform at a given rate, so the
indexer, the extraction stage and `mgc predict` can never disagree about it. soundfile
(libsndfile) reads wav, au, flac, ogg and mp3; soxr resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au", ".snd",
                    ".aiff", ".aif", ".aifc", ".caf", ".w64", ".rf64")
"""What `mgc predict` and a labelled folder take for audio; a file named explicitly is tried
whatever its extension."""


class AudioError(Exception):
    """A file that cannot give a usable waveform; `status` is "empty" or "unreadable"."""

    def __init__(self, path: Path | str, status: str, reason: str) -> None:
        super().__init__(f"{path}: {status}: {reason}")
        self.path = Path(path)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class AudioInfo:
    """What the track index records about a decoded file."""

    duration_s: float
    sample_rate_hz: int
    channels: int


_BLOCK_SAMPLES = 1 << 22  # 16 MiB of float32 per read, whatever the channel count


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode the whole file as float32 (frames, channels), or raise AudioError.

    The file is read in blocks until it ends rather than in one `soundfile.read`, which
    allocates the frame count the header claims up front: one corrupt header field (an mp3
    Xing frame count, say) would otherwise ask for hundreds of GiB and die of MemoryError.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise AudioError(path, "empty", "file has zero bytes")
        with soundfile.SoundFile(path) as handle:
            sample_rate = handle.samplerate
            block_frames = max(1, _BLOCK_SAMPLES // max(1, handle.channels))
            blocks = []
            while len(block := handle.read(block_frames, dtype="float32", always_2d=True)):
                blocks.append(block)
        data = np.concatenate(blocks) if blocks else np.empty((0, 1), np.float32)
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as error:
        raise AudioError(path, "unreadable", f"{type(error).__name__}: {error}") from error
    if data.shape[0] == 0:
        raise AudioError(path, "empty", "file decodes to zero samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "unreadable", "file contains NaN or infinite samples")
    return data, int(sample_rate)


def probe(path: Path | str) -> AudioInfo:
    """Decode `path` completely and describe it.

    A full decode (not just the header) is what catches truncated and corrupt files at
    indexing time instead of half way through an overnight extraction.
    """
    data, sample_rate = _decode(Path(path))
    return AudioInfo(
        duration_s=data.shape[0] / sample_rate,
        sample_rate_hz=sample_rate,
        channels=int(data.shape[1]),
    )


def load_audio(path: Path | str, sample_rate_hz: int) -> np.ndarray:
    """Return the file as a float32 mono waveform at `sample_rate_hz`.

    Channels are averaged (what every reference model's loader does) and the rate is
    converted with soxr's high-quality resampler. Float files can hold finite samples near
    float32's limit that overflow when mixed or resampled, and a file shorter than one
    sample at the target rate resamples to nothing: both are AudioErrors, so a caller never
    gets a waveform it cannot use.
    """
    path = Path(path)
    data, source_rate = _decode(path)
    mono = data.mean(axis=1, dtype=np.float32)
    if source_rate != sample_rate_hz:
        mono = soxr.resample(mono, source_rate, sample_rate_hz, quality="HQ").astype(np.float32)
    if mono.size == 0:
        raise AudioError(path, "empty", f"shorter than one sample at {sample_rate_hz} Hz")
    if not np.isfinite(mono).all():
        raise AudioError(path, "unreadable", "samples overflow float32 when mixed or resampled")
    return np.ascontiguousarray(mono, dtype=np.float32)


def fit_length(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop to the first `n_samples`, or zero-pad the end up to it."""
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if waveform.shape[-1] >= n_samples:
        return waveform[..., :n_samples]
    padding = [(0, 0)] * (waveform.ndim - 1) + [(0, n_samples - waveform.shape[-1])]
    return np.pad(waveform, padding)


def split_into_clips(waveform: np.ndarray, clip_samples: int) -> np.ndarray:
    """Cut a long waveform into consecutive clips of `clip_samples` (the last one padded).

    Used by `mgc predict` so a 4-minute song is judged on all of it, clip by clip, with
    the same clip length the classifier was trained on.
    """
    if clip_samples <= 0:
        raise ValueError(f"clip_samples must be positive, got {clip_samples}")
    n_clips = max(1, -(-waveform.shape[-1] // clip_samples))
    padded = fit_length(waveform, n_clips * clip_samples)
    return padded.reshape(n_clips, clip_samples)
