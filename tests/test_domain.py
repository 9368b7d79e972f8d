"""mgc.domain: each method recovers a known shift between two domains; CORAL matches the
reference's covariance; gradient reversal reverses; none is today's path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgc.config import ConfigError
from mgc.domain import (
    DomainConfig,
    adapt_embeddings,
    adversary_for,
    coral_map,
    reverse_gradient,
    standardising_map,
)
from mgc.evaluate import LabelledEmbeddings
from mgc.losses import LossConfig
from mgc.model import ClassifierConfig
from mgc.seeds import train_over_seeds
from mgc.train import TrainConfig, train_classifier

SMALL = ClassifierConfig(hidden_layers=2, width_multiplier=0.25, dropout=0.1)
FAST = TrainConfig(epochs=60, batch_size=32, learning_rate=3e-3, patience=15)
SHIFTED = slice(0, 8)
"""The dimensions domain B offsets and rescales; the other 8 are as in domain A."""


def _tracks(dataset: str, shift: bool, seed: int) -> LabelledEmbeddings:
    """4 genres as Gaussian clusters in 16-d (the same centres in both domains), 60 train,
    15 val and 40 test tracks per genre; domain B's first 8 dimensions offset by several
    cluster spreads and rescaled (x 0.3 to x 3), a per-dimension shift of known size."""
    centres = np.random.default_rng(0).normal(scale=2.0, size=(4, 16))
    rng = np.random.default_rng(seed)
    split = np.repeat(["train", "val", "test"], [60, 15, 40])
    y = np.tile(np.arange(4), len(split))
    split = np.repeat(split, 4)
    x = centres[y] + rng.normal(size=(len(y), 16))
    if shift:
        shifts = np.random.default_rng(1)
        x[:, SHIFTED] = (x[:, SHIFTED] * shifts.uniform(0.3, 3.0, 8)
                         + shifts.choice([-1, 1], 8) * shifts.uniform(40.0, 80.0, 8))
    return LabelledEmbeddings(x.astype(np.float32), np.full(len(y), dataset),
                              np.array([f"{dataset}{i}" for i in range(len(y))]),
                              np.array([f"genre{c}" for c in y]), split)


def _scores(method: str) -> tuple[float, float]:
    """A DNN trained on domain a: its accuracy on a's test tracks and on b's."""
    result = train_over_seeds(_tracks("a", False, 1), {"b": _tracks("b", True, 2)}, ("dnn",),
                              (0,), SMALL, LossConfig(), FAST, domain=DomainConfig(method))
    return (result.metrics["dnn"]["a"]["accuracy"]["mean"],
            result.metrics["dnn"]["b"]["accuracy"]["mean"])


@pytest.fixture(scope="module")
def unadapted() -> tuple[float, float]:
    return _scores("none")


def test_the_shift_breaks_an_unadapted_classifier(unadapted: tuple[float, float]) -> None:
    in_domain, shifted = unadapted
    assert in_domain > 0.9
    assert shifted < 0.5 * in_domain


@pytest.mark.parametrize("method", ["standardise", "coral", "adversarial"])
def test_adaptation_recovers_most_of_the_in_domain_accuracy(
        method: str, unadapted: tuple[float, float]) -> None:
    in_domain, shifted = _scores(method)
    assert in_domain > 0.85
    assert shifted >= 0.8 * unadapted[0]


def test_maps_are_fitted_on_training_tracks_only() -> None:
    """Changing b's test tracks (or any label) changes no map; changing its training tracks
    does."""
    a, b = _tracks("a", False, 1), _tracks("b", True, 2)
    _, _, maps = adapt_embeddings(a, {"b": b}, "coral")
    moved = b.x.copy()
    moved[b.split == "test"] += 100.0
    relabelled = LabelledEmbeddings(moved, b.dataset, b.track_id, b.label[::-1], b.split)
    _, _, same = adapt_embeddings(a, {"b": relabelled}, "coral")
    np.testing.assert_array_equal(maps["b"].linear, same["b"].linear)
    np.testing.assert_array_equal(maps["a"].linear, np.ones(16, np.float32))
    moved[b.split == "train"] *= 2.0
    _, _, other = adapt_embeddings(a, {"b": LabelledEmbeddings(moved, b.dataset, b.track_id,
                                                                 b.label, b.split)}, "coral")
    assert not np.allclose(maps["b"].linear, other["b"].linear)


def test_joint_coral_aligns_every_dataset_to_the_pooled_tracks() -> None:
    a, b = _tracks("a", False, 1), _tracks("b", True, 2)
    joint = LabelledEmbeddings(*(np.concatenate([getattr(a, f), getattr(b, f)])
                                 for f in ("x", "dataset", "track_id", "label", "split")))
    adapted, _, maps = adapt_embeddings(joint, {}, "coral")
    assert sorted(maps) == ["a", "b"]
    train = adapted.part(adapted.split == "train")
    for dataset in ("a", "b"):
        np.testing.assert_allclose(train.x[train.dataset == dataset].mean(axis=0),
                                   joint.x[joint.split == "train"].mean(axis=0), atol=1e-3)


def test_coral_by_hand_on_two_dimensions() -> None:
    """x has covariance diag(16/3, 4/3), the reference diag(4/3, 12) and mean (10, 20): the
    map is diag(1/2, 3) and takes x onto the reference exactly. Both are uncorrelated with
    the same standardised covariance (4/3 I), so the ridge changes nothing; with a
    correlated reference (+ its mirror points, correlation 1/2) and no ridge, the map takes
    x's standardised covariance to the reference's."""
    x = np.array([[2.0, 1.0], [-2.0, -1.0], [2.0, -1.0], [-2.0, 1.0]])
    reference = np.array([[11.0, 23.0], [9.0, 17.0], [11.0, 17.0], [9.0, 23.0]])
    for shrinkage in (0.0, 1.0):
        exact = coral_map(x, reference, shrinkage)
        np.testing.assert_allclose(exact.linear, np.diag([0.5, 3.0]), atol=1e-6)
        np.testing.assert_allclose(exact.apply(x), reference, atol=1e-5)
    correlated = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0],
                           [0.0, -1.0]])
    mapped = coral_map(x, correlated, shrinkage=0.0).apply(x)
    np.testing.assert_allclose(np.cov(mapped, rowvar=False), [[0.8, 0.4], [0.4, 0.8]],
                               atol=1e-5)


def test_coral_output_has_the_reference_covariance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)) @ np.array([[2.0, 0.5, 0], [0, 1.0, 0.3], [0, 0, 0.2]])
    reference = rng.normal(size=(400, 3)) @ np.array([[0.5, 0, 0], [1.0, 3.0, 0], [0, 0.4, 1]])
    mapped = coral_map(x, reference, shrinkage=0.0).apply(x)
    np.testing.assert_allclose(np.cov(mapped, rowvar=False), np.cov(reference, rowvar=False),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(mapped.mean(axis=0), reference.mean(axis=0), atol=1e-4)


def test_coral_stays_finite_with_more_dimensions_than_tracks() -> None:
    rng = np.random.default_rng(0)
    x, reference = rng.normal(size=(30, 200)), 5 + 2 * rng.normal(size=(40, 200))
    mapped = coral_map(x, reference).apply(rng.normal(size=(10, 200)))
    assert np.isfinite(mapped).all() and np.abs(mapped).max() < 100


def test_standardising_map_gives_zero_mean_unit_std_and_leaves_constants() -> None:
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    mapped = standardising_map(x).apply(x)
    np.testing.assert_allclose(mapped.mean(axis=0), [0, 0], atol=1e-6)
    np.testing.assert_allclose(mapped.std(axis=0), [1, 0], atol=1e-6)


def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([2.0, 4.0, -6.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.0, -2.0, 3.0]))


def test_none_is_todays_path() -> None:
    """No maps, and the same predictions as a plain train_classifier call on raw inputs."""
    a, b = _tracks("a", False, 1), _tracks("b", True, 2)
    result = train_over_seeds(a, {"b": b}, ("dnn",), (0,), SMALL, LossConfig(), FAST)
    assert result.domain_maps == {}
    train, val = a.part(a.split == "train"), a.part(a.split == "val")
    y = np.array([int(label[-1]) for label in train.label])
    y_val = np.array([int(label[-1]) for label in val.label])
    plain = train_classifier(train.x, y, val.x, y_val, 4, SMALL, LossConfig(), FAST, seed=0)
    test = b.part(b.split == "test")
    expected = [f"genre{c}" for c in plain.model.predict_proba(test.x).argmax(axis=1)]
    shipped = result.predictions[result.predictions["test_set"] == "b"]["dnn_seed0"]
    assert list(shipped) == expected


def test_adversarial_ships_no_domain_head_and_logs_its_loss() -> None:
    a, b = _tracks("a", False, 1), _tracks("b", True, 2)
    train, val = a.part(a.split == "train"), a.part(a.split == "val")
    y = np.array([int(label[-1]) for label in train.label])
    y_val = np.array([int(label[-1]) for label in val.label])
    adversary = adversary_for(train, {"b": b}, 0.1)
    assert adversary is not None and adversary.n_domains == 2
    assert len(adversary.x_unlabelled) == int(np.sum(b.split == "train"))
    config = TrainConfig(epochs=3, patience=3)
    plain = train_classifier(train.x, y, val.x, y_val, 4, SMALL, LossConfig(), config, 0)
    dann = train_classifier(train.x, y, val.x, y_val, 4, SMALL, LossConfig(), config, 0,
                            adversary=adversary)
    assert dann.model.state_dict().keys() == plain.model.state_dict().keys()
    assert all(row["loss_domain"] > 0 for row in dann.history)
    assert "loss_domain" not in plain.history[0]


def test_one_domain_has_no_adversary() -> None:
    a = _tracks("a", False, 1)
    assert adversary_for(a.part(a.split == "train"), {}, 0.1) is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "mmd"}, "domain='mmd'"), ({"weight": -0.1}, "domain_weight=-0.1"),
    ({"weight": float("inf")}, "domain_weight=inf")])
def test_config_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DomainConfig(**kwargs)


def test_a_target_without_training_tracks_is_refused_by_name() -> None:
    a, b = _tracks("a", False, 1), _tracks("b", True, 2)
    test_only = b.part(b.split == "test")
    with pytest.raises(ValueError, match="b has 0 training track"):
        adapt_embeddings(a, {"b": test_only}, "standardise")
