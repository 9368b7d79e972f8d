"""Decoding audio files into the waveforms the extractors expect.

One place decides how a file becomes a float32 mono waveform at a given rate, so the
indexer, the extraction stage and `mgc predict` can never disagree about it. soundfile
(libsndfile) reads wav, au, flac, ogg and mp3; soxr resamples.
"""

from __future__ import annotations

import contextlib
import functools
import math
import tempfile
from collections.abc import Iterator
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

MIN_RATE_HZ = 1_000
MAX_RATE_HZ = 768_000
"""Sample rates a header may declare: 1 kHz (below any music recording; a header claiming
1 Hz would make resampling to 22,050 Hz multiply the data 22,050-fold) to 768 kHz (the
highest rate studio converters run at)."""
MAX_CHANNELS = 256
"""Channels a header may declare (ambisonic and multitrack files have up to 64)."""
MAX_DURATION_S = 24 * 3600
"""Decoding stops, and the file is unreadable, past 24 hours of audio. The frame count a
header declares is never trusted or allocated: files are read in blocks until they end."""
MAX_ABS_SAMPLE = 2.0**16
"""The largest sample magnitude taken for audio. Float files are scaled to ±1 (some to the
±32,768 of 16-bit integers); finite samples far beyond that (a corrupt file's 1e17) would
overflow the spectrogram's power, float32, into Inf and NaN features."""
_RESAMPLE_MARGIN_S = 1.0
"""Source audio decoded past the last needed sample when a file is cropped: more than soxr's
HQ filter reaches, so the cropped output is bit-identical to resampling the whole file."""
_DECODE_ERRORS = (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError, OSError)


@functools.cache
def prepare_for_threads() -> None:
    """Decode a tiny file, and fail to decode a bogus one, once in the calling thread, so
    that every soundfile (cffi) function the decoders use is bound before threads share it.

    cffi 2 binds C functions and types lazily on first use, and on GIL builds of Python
    that first binding is not thread-safe: two decoder threads reaching one function at
    once abort the process (`realize_c_type.c: Assertion ... failed`, seen in the extract
    stage). Bound once, later calls from any thread are plain calls.
    """
    with tempfile.TemporaryDirectory() as scratch:
        good, bogus = Path(scratch) / "tone.wav", Path(scratch) / "bogus.wav"
        soundfile.write(good, np.zeros(64, dtype=np.float32), MIN_RATE_HZ, subtype="PCM_16")
        bogus.write_bytes(b"not audio at all")
        with _Decoder(good) as decoder:
            for _ in decoder.blocks():
                pass
        with contextlib.suppress(AudioError):
            _Decoder(bogus)


class _Decoder:
    """An open audio file whose header has been checked, read in blocks of float32 frames."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if path.stat().st_size == 0:
                raise AudioError(path, "empty", "file has zero bytes")
            self._handle = soundfile.SoundFile(path)
        except AudioError:
            raise
        except _DECODE_ERRORS as error:
            raise AudioError(path, "unreadable", f"{type(error).__name__}: {error}") from error
        self.rate, self.channels = int(self._handle.samplerate), int(self._handle.channels)
        problem = (f"header declares {self.rate} Hz, outside {MIN_RATE_HZ:,}-{MAX_RATE_HZ:,} Hz"
                   if not MIN_RATE_HZ <= self.rate <= MAX_RATE_HZ else
                   f"header declares {self.channels} channels, outside 1-{MAX_CHANNELS}"
                   if not 1 <= self.channels <= MAX_CHANNELS else None)
        if problem:
            self._handle.close()
            raise AudioError(path, "unreadable", problem)

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def blocks(self, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """(frames, channels) float32 blocks, in order, up to `max_frames` frames in all.

        Every block is checked as it is read (NaN, Inf, magnitudes beyond MAX_ABS_SAMPLE), so
        only one block is ever alive here however long the file is, or claims to be.
        """
        block_frames = max(1, _BLOCK_SAMPLES // self.channels)
        limit, total = MAX_DURATION_S * self.rate, 0
        while max_frames is None or total < max_frames:
            want = block_frames if max_frames is None else min(block_frames, max_frames - total)
            try:
                block = self._handle.read(want, dtype="float32", always_2d=True)
            except _DECODE_ERRORS as error:
                raise AudioError(self.path, "unreadable",
                                 f"{type(error).__name__}: {error}") from error
            if not len(block):
                break
            peak = np.max(np.abs(block))
            if not np.isfinite(peak):
                raise AudioError(self.path, "unreadable", "file contains NaN or infinite samples")
            if peak > MAX_ABS_SAMPLE:
                raise AudioError(self.path, "unreadable", f"samples reach {peak:.3g}, beyond "
                                 f"the ±{MAX_ABS_SAMPLE:g} any real audio file holds")
            total += len(block)
            if total > limit:
                raise AudioError(self.path, "unreadable",
                                 f"longer than the {MAX_DURATION_S // 3600} h limit")
            yield block
        if total == 0:
            raise AudioError(self.path, "empty", "file decodes to zero samples")


def probe(path: Path | str) -> AudioInfo:
    """Decode `path` completely and describe it.

    A full decode (not just the header) is what catches truncated and corrupt files at
    indexing time instead of half way through an overnight extraction. It streams: memory
    is one block whatever the file's length.
    """
    with _Decoder(Path(path)) as decoder:
        frames = sum(len(block) for block in decoder.blocks())
        return AudioInfo(duration_s=frames / decoder.rate, sample_rate_hz=decoder.rate,
                         channels=decoder.channels)


def stream_audio(path: Path | str, sample_rate_hz: int,
                 max_samples: int | None = None) -> Iterator[np.ndarray]:
    """The file as consecutive float32 mono blocks at `sample_rate_hz`, decoded as they are
    consumed; with `max_samples`, only the first `max_samples` of them.

    Channels are averaged (what every reference model's loader does) and the rate is
    converted with soxr's high-quality resampler, streaming; its output equals resampling
    the whole file at once, bit for bit, and a cropped file is decoded only up to a margin
    past the crop that makes its samples the whole file's. Float files can hold finite
    samples near float32's limit that overflow when mixed or resampled, and a file shorter
    than one sample at the target rate resamples to nothing: both are AudioErrors (raised
    while iterating), so a caller never gets a waveform it cannot use.
    """
    path = Path(path)
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be positive or None, got {max_samples}")
    with _Decoder(path) as decoder:
        source_rate = decoder.rate
        resampler = None if source_rate == sample_rate_hz else soxr.ResampleStream(
            source_rate, sample_rate_hz, 1, dtype="float32", quality="HQ")
        max_frames = None if max_samples is None or resampler is None else (
            -(-max_samples * source_rate // sample_rate_hz)
            + math.ceil(_RESAMPLE_MARGIN_S * source_rate))
        if resampler is None:
            max_frames = max_samples
        # Feed the resampler pieces whose output is one block at most, even upsampling 96x.
        piece = max(1024, _BLOCK_SAMPLES * source_rate // sample_rate_hz)
        emitted = 0

        def checked(mono: np.ndarray) -> np.ndarray:
            nonlocal emitted
            if max_samples is not None:
                mono = mono[:max_samples - emitted]
            if not np.isfinite(mono).all():
                raise AudioError(path, "unreadable",
                                 "samples overflow float32 when mixed or resampled")
            emitted += mono.size
            return np.ascontiguousarray(mono, dtype=np.float32)

        for block in decoder.blocks(max_frames):
            mono = block.mean(axis=1, dtype=np.float32)
            pieces = [mono] if resampler is None else (
                resampler.resample_chunk(mono[start:start + piece])
                for start in range(0, mono.size, piece))
            for out in pieces:
                if (out := checked(out)).size:
                    yield out
        flush = resampler is not None and (max_samples is None or emitted < max_samples)
        if flush and (out := checked(resampler.resample_chunk(np.empty(0, np.float32),
                                                              last=True))).size:
            yield out
        if emitted == 0:
            raise AudioError(path, "empty", f"shorter than one sample at {sample_rate_hz} Hz")


def load_audio(path: Path | str, sample_rate_hz: int,
               max_samples: int | None = None) -> np.ndarray:
    """Return the file as a float32 mono waveform at `sample_rate_hz` (`stream_audio`
    joined); with `max_samples`, its first `max_samples` only, decoded no further than
    they need, so memory follows the clip and not the file."""
    blocks = list(stream_audio(path, sample_rate_hz, max_samples))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


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
