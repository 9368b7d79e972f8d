"""Property-based tests of mgc.audio: whatever the bytes, a usable waveform or an AudioError.

Every file the loader meets either becomes a well-formed waveform (float32, 1-D, non-empty,
finite, as long as the file at the asked rate) or raises `AudioError` with a status and a
reason. Anything else (MemoryError, ZeroDivisionError, a crash, a hang) is a failure: the
indexer decodes tens of thousands of files from mirrors nobody controls, and one bad file
must cost one row of the track table, not the stage. Inputs: random bytes behind real
magic numbers, and real files of every format (wav, au, flac, ogg, mp3), 0 to 30,000 frames,
1 to 8 channels, 8 to 96 kHz, with NaN, Inf or overflowing samples, truncated or with
overwritten bytes. Profiles: tests/hypothesis_profiles.py.
"""

from __future__ import annotations

import faulthandler
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
from hypothesis import example, given
from hypothesis import strategies as st

from mgc.audio import (
    MAX_ABS_SAMPLE,
    MAX_RATE_HZ,
    MIN_RATE_HZ,
    AudioError,
    load_audio,
    probe,
    stream_audio,
)
from mgc.extractors import load as load_extractor
from tests import hypothesis_profiles  # noqa: F401  (loads the profile)
from tests.bad_audio import (
    HEADER_MAKERS,
    flac_claiming_billions_of_frames,
    mp3_claiming_billions_of_frames,
    silent_wav,
    wav_declaring_rate,
    wav_with_peaks,
)

# Overflowing samples are one of the inputs; numpy warns about them on the way to AudioError.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

WATCHDOG_S = 120
TARGET_RATES = (8000, 16000, 22050, 32000, 44100, 96000)
SOURCE_RATES = (8000, 11025, 22050, 44100, 48000, 96000)
EXTENSIONS = ("wav", "au", "flac", "ogg", "mp3", "aiff", "raw", "")
MAGIC = (b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b".snd\x00\x00\x00\x18", b"fLaC\x00\x00\x00\x22",
         b"OggS\x00\x02", b"ID3\x03\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x64",
         b"FORM\x00\x00\x00\x00AIFF")
# Format -> (subtypes, most channels, highest rate) that soundfile can write.
FORMATS = {
    "wav": (("PCM_16", "PCM_24", "FLOAT", "DOUBLE"), 8, 96000),
    "au": (("PCM_16", "FLOAT"), 8, 96000),
    "flac": (("PCM_16", "PCM_24"), 8, 96000),
    "ogg": (("VORBIS",), 8, 96000),
    "mp3": (("MPEG_LAYER_III",), 2, 48000),
}
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
LOSSLESS = ("wav", "au", "flac")
QUANTUM = {"PCM_16": 2.0**-15, "PCM_24": 2.0**-23, "FLOAT": 1e-7, "DOUBLE": 1e-7}
WRITE_BLOCK_FRAMES = 4096
"""libsndfile 1.2's Vorbis encoder crashes on one very large write; blocks avoid it."""


@contextmanager
def watchdog(seconds: float = WATCHDOG_S) -> Iterator[None]:
    """Abort the run with every thread's traceback if a decode hangs.

    A loop inside libsndfile's C code cannot be interrupted from Python, but faulthandler's
    watchdog thread can still dump the stacks and exit, so CI fails instead of stalling.
    """
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def assert_clear_audio_error(error: AudioError, path: Path) -> None:
    assert error.status in ("empty", "unreadable")
    assert error.path == path and error.reason.strip()
    assert str(error) == f"{path}: {error.status}: {error.reason}"


def decode_outcome(path: Path, sample_rate_hz: int) -> np.ndarray | AudioError:
    """load_audio's waveform (checked well-formed) or its AudioError (checked clear).

    probe must agree: a file it refuses cannot load, and a waveform is as long as the
    file's duration at the asked rate. Any other exception propagates and fails the test.
    """
    with watchdog():
        try:
            info = probe(path)
        except AudioError as error:
            assert_clear_audio_error(error, path)
            with pytest.raises(AudioError) as again:
                load_audio(path, sample_rate_hz)
            assert again.value.status == error.status
            return error
        try:
            wave = load_audio(path, sample_rate_hz)
        except AudioError as error:
            assert_clear_audio_error(error, path)
            return error
    assert isinstance(wave, np.ndarray) and wave.dtype == np.float32
    assert wave.ndim == 1 and wave.size > 0 and wave.flags.c_contiguous
    assert np.isfinite(wave).all()
    assert abs(wave.size - info.duration_s * sample_rate_hz) <= 1
    return wave


@dataclass(frozen=True)
class Recipe:
    """A real audio file to render: format, layout, length, and optional poisoned samples."""

    extension: str
    subtype: str
    channels: int
    sample_rate_hz: int
    frames: int
    poison: str | None = None
    """"nan" or "inf" (a few bad samples), "huge" (finite samples near float32's limit)."""
    seed: int = 0

    def samples(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        t = np.arange(self.frames)[:, None] / self.sample_rate_hz
        tones = 0.4 * np.sin(2 * np.pi * 440.0 * (1 + np.arange(self.channels)) * t)
        data = (tones + 0.05 * rng.standard_normal((self.frames, self.channels)))
        data = data.astype(np.float64 if self.subtype == "DOUBLE" else np.float32)
        if self.poison in ("nan", "inf") and self.frames:
            bad = {"nan": np.nan, "inf": np.inf}[self.poison]
            spots = rng.integers(0, self.frames, size=3)
            data[spots, rng.integers(0, self.channels, size=3)] = bad * rng.choice([-1, 1])
        if self.poison == "huge":
            data[:] = np.float32(3.4e38) * np.where(np.arange(self.frames) % 2, 1, -1)[:, None]
        return data

    def write(self, path: Path) -> np.ndarray:
        data = self.samples()
        with soundfile.SoundFile(path, "w", self.sample_rate_hz, self.channels,
                                 subtype=self.subtype,
                                 format={"au": "AU", "ogg": "OGG", "mp3": "MP3"}.get(
                                     self.extension, self.extension.upper())) as handle:
            for start in range(0, self.frames, WRITE_BLOCK_FRAMES):
                handle.write(data[start:start + WRITE_BLOCK_FRAMES])
        return data


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    extension = draw(st.sampled_from(sorted(FORMATS)))
    subtypes, max_channels, max_rate = FORMATS[extension]
    subtype = draw(st.sampled_from(subtypes))
    return Recipe(
        extension=extension,
        subtype=subtype,
        channels=draw(st.integers(1, max_channels)),
        sample_rate_hz=draw(st.sampled_from([r for r in SOURCE_RATES if r <= max_rate])),
        frames=draw(st.one_of(st.sampled_from([0, 1, 2, 1151, 1152, 1153]),
                              st.integers(0, 30_000))),
        poison=draw(st.sampled_from([None, "nan", "inf", "huge"]))
        if subtype in FLOAT_SUBTYPES else None,
        seed=draw(st.integers(0, 2**16)),
    )


damages = st.one_of(
    st.none(),
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0, exclude_max=True)),
    st.tuples(st.just("overwrite_header"),
              st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1,
                       max_size=6)),
    st.tuples(st.just("overwrite_anywhere"),
              st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
                       min_size=1, max_size=20)),
)


def damage_file(path: Path, damage: tuple | None) -> None:
    if damage is None:
        return
    data = bytearray(path.read_bytes())
    kind, how = damage
    if kind == "truncate":
        data = data[: int(len(data) * how)]
    elif kind == "overwrite_header":
        for position, value in how:
            if position < len(data):
                data[position] = value
    else:
        for fraction, value in how:
            if data:
                data[int(len(data) * fraction)] = value
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every example (hypothesis reruns a test body, not its fixtures)."""
    return tmp_path_factory.mktemp("audio_properties")


@given(payload=st.binary(max_size=4096), magic=st.sampled_from(MAGIC),
       extension=st.sampled_from(EXTENSIONS), rate=st.sampled_from(TARGET_RATES))
@example(payload=b"", magic=b"", extension="wav", rate=16000)
@example(payload=b"\x00" * 64, magic=b".snd\x00\x00\x00\x18", extension="au", rate=22050)
def test_random_bytes_give_a_waveform_or_an_audio_error(workdir: Path, payload: bytes,
                                                        magic: bytes, extension: str,
                                                        rate: int) -> None:
    path = workdir / (f"random.{extension}" if extension else "random")
    path.write_bytes(magic + payload)
    decode_outcome(path, rate)


@given(recipe=recipes(), damage=damages, rate=st.sampled_from(TARGET_RATES),
       same_rate=st.booleans())
@example(recipe=Recipe("wav", "PCM_16", 1, 22050, 0), damage=None, rate=16000, same_rate=False)
@example(recipe=Recipe("flac", "PCM_16", 1, 96000, 1), damage=None, rate=8000, same_rate=False)
@example(recipe=Recipe("au", "PCM_16", 1, 8000, 1), damage=None, rate=96000, same_rate=False)
@example(recipe=Recipe("wav", "FLOAT", 8, 96000, 20_000), damage=None, rate=16000,
         same_rate=False)
@example(recipe=Recipe("flac", "PCM_24", 8, 8000, 5000), damage=None, rate=32000,
         same_rate=True)
@example(recipe=Recipe("wav", "FLOAT", 2, 22050, 3000, "nan"), damage=None, rate=22050,
         same_rate=True)
@example(recipe=Recipe("au", "FLOAT", 1, 44100, 3000, "inf"), damage=None, rate=16000,
         same_rate=False)
@example(recipe=Recipe("wav", "FLOAT", 8, 8000, 1000, "huge"), damage=None, rate=8000,
         same_rate=True)
@example(recipe=Recipe("wav", "DOUBLE", 1, 8000, 1000, "huge"), damage=None, rate=16000,
         same_rate=False)
@example(recipe=Recipe("ogg", "VORBIS", 8, 96000, 4000), damage=("truncate", 0.5), rate=16000,
         same_rate=False)
@example(recipe=Recipe("mp3", "MPEG_LAYER_III", 2, 44100, 20_000), damage=("truncate", 0.3),
         rate=22050, same_rate=False)
def test_files_of_every_format_give_a_waveform_or_an_audio_error(
        workdir: Path, recipe: Recipe, damage: tuple | None, rate: int,
        same_rate: bool) -> None:
    """Damaged files may go either way; intact ones must decode exactly, or be refused
    for the reason they carry (no samples, NaN/Inf, or overflow)."""
    path = workdir / f"file.{recipe.extension}"
    written = recipe.write(path)
    damage_file(path, damage)
    rate = recipe.sample_rate_hz if same_rate else rate
    outcome = decode_outcome(path, rate)
    if damage is not None:
        return
    expected_length = recipe.frames * rate / recipe.sample_rate_hz
    if recipe.frames == 0:
        assert isinstance(outcome, AudioError) and outcome.status == "empty"
    elif recipe.poison in ("nan", "inf"):
        assert isinstance(outcome, AudioError) and outcome.status == "unreadable"
    elif expected_length < 0.5:
        assert isinstance(outcome, AudioError) and outcome.status == "empty"
    elif recipe.poison == "huge":
        assert isinstance(outcome, np.ndarray) or outcome.status == "unreadable"
    else:
        assert isinstance(outcome, np.ndarray), f"an intact file was refused: {outcome}"
        if rate == recipe.sample_rate_hz and recipe.extension in LOSSLESS:
            mono = written.mean(axis=1)
            tolerance = QUANTUM[recipe.subtype] * 1.01 + 1e-7
            np.testing.assert_allclose(outcome, mono, rtol=0, atol=tolerance)


@pytest.mark.parametrize("make", [mp3_claiming_billions_of_frames,
                                  flac_claiming_billions_of_frames])
def test_header_claiming_billions_of_frames_is_not_allocated(tmp_path: Path, make) -> None:
    """One corrupt length field made `soundfile.read` ask for 9 TiB up front (MemoryError);
    the loader reads what is really there instead."""
    path = tmp_path / ("huge.mp3" if "mp3" in make.__name__ else "huge.flac")
    make(path)
    assert soundfile.info(path).frames > 10**10
    started = time.perf_counter()
    outcome = decode_outcome(path, 16000)
    assert time.perf_counter() - started < 10
    if isinstance(outcome, np.ndarray):
        assert outcome.size == pytest.approx(16000, abs=1200)


def test_very_long_file_decodes_whole(tmp_path: Path) -> None:
    """15 minutes (30 GTZAN clips end to end) decodes in blocks to every sample, in order."""
    rate, seconds = 22050, 15 * 60
    ramp = ((np.arange(rate * seconds) % 32768) - 16384).astype(np.int16)
    path = tmp_path / "long.wav"
    soundfile.write(path, ramp, rate, subtype="PCM_16")
    wave = decode_outcome(path, rate)
    assert isinstance(wave, np.ndarray)
    np.testing.assert_array_equal(wave, ramp / np.float32(32768))
    resampled = decode_outcome(path, 16000)
    assert isinstance(resampled, np.ndarray)
    assert resampled.size == pytest.approx(seconds * 16000, abs=1)


@pytest.mark.parametrize("name", sorted(HEADER_MAKERS))
def test_a_header_declaring_an_absurd_rate_or_length_costs_one_block(tmp_path: Path,
                                                                     name: str) -> None:
    """A 1 s file whose header claims 1 Hz (resampled to 22,050 Hz: 2 GB), 100 MHz, 4 GiB
    of data, 2^31 mp3 frames or 2^36 FLAC frames, or whose samples peak at 1e17: the real
    second of audio or an AudioError naming the limit, within seconds, under a few MB."""
    path = HEADER_MAKERS[name](tmp_path / name)
    started = time.perf_counter()
    outcome = decode_outcome(path, 22050)
    assert time.perf_counter() - started < 10
    if "rate" in name:
        assert isinstance(outcome, AudioError) and "header declares" in outcome.reason
        assert f"{MIN_RATE_HZ:,}-{MAX_RATE_HZ:,} Hz" in outcome.reason
    elif "peaks" in name:
        assert isinstance(outcome, AudioError) and "1e+17" in outcome.reason
    elif isinstance(outcome, np.ndarray):
        assert outcome.size == pytest.approx(22050, abs=1200)


@given(rate=st.sampled_from([1, 999, 1000, 96000, 768_000, 768_001, 2**31 - 1]))
def test_header_rates_outside_the_limits_are_refused_by_name(workdir: Path, rate: int) -> None:
    path = wav_declaring_rate(workdir / "rate.wav", rate)
    try:
        info = probe(path)
    except AudioError as error:
        assert "header declares" in error.reason or "LibsndfileError" in error.reason
        assert not MIN_RATE_HZ <= rate <= MAX_RATE_HZ
    else:
        assert MIN_RATE_HZ <= info.sample_rate_hz <= MAX_RATE_HZ


@pytest.fixture(scope="module")
def mfcc():
    return load_extractor("mfcc", weights="none")


@given(peak=st.one_of(st.floats(0, 3.4e38, allow_nan=False, allow_infinity=False),
                      st.sampled_from([0.0, 1e-30, 1.0, MAX_ABS_SAMPLE, 1e5, 1e17, 3.4e38])),
       seconds=st.sampled_from([1 / 22050, 0.01, 0.5, 1.0]))
def test_every_finite_sample_gives_finite_mfcc_features_or_an_audio_error(
        workdir: Path, mfcc, peak: float, seconds: float) -> None:
    """Peaks around 1e17 overflowed the MFCC power spectrum into Inf/NaN; now a file is
    either refused (samples beyond MAX_ABS_SAMPLE) or gives finite features, silence and a
    one-sample file included."""
    path = wav_with_peaks(workdir / "peaks.wav", peak, seconds)
    with watchdog():
        try:
            wave = load_audio(path, mfcc.sample_rate, max_samples=mfcc.sample_rate)
        except AudioError as error:
            assert error.status == "unreadable" and np.float32(peak) > MAX_ABS_SAMPLE
            return
    assert np.float32(peak) <= MAX_ABS_SAMPLE
    clip = np.pad(wave, (0, mfcc.sample_rate - wave.size))[None]
    assert np.isfinite(mfcc.embed(clip)).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["byola", "panns", "vggish"])
def test_neural_features_are_finite_at_the_sample_limit_and_in_silence(tmp_path: Path,
                                                                      model: str) -> None:
    options = {"postprocess": False} if model == "vggish" else {}  # PCA needs real weights
    extractor = load_extractor(model, weights="random", **options)
    loud = load_audio(wav_with_peaks(tmp_path / "loud.wav", MAX_ABS_SAMPLE), extractor.sample_rate)
    quiet = load_audio(silent_wav(tmp_path / "silent.wav", 1.0), extractor.sample_rate)
    assert np.isfinite(extractor.embed(np.stack([loud, quiet]))).all()


@given(source=st.sampled_from([8000, 11025, 22050, 44100, 48000, 96000]),
       target=st.sampled_from([16000, 22050, 32000]), channels=st.integers(1, 3),
       seconds=st.sampled_from([0.3, 2.0, 7.5]),
       max_seconds=st.sampled_from([None, 0.1, 1.0, 2.0, 5.0, 30.0]))
def test_streamed_and_cropped_decodes_equal_the_whole_file_resampled_at_once(
        workdir: Path, source: int, target: int, channels: int, seconds: float,
        max_seconds: float | None) -> None:
    """Normal files give the bytes they gave before streaming: the whole file mixed and
    resampled in one soxr call, then cut to the clip."""
    frames = round(seconds * source)
    written = np.random.default_rng(source + channels).uniform(-0.5, 0.5, (frames, channels))
    path = workdir / "stream.wav"
    soundfile.write(path, written.astype(np.float32), source, subtype="FLOAT")
    whole, _ = soundfile.read(path, dtype="float32", always_2d=True)
    mono = whole.mean(axis=1, dtype=np.float32)
    expected = mono if source == target else soxr.resample(mono, source, target, quality="HQ")
    max_samples = None if max_seconds is None else round(max_seconds * target)
    got = load_audio(path, target, max_samples=max_samples)
    np.testing.assert_array_equal(got, expected[:max_samples])
    assert all(block.size <= 1 << 22 for block in stream_audio(path, target))
