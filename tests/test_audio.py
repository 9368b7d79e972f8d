"""mgc.audio: decoding to float32 mono at a rate, errors with a status, crop/pad/clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from mgc.audio import AudioError, fit_length, load_audio, probe, split_into_clips


def _sine(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / rate)[spectrum.argmax()])


def test_au_pcm16_decodes_to_float32_within_quantisation(tmp_path: Path) -> None:
    wave = _sine(440.0, 1.0, 22050)
    path = tmp_path / "blues.00000.au"
    soundfile.write(path, wave, 22050, format="AU", subtype="PCM_16")
    decoded = load_audio(path, 22050)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert decoded.shape == wave.shape
    assert np.max(np.abs(decoded - wave)) <= 1.0 / 32768 + 1e-7


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = _sine(300.0, 0.5, 16000), _sine(700.0, 0.5, 16000, amplitude=0.25)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 16000), (left + right) / 2, atol=1e-7)


def test_resampling_keeps_length_pitch_and_level(tmp_path: Path) -> None:
    wave = _sine(440.0, 2.0, 44100)
    path = tmp_path / "tone.wav"
    soundfile.write(path, wave, 44100, subtype="FLOAT")
    resampled = load_audio(path, 16000)
    assert resampled.dtype == np.float32
    assert resampled.size == round(wave.size * 16000 / 44100)
    assert abs(_peak_hz(resampled, 16000) - 440.0) < 1.0
    middle = resampled[2000:-2000]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_eight_channel_96khz_file_is_usable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    channels = rng.uniform(-0.5, 0.5, size=(96000, 8)).astype(np.float32)
    channels[:, 0] += _sine(1000.0, 1.0, 96000)
    path = tmp_path / "eight.wav"
    soundfile.write(path, channels, 96000, subtype="FLOAT")
    info = probe(path)
    assert (info.channels, info.sample_rate_hz) == (8, 96000)
    assert info.duration_s == pytest.approx(1.0)
    mono = load_audio(path, 22050)
    assert mono.shape == (22050,)
    assert abs(_peak_hz(mono, 22050) - 1000.0) < 2.0


def test_mp3_round_trip_keeps_pitch_and_duration(tmp_path: Path) -> None:
    wave = _sine(523.25, 2.0, 44100)
    path = tmp_path / "000002.mp3"
    soundfile.write(path, np.stack([wave, wave], axis=1), 44100, format="MP3")
    info = probe(path)
    assert info.channels == 2 and info.sample_rate_hz == 44100
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    decoded = load_audio(path, 22050)
    assert abs(_peak_hz(decoded, 22050) - 523.25) < 2.0


@pytest.mark.parametrize(
    ("name", "payload", "status"),
    [
        ("zero.mp3", b"", "empty"),
        ("garbage.wav", b"RIFF" + bytes(100), "unreadable"),
        ("zero_channels.au", b".snd" + bytes(20), "unreadable"),
    ],
)
def test_broken_files_raise_audio_error_with_status(tmp_path: Path, name: str, payload: bytes,
                                                    status: str) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(AudioError) as caught:
        load_audio(path, 16000)
    assert caught.value.status == status
    assert caught.value.path == path
    assert str(path) in str(caught.value) and caught.value.reason


def test_header_only_wav_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "no_frames.wav"
    soundfile.write(path, np.zeros((0, 1), np.float32), 22050)
    with pytest.raises(AudioError) as caught:
        probe(path)
    assert caught.value.status == "empty"


def test_nan_samples_are_unreadable(tmp_path: Path) -> None:
    wave = _sine(440.0, 0.1, 22050)
    wave[100] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, wave, 22050, subtype="FLOAT")
    with pytest.raises(AudioError) as caught:
        load_audio(path, 22050)
    assert caught.value.status == "unreadable"
    assert "NaN" in caught.value.reason


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as caught:
        probe(tmp_path / "absent.wav")
    assert caught.value.status == "unreadable"


def test_fit_length_crops_and_zero_pads() -> None:
    wave = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 4), wave[:4])
    padded = fit_length(wave, 13)
    np.testing.assert_array_equal(padded, np.concatenate([wave, np.zeros(3, np.float32)]))
    batch = np.ones((3, 5), np.float32)
    assert fit_length(batch, 8).shape == (3, 8)
    assert fit_length(batch, 8)[:, 5:].sum() == 0
    with pytest.raises(ValueError, match="n_samples"):
        fit_length(wave, 0)


def test_split_into_clips_covers_the_song_in_order() -> None:
    wave = np.arange(1, 26, dtype=np.float32)
    clips = split_into_clips(wave, 10)
    assert clips.shape == (3, 10)
    np.testing.assert_array_equal(clips.reshape(-1)[:25], wave)
    assert not clips.reshape(-1)[25:].any()
    assert split_into_clips(wave, 25).shape == (1, 25)
    assert split_into_clips(np.zeros(0, np.float32), 4).shape == (1, 4)
    with pytest.raises(ValueError, match="clip_samples"):
        split_into_clips(wave, -1)

