"""Zero-shot classification with CLAP: prompts, cosine scoring, its row in the train
matrix, and `mgc predict --zero-shot` on a tiny random CLAP snapshot."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from mgc.cli import app
from mgc.evaluate import LabelledEmbeddings
from mgc.losses import LossConfig
from mgc.model import ClassifierConfig
from mgc.seeds import train_over_seeds
from mgc.train import TrainConfig
from mgc.zeroshot import (
    COLLAPSED_MEAN_COSINE,
    PROBE_PROMPTS,
    PROMPT_TEMPLATES,
    ZERO_SHOT,
    TextTowerError,
    ZeroShotClassifier,
    genre_text,
    parse_genres,
    supports_zero_shot,
)

GENRES = ["jazz", "blues", "rock"]


class _Axes:
    """A text tower that maps each genre's prompts to its own axis, the ideal CLAP, and any
    other text to a direction of its own among the remaining axes."""

    checkpoint = "axes"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += texts
        vectors = np.zeros((len(texts), 4 + len(PROBE_PROMPTS)))
        for row, text in enumerate(texts):
            genre = [i for i, g in enumerate(GENRES) if re.search(rf"\b{g}\b", text)]
            vectors[row, genre[0] if genre else 4 + PROBE_PROMPTS.index(text)] = 1
        return vectors

    def logit_scale(self) -> float:
        return 10.0


class _Collapsed(_Axes):
    """Every text a hair away from one vector, as larger_clap_music's text tower is."""

    checkpoint = "collapsed/clap@0123"

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return 1.0 + 0.01 * super().embed_texts(texts)


def test_genre_names_become_every_prompt() -> None:
    tower = _Axes()
    ZeroShotClassifier(tower, GENRES)
    prompts = tower.seen[len(PROBE_PROMPTS):]
    assert prompts[:3] == ["This audio is a jazz song.", "This is a jazz song.",
                           "This is a sound of jazz."]
    assert len(prompts) == len(GENRES) * len(PROMPT_TEMPLATES)
    assert genre_text("gtzan/hip_hop") == "hip hop"


def test_the_closest_prompt_wins_by_cosine() -> None:
    classifier = ZeroShotClassifier(_Axes(), GENRES)
    audio = np.zeros((2, 4 + len(PROBE_PROMPTS)))
    audio[:, :4] = [[0.1, 3.0, 0.0, 0.5], [2.0, 0.0, 0.1, 0.0]]
    proba = classifier.predict_proba(audio)
    assert proba.argmax(axis=1).tolist() == [1, 0]
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.allclose(classifier.predict_proba(audio * 7), proba)   # scale-free: cosine


def test_a_collapsed_text_tower_is_refused_naming_the_checkpoint() -> None:
    with pytest.raises(TextTowerError, match=r"collapsed/clap@0123: its text tower is "
                                             r"collapsed.*mean pairwise cosine of 1\.0000"):
        ZeroShotClassifier(_Collapsed(), GENRES)


@pytest.mark.parametrize("spread", [0.9, 0.99])
def test_the_threshold_sits_between_a_spread_and_a_collapsed_tower(spread: float) -> None:
    class _Tight(_Axes):
        """Unit vectors at exactly `spread` pairwise cosine: a common part plus an own axis."""

        def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
            own = super().embed_texts(texts)
            common = np.full((len(texts), 1), np.sqrt(spread))
            return np.hstack([common, np.sqrt(1 - spread) * own])

    tight = _Tight()
    if spread <= COLLAPSED_MEAN_COSINE:
        check = ZeroShotClassifier(tight, GENRES).text_tower
        assert check.probe_mean_cosine == pytest.approx(spread)
    else:
        with pytest.raises(TextTowerError, match=f"{spread:.4f}"):
            ZeroShotClassifier(tight, GENRES)


def test_parse_genres_refuses_fewer_than_two_and_repeats() -> None:
    assert parse_genres(" jazz, blues ,rock,") == GENRES
    with pytest.raises(ValueError, match="at least two"):
        parse_genres("jazz")
    with pytest.raises(ValueError, match="jazz named more than once"):
        parse_genres("jazz,blues,jazz")


def test_zeroshot_is_a_row_beside_the_probes_without_training() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(GENRES, 12)
    dim = 4 + len(PROBE_PROMPTS)
    x = np.eye(dim)[[GENRES.index(g) for g in labels]] + 0.1 * rng.standard_normal((36, dim))
    split = np.tile(["train"] * 8 + ["val"] * 2 + ["test"] * 2, 3)
    data = LabelledEmbeddings(x=x.astype(np.float32), label=labels, split=split,
                              dataset=np.array(["d"] * 36), track_id=np.arange(36))
    result = train_over_seeds(data, {}, ["linear", ZERO_SHOT], [0], ClassifierConfig(),
                              LossConfig(), TrainConfig(epochs=2),
                              zero_shot=ZeroShotClassifier(_Axes(), sorted(GENRES)))
    assert result.metrics[ZERO_SHOT]["d"]["accuracy"]["mean"] == 1.0
    assert result.metrics[ZERO_SHOT]["d"]["n_test"] == 6
    assert result.metrics[f"{ZERO_SHOT}_setup"] == {
        "checkpoint": "axes", "text_tower_probe_mean_cosine": 0.0,
        "collapsed_above": COLLAPSED_MEAN_COSINE, "prompt_templates": list(PROMPT_TEMPLATES)}
    with pytest.raises(ValueError, match="built for"):
        train_over_seeds(data, {}, ["linear", ZERO_SHOT], [0], ClassifierConfig(), LossConfig(),
                         TrainConfig(epochs=2), zero_shot=ZeroShotClassifier(_Axes(), GENRES))
    without = train_over_seeds(data, {}, ["linear", ZERO_SHOT], [0], ClassifierConfig(),
                               LossConfig(), TrainConfig(epochs=2))
    assert ZERO_SHOT not in without.metrics            # an extractor with no text tower


def test_only_clap_supports_zero_shot() -> None:
    from mgc.extractors import REGISTRY

    assert [name for name, cls in sorted(REGISTRY.items()) if supports_zero_shot(cls)] == ["clap"]


def test_cli_predict_zero_shot_any_label_set(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from benchmarks.references import random_clap_snapshot

    snapshot = random_clap_snapshot(tmp_path / "clap")
    song = tmp_path / "song.wav"
    t = np.arange(17 * 22050) / 22050
    soundfile.write(song, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    result = CliRunner().invoke(app, ["predict", str(song), "--zero-shot", "--genres",
                                      "jazz,blues,rock,metal", "--weights", str(snapshot),
                                      "--top-k", "4", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)[0]
    assert sorted(g["genre"] for g in record["genres"]) == ["blues", "jazz", "metal", "rock"]
    assert abs(sum(g["probability"] for g in record["genres"]) - 1) < 1e-6
    assert record["clips"] == 2           # 17 s: a 10 s window and a 7 s tail (over half)
    refused = CliRunner().invoke(app, ["predict", str(song), "--zero-shot", "--genres", "jazz"])
    assert refused.exit_code == 2 and "at least two" in refused.output

    collapsed = random_clap_snapshot(tmp_path / "collapsed", text_tower="collapsed")
    result = CliRunner().invoke(app, ["predict", str(song), "--zero-shot", "--genres",
                                      "jazz,blues", "--weights", str(collapsed)])
    assert result.exit_code == 1
    assert f"cannot load CLAP: {collapsed}: its text tower is collapsed" in result.output


def test_params_take_zeroshot_after_a_trained_kind_only() -> None:
    from mgc.pipeline.params import ParamsError, parse_params
    from mgc.pipeline.yaml12 import load_yaml12

    raw = load_yaml12((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    raw["train"]["classifiers"] = ["dnn", ZERO_SHOT]
    raw["embed"]["models"] = ["clap"]
    assert parse_params(raw).train.classifiers == ("dnn", ZERO_SHOT)
    raw["train"]["classifiers"] = [ZERO_SHOT, "dnn"]
    with pytest.raises(ParamsError, match="zeroshot cannot come first"):
        parse_params(raw)
