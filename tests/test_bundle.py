"""mgc.bundle: a saved model predicts exactly as the trained one; broken bundles fail clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mgc.bundle import INFO_FILE, STATE_FILE, BundleInfo, load_bundle, save_bundle
from mgc.model import ClassifierConfig, GenreClassifier

CONFIG = ClassifierConfig(hidden_layers=2, width_multiplier=0.5, dropout=0.2,
                          activation="elu", embedding_dim=8)


def _trained_like_model() -> GenreClassifier:
    """A model whose weights, BatchNorm statistics and standardiser all differ from init."""
    torch.manual_seed(0)
    model = GenreClassifier(10, 4, CONFIG, heads=("anchor", "pair", "metric"))
    rng = np.random.default_rng(0)
    model.set_standardisation(rng.normal(size=10), rng.uniform(0.5, 2.0, size=10))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 10) * 3 + 1)
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def _info() -> BundleInfo:
    return BundleInfo(class_names=["blues", "jazz", "pop", "rock"], input_dim=10,
                      classifier=CONFIG.to_dict(), kind="dnn", heads=["anchor", "pair", "metric"],
                      extractor="mfcc", extractor_options={"weights": "none"},
                      clip_samples=44100, train_set="synth_gtzan", protocol="paper")


def test_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = _trained_like_model()
    save_bundle(model, _info(), tmp_path / "bundle")
    loaded, info = load_bundle(tmp_path / "bundle")
    assert info == _info()
    assert not loaded.training
    x = np.random.default_rng(1).normal(size=(20, 10)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    for key, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], tensor, rtol=0, atol=0)


def test_bundle_json_is_plain_and_versioned(tmp_path: Path) -> None:
    save_bundle(_trained_like_model(), _info(), tmp_path)
    raw = json.loads((tmp_path / INFO_FILE).read_text())
    assert raw["format"] == 2
    assert raw["classifier"]["activation"] == "elu"
    assert raw["kind"] == "dnn" and raw["heads"] == ["anchor", "pair", "metric"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([INFO_FILE, STATE_FILE])


@pytest.mark.parametrize("missing", [INFO_FILE, STATE_FILE])
def test_missing_file_is_a_clear_error(tmp_path: Path, missing: str) -> None:
    save_bundle(_trained_like_model(), _info(), tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"not a model bundle.*{INFO_FILE}.*{STATE_FILE}"):
        load_bundle(tmp_path)


def test_empty_directory_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_bundle(tmp_path)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    save_bundle(_trained_like_model(), _info(), tmp_path)
    raw = json.loads((tmp_path / INFO_FILE).read_text())
    (tmp_path / INFO_FILE).write_text(json.dumps({**raw, "format": 1}))
    with pytest.raises(ValueError, match=r"unsupported bundle format.*retrain"):
        load_bundle(tmp_path)
