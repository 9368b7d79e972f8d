"""Small audio files that once cost more than their own row: headers declaring absurd rates
or lengths, samples that overflow features, silence, one sample, link loops, names carrying
terminal control characters. Shared by the audio property tests and the predict tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile

RATE_HZ = 22050


def tone(seconds: float, rate: int = RATE_HZ) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def wav_declaring_rate(path: Path, rate_hz: int) -> Path:
    """A 1 s 16-bit wav whose header says `rate_hz` (the byte rate follows it)."""
    soundfile.write(path, tone(1.0), RATE_HZ, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"fmt "
    data[24:28] = struct.pack("<I", rate_hz)
    data[28:32] = struct.pack("<I", (rate_hz * 2) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def wav_declaring_huge_length(path: Path) -> Path:
    """A 1 s 16-bit wav whose RIFF and data chunk sizes claim 4 GiB."""
    soundfile.write(path, tone(1.0), RATE_HZ, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFF0)
    position = data.find(b"data")
    data[position + 4:position + 8] = struct.pack("<I", 0xFFFFFFE0)
    path.write_bytes(bytes(data))
    return path


def mp3_claiming_billions_of_frames(path: Path) -> Path:
    soundfile.write(path, tone(1.0, 44100), 44100, format="MP3")
    data = bytearray(path.read_bytes())
    xing = data.find(b"Xing")
    assert xing > 0 and struct.unpack(">I", data[xing + 4:xing + 8])[0] & 1
    data[xing + 8:xing + 12] = struct.pack(">I", 0x7FFFFFFF)
    path.write_bytes(bytes(data))
    return path


def flac_claiming_billions_of_frames(path: Path) -> Path:
    soundfile.write(path, tone(1.0, 44100), 44100, format="FLAC")
    data = bytearray(path.read_bytes())
    streaminfo = int.from_bytes(data[8:26], "big") | (1 << 36) - 1
    data[8:26] = streaminfo.to_bytes(18, "big")
    path.write_bytes(bytes(data))
    return path


def wav_with_peaks(path: Path, peak: float, seconds: float = 1.0) -> Path:
    """A float wav of noise whose loudest sample is `peak` (1e17 fits float32 easily)."""
    noise = np.random.default_rng(0).uniform(-1, 1, max(1, round(seconds * RATE_HZ)))
    noise[0] = 1.0
    soundfile.write(path, (noise * peak).astype(np.float32), RATE_HZ, subtype="FLOAT")
    return path


def silent_wav(path: Path, seconds: float = 3.0) -> Path:
    soundfile.write(path, np.zeros(round(seconds * RATE_HZ), np.float32), RATE_HZ)
    return path


def one_sample_wav(path: Path) -> Path:
    soundfile.write(path, np.full(1, 0.5, np.float32), RATE_HZ, subtype="FLOAT")
    return path


def long_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """A long 16-bit tone written cheaply: one second rendered, written over and over."""
    second = (tone(1.0, rate) * 32767).astype(np.int16)
    with soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16", format="WAV") as handle:
        for _ in range(round(seconds)):
            handle.write(second)
    return path


def symlink_loop(path: Path) -> Path:
    path.symlink_to(path.name)
    return path


HEADER_MAKERS = {
    "rate_1hz.wav": lambda p: wav_declaring_rate(p, 1),
    "rate_100mhz.wav": lambda p: wav_declaring_rate(p, 100_000_000),
    "huge_length.wav": wav_declaring_huge_length,
    "huge_xing.mp3": mp3_claiming_billions_of_frames,
    "huge_streaminfo.flac": flac_claiming_billions_of_frames,
    "peaks_1e17.wav": lambda p: wav_with_peaks(p, 1e17),
}
"""File name -> maker of the header and sample-value cases."""
