"""mgc.bundle: a saved model predicts exactly as the trained one; broken bundles fail clearly."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mgc.bundle import (
    DOMAIN_FILE,
    INFO_FILE,
    STATE_FILE,
    BundleError,
    BundleInfo,
    load_bundle,
    load_domain_map,
    save_bundle,
)
from mgc.config import ConfigError
from mgc.domain import coral_map, standardising_map
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


def test_a_bundle_from_before_metric_head_loads_with_the_shared_layout(tmp_path: Path) -> None:
    """Bundles saved before `metric_head` existed were trained with the CE heads reading the
    metric embedding; they must load as that layout, with their own predictions."""
    shared = replace(CONFIG, metric_head="shared")
    torch.manual_seed(0)
    model = GenreClassifier(10, 4, shared, heads=("anchor", "pair", "metric")).eval()
    save_bundle(model, replace(_info(), classifier=shared.to_dict()), tmp_path)
    raw = json.loads((tmp_path / INFO_FILE).read_text())
    del raw["classifier"]["metric_head"]
    (tmp_path / INFO_FILE).write_text(json.dumps(raw))
    loaded, _ = load_bundle(tmp_path)
    assert loaded.config.metric_head == "shared" and loaded.head.in_features == 8
    x = np.random.default_rng(2).normal(size=(5, 10)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


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


@pytest.mark.parametrize(("field", "value", "named"), [
    ("class_names", "rockpop", "class_names='rockpop'"),
    ("class_names", ["rock"], "class_names=['rock']"),
    ("class_names", ["rock", "rock"], "class_names"),
    ("clip_samples", 0, "clip_samples=0"),
    ("clip_samples", "30", "clip_samples='30'"),
    ("input_dim", -1, "input_dim=-1"),
    ("kind", "forest", "kind='forest'"),
    ("heads", ["pair"], "heads"),
    ("classifier", {**CONFIG.to_dict(), "dropout": 2.0}, "classifier.dropout=2.0"),
    ("classifier", [], "classifier=[]"),
    ("extractor_options", "none", "extractor_options='none'"),
    ("train_set", None, "train_set=None"),
])
def test_a_bad_bundle_json_field_is_named_on_load(tmp_path: Path, field: str, value: object,
                                                  named: str) -> None:
    """Fields were trusted and failed later (a string of class names gave one genre per
    letter); now load_bundle names the file and the field."""
    save_bundle(_trained_like_model(), _info(), tmp_path)
    info = json.loads((tmp_path / INFO_FILE).read_text())
    (tmp_path / INFO_FILE).write_text(json.dumps({**info, field: value}))
    with pytest.raises(BundleError) as error:
        load_bundle(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / INFO_FILE}: ")
    assert named in str(error.value)


@pytest.mark.parametrize(("options", "named"), [
    ({"weights": "none", "n_fft": 10**9}, "n_fft=1000000000"),
    ({"weights": "none", "hop_length": 0}, "hop_length=0"),
    ({"weights": "none", "n_mfcc": 200}, "n_mfcc=200"),
    ({"weights": "none", "sample_rate": 1}, "sample_rate=1"),
])
def test_bad_extractor_options_in_a_bundle_are_named(tmp_path: Path, options: dict,
                                                     named: str) -> None:
    from mgc.predict import GenrePredictor

    save_bundle(_trained_like_model(), _info(), tmp_path)
    info = json.loads((tmp_path / INFO_FILE).read_text())
    (tmp_path / INFO_FILE).write_text(json.dumps({**info, "extractor_options": options}))
    with pytest.raises(BundleError, match=rf"{INFO_FILE}: extractor_options: mfcc\.{named}"):
        GenrePredictor(tmp_path)


def test_a_bundle_json_that_is_not_json_is_named(tmp_path: Path) -> None:
    save_bundle(_trained_like_model(), _info(), tmp_path)
    (tmp_path / INFO_FILE).write_text("{not json")
    with pytest.raises(BundleError, match=rf"{INFO_FILE}: not a readable JSON file"):
        load_bundle(tmp_path)


def test_a_weighted_layers_bundle_round_trips_and_a_last_one_keeps_its_fields(
        tmp_path: Path) -> None:
    """A classifier on every layer keeps its layer weighting; one on the output writes no
    layer fields at all, so its bundle.json is the same bytes as before layers existed."""
    torch.manual_seed(0)
    dims = {"conv1": 4, "fc": 6}
    model = GenreClassifier(10, 4, CONFIG, heads=("anchor", "pair", "metric"),
                            layer_dims=list(dims.values())).eval()
    with torch.no_grad():
        model.layer_weighting.logits.copy_(torch.tensor([0.02, -0.01]))
    info = replace(_info(), layer="weighted", layer_dims=dims)
    save_bundle(model, info, tmp_path / "weighted")
    loaded, loaded_info = load_bundle(tmp_path / "weighted")
    assert loaded_info == info and loaded.layer_weights() == model.layer_weights()
    x = np.random.default_rng(2).normal(size=(5, 10)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    save_bundle(_trained_like_model(), _info(), tmp_path / "last")
    raw = json.loads((tmp_path / "last" / INFO_FILE).read_text())
    assert "layer" not in raw and "layer_dims" not in raw
    assert load_bundle(tmp_path / "last")[1].layer == "last"


@pytest.mark.parametrize(("layer", "dims"), [("weighted", None), ("conv1", {"conv1": 10}),
                                             ("weighted", {"a": 4, "b": 5})])
def test_layer_dims_must_match_the_layer(layer: str, dims: dict | None) -> None:
    with pytest.raises(ConfigError, match="layer_dims"):
        replace(_info(), layer=layer, layer_dims=dims)


def test_the_weights_licence_round_trips_and_is_absent_when_unset(tmp_path: Path) -> None:
    info = replace(_info(), weights_licence="CC-BY-NC-4.0")
    save_bundle(_trained_like_model(), info, tmp_path / "muq")
    assert json.loads((tmp_path / "muq" / INFO_FILE).read_text())["weights_licence"] == (
        "CC-BY-NC-4.0")
    assert load_bundle(tmp_path / "muq")[1] == info
    save_bundle(_trained_like_model(), _info(), tmp_path / "other")
    assert "weights_licence" not in json.loads((tmp_path / "other" / INFO_FILE).read_text())
    assert load_bundle(tmp_path / "other")[1].weights_licence is None


def test_a_bundle_without_domain_maps_is_unchanged(tmp_path: Path) -> None:
    save_bundle(_trained_like_model(), _info(), tmp_path / "bundle")
    assert "domain" not in json.loads((tmp_path / "bundle" / INFO_FILE).read_text())
    assert not (tmp_path / "bundle" / DOMAIN_FILE).exists()
    _, info = load_bundle(tmp_path / "bundle")
    assert load_domain_map(tmp_path / "bundle", info) is None
    with pytest.raises(BundleError, match="without a domain map"):
        load_domain_map(tmp_path / "bundle", info, "synth_fma")


def test_domain_maps_round_trip_and_the_default_is_chosen(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 10)), 3 + 2 * rng.normal(size=(40, 10))
    maps = {"a": standardising_map(a), "b": coral_map(b, a)}
    info = BundleInfo(**{**_info().__dict__,
                         "domain": {"method": "coral", "datasets": ["a", "b"], "default": "a"}})
    save_bundle(_trained_like_model(), info, tmp_path / "bundle", maps)
    _, loaded = load_bundle(tmp_path / "bundle")
    assert loaded == info
    x = rng.normal(size=(5, 10)).astype(np.float32)
    np.testing.assert_array_equal(load_domain_map(tmp_path / "bundle", loaded).apply(x),
                                  maps["a"].apply(x))
    np.testing.assert_array_equal(load_domain_map(tmp_path / "bundle", loaded, "b").apply(x),
                                  maps["b"].apply(x))
    with pytest.raises(BundleError, match="'c' is not one of the bundle's: a, b"):
        load_domain_map(tmp_path / "bundle", loaded, "c")
    save_bundle(_trained_like_model(), _info(), tmp_path / "bundle")
    assert not (tmp_path / "bundle" / DOMAIN_FILE).exists()


def test_a_domain_default_outside_its_datasets_is_refused() -> None:
    with pytest.raises(Exception, match="domain="):
        BundleInfo(**{**_info().__dict__,
                      "domain": {"method": "coral", "datasets": ["a"], "default": "b"}})
