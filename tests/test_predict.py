"""mgc.predict and `mgc predict`: a trained bundle names the genre of held-out audio files of
any length, rate and channel count; unreadable files are reported without stopping the rest."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import torch
from typer.testing import CliRunner

from mgc.audio import load_audio
from mgc.bundle import INFO_FILE, BundleError, BundleInfo, load_bundle, save_bundle
from mgc.cli import app, format_table
from mgc.datasets.synthesis import GTZAN_GENRES, render_clip
from mgc.domain import DomainMap
from mgc.extractors import load
from mgc.model import ClassifierConfig, GenreClassifier
from mgc.predict import (
    AUDIO_EXTENSIONS,
    GenrePredictor,
    Prediction,
    find_audio_files,
    predict_files,
    prediction_clips,
)
from tests.bad_audio import (
    HEADER_MAKERS,
    long_wav,
    one_sample_wav,
    silent_wav,
    symlink_loop,
)

RATE_HZ = 22050
CLIP_SECONDS = 2.0
CLIP_SAMPLES = int(RATE_HZ * CLIP_SECONDS)
TRAIN_CLIPS_PER_GENRE = 12
HELD_OUT_SEED = 500  # training seeds are 1000 * genre_index + 0..11


@dataclass(frozen=True)
class Bundle:
    directory: Path
    class_names: list[str]


def held_out_clip(genre: str, seconds: float = CLIP_SECONDS, sample_rate: int = RATE_HZ,
                  offset: int = 0) -> np.ndarray:
    return render_clip(genre, seconds, sample_rate,
                       1000 * GTZAN_GENRES.index(genre) + HELD_OUT_SEED + offset)


def write(path: Path, audio: np.ndarray, sample_rate: int = RATE_HZ, **kwargs: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, sample_rate, **kwargs)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A DNN (with BatchNorm, so eval mode matters) fit on MFCC embeddings of 2 s synth clips
    of all ten GTZAN-like genres, saved as the train stage saves it."""
    extractor = load("mfcc", weights="none")
    clips = np.stack([render_clip(genre, CLIP_SECONDS, RATE_HZ, 1000 * index + seed)
                      for index, genre in enumerate(GTZAN_GENRES)
                      for seed in range(TRAIN_CLIPS_PER_GENRE)])
    x = extractor.embed(clips)
    y = torch.arange(len(GTZAN_GENRES)).repeat_interleave(TRAIN_CLIPS_PER_GENRE)
    config = ClassifierConfig(hidden_layers=2, dropout=0.1)
    torch.manual_seed(0)
    model = GenreClassifier(x.shape[1], len(GTZAN_GENRES), config)
    model.set_standardisation(x.mean(axis=0), x.std(axis=0))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains 20x slower on a busy 2-core machine
    try:
        model.train()
        for _ in range(300):
            loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x)).logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    directory = tmp_path_factory.mktemp("models") / "joint" / "mfcc"
    save_bundle(model, BundleInfo(
        class_names=list(GTZAN_GENRES), input_dim=extractor.dim, classifier=config.to_dict(),
        kind="dnn", heads=["anchor"], extractor="mfcc",
        extractor_options={"weights": "none"}, clip_samples=CLIP_SAMPLES,
        train_set="synth_gtzan", protocol="paper"), directory)
    return Bundle(directory, list(GTZAN_GENRES))


@pytest.fixture(scope="module")
def predictor(bundle: Bundle) -> GenrePredictor:
    return GenrePredictor(bundle.directory)


def probabilities(prediction: Prediction, class_names: list[str]) -> np.ndarray:
    by_genre = dict(prediction.genres)
    return np.array([by_genre[name] for name in class_names])


@pytest.mark.parametrize(("clips", "expected"), [
    (0.5, 1), (1.0, 1), (1.49, 1), (1.5, 2), (2.0, 2), (3.0, 3), (3.4, 3), (3.6, 4)])
def test_prediction_clips_keeps_a_tail_only_if_half_a_clip(clips: float, expected: int) -> None:
    waveform = np.arange(1, int(clips * 100) + 1, dtype=np.float32)
    result = prediction_clips(waveform, 100)
    assert result.shape == (expected, 100)
    kept = min(len(waveform), expected * 100)
    np.testing.assert_array_equal(result.reshape(-1)[:kept], waveform[:kept])
    assert not result.reshape(-1)[kept:].any()


def test_find_audio_files_recurses_filters_and_sorts(tmp_path: Path) -> None:
    tone = np.zeros(100, np.float32)
    expected = [write(tmp_path / "b.wav", tone), write(tmp_path / "a" / "x.FLAC", tone),
                write(tmp_path / "a" / "deep" / "y.au", tone, format="AU", subtype="PCM_16")]
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "a" / "notes.txt").write_text("liner notes")
    assert find_audio_files(tmp_path) == sorted(expected)
    assert find_audio_files(tmp_path / "cover.jpg") == [tmp_path / "cover.jpg"]
    assert {".wav", ".flac", ".mp3", ".au", ".ogg", ".aiff"} <= set(AUDIO_EXTENSIONS)


@pytest.mark.parametrize("genre", ["classical", "metal", "reggae"])
def test_held_out_clip_has_its_genre_in_the_top_3(bundle: Bundle, tmp_path: Path,
                                                  genre: str) -> None:
    path = write(tmp_path / f"{genre}.wav", held_out_clip(genre))
    [prediction] = predict_files([path], bundle.directory, top_k=3, progress=False)
    assert prediction.ok and prediction.n_clips == 1
    assert genre in [name for name, _ in prediction.genres]
    assert [p for _, p in prediction.genres] == sorted((p for _, p in prediction.genres),
                                                       reverse=True)


def test_long_file_is_the_mean_of_its_clips(predictor: GenrePredictor, bundle: Bundle,
                                            tmp_path: Path) -> None:
    parts = [held_out_clip(genre) for genre in ("classical", "metal", "hiphop")]
    paths = [write(tmp_path / f"part{i}.wav", part, subtype="FLOAT")
             for i, part in enumerate(parts)]
    long_path = write(tmp_path / "long.wav", np.concatenate(parts), subtype="FLOAT")
    singles = [predictor.predict_file(p) for p in paths]
    long = predictor.predict_file(long_path)
    assert long.n_clips == 3
    assert long.duration_s == pytest.approx(3 * CLIP_SECONDS)
    expected = np.mean([probabilities(p, bundle.class_names) for p in singles], axis=0)
    np.testing.assert_allclose(probabilities(long, bundle.class_names), expected, atol=1e-6)


def test_short_file_is_judged_zero_padded(predictor: GenrePredictor, bundle: Bundle,
                                          tmp_path: Path) -> None:
    half = held_out_clip("metal")[: CLIP_SAMPLES // 2]
    short = predictor.predict_file(write(tmp_path / "short.wav", half, subtype="FLOAT"))
    padded = predictor.predict_file(write(tmp_path / "padded.wav",
                                          np.pad(half, (0, CLIP_SAMPLES - len(half))),
                                          subtype="FLOAT"))
    assert short.n_clips == 1
    assert short.duration_s == pytest.approx(CLIP_SECONDS / 2)
    np.testing.assert_allclose(probabilities(short, bundle.class_names),
                               probabilities(padded, bundle.class_names), atol=1e-6)


def test_stereo_44k_file_predicts_like_the_mono_22k_original(
        predictor: GenrePredictor, bundle: Bundle, tmp_path: Path) -> None:
    mono = held_out_clip("classical")
    upsampled = soxr.resample(mono, RATE_HZ, 44100, quality="HQ")
    stereo = np.stack([upsampled, upsampled], axis=1)
    original = predictor.predict_file(write(tmp_path / "mono.wav", mono, subtype="FLOAT"))
    converted = predictor.predict_file(write(tmp_path / "stereo.flac", stereo, 44100,
                                             subtype="PCM_24"))
    assert converted.ok and converted.n_clips == 1
    assert converted.duration_s == pytest.approx(CLIP_SECONDS, abs=1e-3)
    assert converted.genres[0][0] == original.genres[0][0]
    np.testing.assert_allclose(probabilities(converted, bundle.class_names),
                               probabilities(original, bundle.class_names), atol=0.05)


def test_a_bundle_whose_extractor_gives_another_dimension_is_refused(
        bundle: Bundle, tmp_path: Path) -> None:
    changed = shutil.copytree(bundle.directory, tmp_path / "changed")
    info = json.loads((changed / INFO_FILE).read_text())
    info["extractor_options"] = {"weights": "none", "n_mfcc": 13}
    (changed / INFO_FILE).write_text(json.dumps(info))
    wanted, given = load("mfcc").dim, load("mfcc", n_mfcc=13).dim
    with pytest.raises(ValueError, match=rf"expects {wanted}-d embeddings.*gives {given}-d"):
        GenrePredictor(changed)


def test_format_table_lines_up_results_and_errors() -> None:
    table = format_table([
        Prediction(Path("song.mp3"), (("metal", 0.9), ("rock", 0.1)), 3, 6.0),
        Prediction(Path("a/much/longer/name.wav"), error="unreadable: bad header"),
    ])
    header, song, broken = table.splitlines()
    assert header.split() == ["file", "genre", "1", "genre", "2"]
    assert song.split() == ["song.mp3", "metal", "0.900", "rock", "0.100"]
    assert broken.split() == ["a/much/longer/name.wav", "error:", "unreadable:", "bad", "header"]
    assert header.index("genre 1") == song.index("metal") == broken.index("error")


def test_empty_folders_are_reported_and_files_predicted_once(predictor: GenrePredictor,
                                                            tmp_path: Path) -> None:
    song = write(tmp_path / "music" / "song.wav", held_out_clip("metal"))
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "cover.jpg").write_bytes(b"\xff\xd8")
    results = predictor.predict_paths([tmp_path / "music", song, tmp_path / "art"],
                                      progress=False)
    assert [r.path for r in results] == [song, tmp_path / "art"]
    assert results[0].ok
    assert results[1].error is not None and results[1].error.startswith("no audio files")

# The command line.

runner = CliRunner()


def plain(text: str) -> str:
    """Rich's help and error boxes without the frame and the line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def music_folder(root: Path) -> dict[str, Path]:
    """A folder of three held-out songs in assorted formats, rates and lengths."""
    classical = held_out_clip("classical", seconds=3 * CLIP_SECONDS)
    metal = held_out_clip("metal", sample_rate=44100)
    return {
        "classical": write(root / "classical.flac", classical),
        "metal": write(root / "nested" / "metal.wav", np.stack([metal, metal], axis=1), 44100),
        "reggae": write(root / "reggae.au", held_out_clip("reggae", seconds=CLIP_SECONDS / 2),
                        format="AU", subtype="PCM_16"),
    }


def corrupt_files(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "noise.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (root / "empty.mp3").write_bytes(b"")
    return [root / "empty.mp3", root / "noise.wav"]


def test_cli_json_lists_every_class_with_probabilities_summing_to_one(
        bundle: Bundle, tmp_path: Path) -> None:
    songs = music_folder(tmp_path)
    result = runner.invoke(app, ["predict", str(tmp_path), "--model", str(bundle.directory),
                                 "--top-k", str(len(bundle.class_names)), "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["path"] for r in records] == [str(p) for p in sorted(songs.values())]
    for record in records:
        assert record["error"] is None
        assert sorted(g["genre"] for g in record["genres"]) == sorted(bundle.class_names)
        assert sum(g["probability"] for g in record["genres"]) == pytest.approx(1, abs=1e-5)
    by_path = {Path(r["path"]): r for r in records}
    assert by_path[songs["classical"]]["clips"] == 3
    assert by_path[songs["reggae"]]["duration_s"] == pytest.approx(CLIP_SECONDS / 2, abs=1e-3)


def test_cli_folder_with_corrupt_files_still_predicts_the_rest(bundle: Bundle,
                                                               tmp_path: Path) -> None:
    songs = music_folder(tmp_path)
    broken = corrupt_files(tmp_path / "broken")
    result = runner.invoke(app, ["predict", str(tmp_path), "--model", str(bundle.directory),
                                 "--json"])
    assert result.exit_code == 0, result.output
    records = {Path(r["path"]): r for r in json.loads(result.stdout)}
    assert set(records) == set(songs.values()) | set(broken)
    assert records[broken[0]]["error"].startswith("empty")
    assert records[broken[1]]["error"].startswith("unreadable")
    for path in songs.values():
        assert records[path]["error"] is None
    for genre in ("classical", "metal"):  # the reggae song is half a clip, half silence
        assert genre in [g["genre"] for g in records[songs[genre]]["genres"]]
    assert "2 of 5 inputs could not be predicted" in result.stderr


def test_cli_only_corrupt_files_fail(bundle: Bundle, tmp_path: Path) -> None:
    broken = corrupt_files(tmp_path)
    result = runner.invoke(app, ["predict", *map(str, broken), str(tmp_path / "missing.wav"),
                                 "--model", str(bundle.directory)])
    assert result.exit_code == 1
    assert "missing.wav  error: unreadable" in result.stdout
    assert "3 of 3 inputs could not be predicted" in result.stderr


def test_cli_table_and_csv_agree_with_json(bundle: Bundle, tmp_path: Path) -> None:
    songs = music_folder(tmp_path)
    base = ["predict", str(tmp_path), "--model", str(bundle.directory), "--top-k", "2"]
    as_json = json.loads(runner.invoke(app, [*base, "--json"]).stdout)
    table = runner.invoke(app, base)
    as_csv = list(csv.DictReader(io.StringIO(runner.invoke(app, [*base, "--csv"]).stdout)))
    assert table.exit_code == 0
    rows = table.stdout.splitlines()
    assert rows[0].split() == ["file", "genre", "1", "genre", "2"]
    assert len(as_csv) == 2 * len(songs)
    for record, line in zip(as_json, rows[1:], strict=True):
        top = record["genres"]
        assert line.split() == [record["path"], top[0]["genre"], f"{top[0]['probability']:.3f}",
                                top[1]["genre"], f"{top[1]['probability']:.3f}"]
        csv_rows = [r for r in as_csv if r["path"] == record["path"]]
        assert [(r["rank"], r["genre"]) for r in csv_rows] == [("1", top[0]["genre"]),
                                                               ("2", top[1]["genre"])]
        assert float(csv_rows[0]["probability"]) == pytest.approx(top[0]["probability"])


def test_cli_default_model_is_the_only_joint_bundle(bundle: Bundle, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    song = write(tmp_path / "song.wav", held_out_clip("classical"))
    monkeypatch.chdir(tmp_path)
    missing = runner.invoke(app, ["predict", str(song)])
    assert missing.exit_code == 2
    assert "no model bundle in models/joint" in plain(missing.output)
    shutil.copytree(bundle.directory, tmp_path / "models" / "joint" / "mfcc")
    alone = runner.invoke(app, ["predict", str(song), "--json"])
    assert alone.exit_code == 0, alone.output
    assert "models/joint/mfcc" in alone.stderr
    shutil.copytree(bundle.directory, tmp_path / "models" / "joint" / "byola")
    several = runner.invoke(app, ["predict", str(song)])
    assert several.exit_code == 2
    assert "several model bundles" in plain(several.output)


def test_cli_refuses_bad_options(bundle: Bundle, tmp_path: Path) -> None:
    song = write(tmp_path / "song.wav", held_out_clip("metal"))
    model = ["--model", str(bundle.directory)]
    both = runner.invoke(app, ["predict", str(song), *model, "--json", "--csv"])
    assert both.exit_code == 2 and "choose one of --json and --csv" in plain(both.output)
    zero = runner.invoke(app, ["predict", str(song), *model, "--top-k", "0"])
    assert zero.exit_code == 2 and "--top-k" in plain(zero.output)
    no_folder = runner.invoke(app, ["predict", str(song), "--model", str(tmp_path / "nope")])
    assert no_folder.exit_code == 2 and "does not exist" in plain(no_folder.output)
    not_a_bundle = runner.invoke(app, ["predict", str(song), "--model", str(tmp_path)])
    assert not_a_bundle.exit_code == 1
    assert f"{tmp_path} is not a model bundle" in plain(not_a_bundle.stderr)


def test_cli_help_explains_predict() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "predict" in top.stdout
    result = runner.invoke(app, ["predict", "--help"])
    assert result.exit_code == 0
    text = plain(result.stdout)
    for option in ("PATH", "--model", "--top-k", "--json", "--csv", "half a clip"):
        assert option in text


def test_cli_reports_the_extractors_own_error(bundle: Bundle, tmp_path: Path) -> None:
    song = write(tmp_path / "song.wav", held_out_clip("metal"))
    changed = shutil.copytree(bundle.directory, tmp_path / "changed")
    info = json.loads((changed / INFO_FILE).read_text())
    (changed / INFO_FILE).write_text(json.dumps({**info, "extractor": "nonesuch"}))
    result = runner.invoke(app, ["predict", str(song), "--model", str(changed)])
    assert result.exit_code == 1
    assert f"cannot load model {changed}: unknown extractor 'nonesuch'" in result.stderr


def test_a_long_file_streamed_gives_the_whole_file_result_exactly(
        predictor: GenrePredictor, bundle: Bundle, tmp_path: Path) -> None:
    """Streaming changed how a file is decoded, not what it is judged on: the result equals,
    bit for bit, decoding and resampling it whole, cutting it and embedding the clips."""
    wave = np.concatenate([held_out_clip(genre, sample_rate=44100) for genre in GTZAN_GENRES])
    path = write(tmp_path / "long.flac", np.stack([wave, 0.5 * wave], axis=1), 44100,
                 subtype="PCM_24")
    clips = prediction_clips(load_audio(path, RATE_HZ), CLIP_SAMPLES)
    vectors = np.concatenate([predictor.extractor.embed(clips[i:i + 8])
                              for i in range(0, len(clips), 8)])
    expected = predictor.model.predict_proba(vectors).mean(axis=0)
    streamed = predictor.predict_file(path, top_k=None)
    assert streamed.n_clips == len(clips) == len(GTZAN_GENRES)
    np.testing.assert_array_equal(probabilities(streamed, bundle.class_names), expected)


def mixed_folder(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Good songs beside every kind of input that once ended or misled a run: (good, bad)."""
    good = music_folder(root)
    good["odd name"] = write(root / "odd\x1b[2Jname\n.wav", held_out_clip("metal"))
    good["silence"] = silent_wav(root / "silence.wav")
    good["one sample"] = one_sample_wav(root / "one.wav")
    (root / "bad").mkdir()
    bad = {name: make(root / "bad" / name) for name, make in HEADER_MAKERS.items()}
    good["huge_length.wav"] = bad.pop("huge_length.wav")  # the real second is there
    good["huge_xing.mp3"] = bad.pop("huge_xing.mp3")
    bad["loop.wav"] = symlink_loop(root / "bad" / "loop.wav")
    (root / "nested" / "back").symlink_to("..")  # a folder loop
    locked = root / "locked"
    write(locked / "song.wav", held_out_clip("reggae"))
    bad["locked"] = locked
    return good, bad


def test_a_folder_of_bad_inputs_predicts_the_good_and_names_each_bad_one(
        bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Header limits, link loops, an unlistable subfolder (PermissionError, as os.walk sees
    a folder without read permission), silence, one sample and a name with terminal codes:
    every good file predicted once, every bad one a row with its reason, no traceback."""
    good, bad = mixed_folder(tmp_path / "mixed")
    real_scandir = os.scandir

    def scandir(path: str | Path = ".") -> object:
        if Path(path) == bad["locked"]:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    command = ["predict", str(tmp_path / "mixed"), "--model", str(bundle.directory)]
    result = runner.invoke(app, [*command, "--json"])
    assert result.exit_code == 0, result.output
    records = {Path(r["path"]): r for r in json.loads(result.stdout)}
    assert sorted(records) == sorted([*good.values(), *bad.values()])
    assert sorted(p for p, r in records.items() if r["error"]) == sorted(bad.values())
    for name, path in bad.items():
        assert records[path]["error"].startswith("unreadable"), name
    assert "Permission denied" in records[bad["locked"]]["error"]
    assert "header declares 1 Hz" in records[bad["rate_1hz.wav"]]["error"]
    assert "near-silent" in records[good["silence"]]["warning"]
    assert "short (0.00 s" in records[good["one sample"]]["warning"]
    assert records[good["classical"]]["warning"] is None
    table = runner.invoke(app, command)
    assert table.exit_code == 0 and "Traceback" not in table.output
    assert "\x1b" not in table.stdout and "odd\\x1b[2Jname\\n.wav" in table.stdout
    assert table.stdout.splitlines()[0].split()[-1] == "warning"
    assert f"{len(bad)} of {len(records)} inputs could not be predicted" in table.stderr


RSS_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from mgc.cli import app
try:
    app(sys.argv[1:])
finally:
    print(f"peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}",
          file=sys.stderr)
"""


@pytest.mark.slow
def test_predict_under_a_4gb_address_space_is_flat_in_file_length(bundle: Bundle,
                                                                  tmp_path: Path) -> None:
    """The issue's acceptance run: the mixed folder plus a 1-minute or a 10-minute file,
    each in a process limited to 4 GB of address space. Decoding whole, the 10-minute file
    alone added about 125 MB (8 kHz decoded, resampled to 22,050 Hz, then cut)."""
    _, bad = mixed_folder(tmp_path / "mixed")
    peaks = {}
    for minutes in (1, 10):
        long = long_wav(tmp_path / f"long_{minutes}.wav", 60 * minutes)
        run = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, "predict", str(tmp_path / "mixed"), str(long),
             "--model", str(bundle.directory), "--json"],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        records = {Path(r["path"]): r for r in json.loads(run.stdout)}
        assert records[long]["error"] is None
        assert records[long]["clips"] == 60 * minutes / CLIP_SECONDS
        assert {p for p, r in records.items() if r["error"]} == set(bad.values()) - {
            bad["locked"]}  # readable here: os.walk is not patched in the child
        peaks[minutes] = float(re.search(r"peak_rss_mb=([\d.]+)", run.stderr).group(1))
    assert peaks[10] < 1.05 * peaks[1], peaks


@pytest.mark.parametrize("layer", ["conv2", "weighted"])
def test_a_layer_bundle_is_fed_the_layer_it_was_trained_on(tmp_path: Path, layer: str) -> None:
    """`mgc predict` computes the bundle's layer (or every layer side by side) from the
    same single forward pass the extraction ran, and refuses when its options cannot."""
    from mgc.layers import select_layer

    options = {"weights": "random", "postprocess": False, "device": "cpu", "layers": "all"}
    extractor = load("vggish", **options)
    dims = {spec.name: spec.dim for spec in extractor.layers}
    input_dim = sum(dims.values()) if layer == "weighted" else dims[layer]
    config = ClassifierConfig(hidden_layers=1)
    torch.manual_seed(0)
    model = GenreClassifier(input_dim, 3, config, layer_dims=(
        list(dims.values()) if layer == "weighted" else None)).eval()
    info = BundleInfo(class_names=["a", "b", "c"], input_dim=input_dim,
                      classifier=config.to_dict(), kind="dnn", heads=["anchor"],
                      extractor="vggish", extractor_options=options, clip_samples=32000,
                      train_set="synth_gtzan", protocol="paper", layer=layer,
                      layer_dims=dims if layer == "weighted" else None)
    save_bundle(model, info, tmp_path / "bundle")
    predictor = GenrePredictor(tmp_path / "bundle")
    clips = (0.1 * np.random.default_rng(0).standard_normal((2, 32000))).astype(np.float32)
    expected = select_layer(extractor.embed_layers(clips), layer)
    np.testing.assert_array_equal(predictor.features(clips), expected)
    probabilities, n_clips = predictor.predict_waveform(clips.reshape(-1))
    assert n_clips == 2
    np.testing.assert_allclose(probabilities, model.predict_proba(expected).mean(axis=0),
                               rtol=1e-6)
    lacking = json.loads((tmp_path / "bundle" / INFO_FILE).read_text())
    lacking["extractor_options"] = {**options, "layers": "last"}
    (tmp_path / "bundle" / INFO_FILE).write_text(json.dumps(lacking))
    with pytest.raises(BundleError, match="lack layers: all"):
        GenrePredictor(tmp_path / "bundle")


def test_a_bundle_with_a_domain_map_feeds_the_classifier_mapped_embeddings(
        bundle: Bundle, tmp_path: Path) -> None:
    """A map that sends every embedding to one vector: any audio then gets that vector's
    probabilities; a domain the bundle does not have is refused."""
    model, info = load_bundle(bundle.directory)
    target = np.linspace(-1, 1, info.input_dim).astype(np.float32)
    flat = DomainMap(np.zeros(info.input_dim, np.float32), np.zeros(info.input_dim, np.float32),
                     target)
    mapped = tmp_path / "mapped"
    save_bundle(model, BundleInfo(**{**info.__dict__, "domain": {
        "method": "standardise", "datasets": ["synth_gtzan"], "default": "synth_gtzan"}}),
        mapped, {"synth_gtzan": flat})
    probabilities, _ = GenrePredictor(mapped).predict_waveform(
        np.random.default_rng(0).normal(size=CLIP_SAMPLES).astype(np.float32))
    np.testing.assert_allclose(probabilities, model.predict_proba(target[None])[0], rtol=1e-6)
    with pytest.raises(BundleError, match="'synth_fma' is not one of the bundle's"):
        GenrePredictor(mapped, domain="synth_fma")
