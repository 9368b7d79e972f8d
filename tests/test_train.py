"""mgc.train: it learns, it augments only the training data, it is deterministic, it stops early."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mgc import train as train_module
from mgc.losses import LossConfig
from mgc.model import ClassifierConfig
from mgc.train import NoiseConfig, TrainConfig, TrainingError, add_noise, train_classifier

SMALL = ClassifierConfig(hidden_layers=2, width_multiplier=0.25, dropout=0.1)


def _blobs(n_per_class: int, n_classes: int = 4, dim: int = 16, spread: float = 1.0,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters around well separated centres, far from zero mean and unit scale."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    return (50.0 + 10.0 * x).astype(np.float32), y


def _val_loss(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        logits = model(torch.as_tensor(x)).logits
    return float(nn.functional.cross_entropy(logits, torch.as_tensor(y)))


def test_learns_a_separable_problem() -> None:
    x_train, y_train = _blobs(60, seed=0)
    x_val, y_val = _blobs(15, seed=0)
    x_test, y_test = _blobs(50, seed=0)
    rng = np.random.default_rng(1)
    x_val = x_val + rng.normal(scale=10.0, size=x_val.shape).astype(np.float32)
    x_test = x_test + rng.normal(scale=10.0, size=x_test.shape).astype(np.float32)
    trained = train_classifier(x_train, y_train, x_val, y_val, 4, SMALL, LossConfig(),
                               TrainConfig(epochs=25, batch_size=32, learning_rate=3e-3,
                                           patience=25), seed=0)
    accuracy = (trained.model.predict_proba(x_test).argmax(axis=1) == y_test).mean()
    assert accuracy > 0.9
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_add_noise_reaches_the_target_snr_per_vector(snr_db: float) -> None:
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.01, 1.0, 30.0]).repeat_interleave(400)[:, None]
    z = torch.randn(1200, 512, generator=generator) * scales
    noise = add_noise(z, snr_db, generator) - z
    for group in range(3):
        rows = slice(400 * group, 400 * (group + 1))
        measured = 10 * torch.log10(z[rows].pow(2).sum() / noise[rows].pow(2).sum())
        assert abs(float(measured) - snr_db) < 0.5
    assert abs(float(noise.mean())) < 0.05


def _recording_add_noise(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    real = train_module.add_noise

    def spy(z: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
        seen.append(z.clone())
        return real(z, snr_db, generator)

    monkeypatch.setattr(train_module, "add_noise", spy)
    return seen


@pytest.mark.parametrize(("mode", "calls"), [("off", 0), ("once", 1), ("every_epoch", 4)])
def test_noise_touches_only_standardised_training_data(monkeypatch: pytest.MonkeyPatch,
                                                       mode: str, calls: int) -> None:
    seen = _recording_add_noise(monkeypatch)
    x_train, y_train = _blobs(20, seed=2)
    x_val, y_val = _blobs(5, seed=3)
    config = TrainConfig(epochs=4, batch_size=16, patience=10, noise=NoiseConfig(mode, 10.0))
    trained = train_classifier(x_train, y_train, x_val, y_val, 4, SMALL, LossConfig(), config,
                               seed=0)
    assert len(seen) == calls
    standardised = (x_train - x_train.mean(axis=0)) / x_train.std(axis=0)
    for z in seen:
        np.testing.assert_allclose(z.numpy(), standardised, rtol=1e-4, atol=1e-4)
    best = trained.history[trained.best_epoch - 1]
    assert _val_loss(trained.model, x_val, y_val) == pytest.approx(best["val_loss"], rel=1e-5)


def test_same_seed_gives_identical_weights() -> None:
    x_train, y_train = _blobs(20, seed=4)
    x_val, y_val = _blobs(5, seed=5)
    config = TrainConfig(epochs=5, batch_size=16, patience=10, noise=NoiseConfig("every_epoch"))

    def state(seed: int) -> dict[str, torch.Tensor]:
        return train_classifier(x_train, y_train, x_val, y_val, 4, SMALL, LossConfig(), config,
                                seed=seed).model.state_dict()

    first, again, other = state(0), state(0), state(1)
    assert first.keys() == again.keys()
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not all(torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


def test_early_stopping_restores_the_best_epoch() -> None:
    """Random labels: validation loss bottoms out early, then rises as the net memorises."""
    rng = np.random.default_rng(6)
    x_train = rng.normal(size=(64, 16)).astype(np.float32)
    y_train = rng.integers(0, 4, size=64)
    x_val = rng.normal(size=(64, 16)).astype(np.float32)
    y_val = rng.integers(0, 4, size=64)
    config = TrainConfig(epochs=200, batch_size=16, learning_rate=1e-2, patience=3,
                         smoothing=0.0, min_delta=0.0, noise=NoiseConfig("off"))
    wide = ClassifierConfig(hidden_layers=2, dropout=0.0)
    trained = train_classifier(x_train, y_train, x_val, y_val, 4, wide, LossConfig(), config,
                               seed=0)
    val_losses = [epoch["val_loss"] for epoch in trained.history]
    assert len(val_losses) < 200 and trained.stopped_early
    assert len(val_losses) == trained.best_epoch + config.patience
    assert trained.best_epoch == int(np.argmin(val_losses)) + 1
    assert val_losses[-1] > min(val_losses)
    assert not trained.model.training
    assert _val_loss(trained.model, x_val, y_val) == pytest.approx(min(val_losses), rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, r"^epochs=0"), ({"batch_size": -1}, r"^batch_size=-1"),
     ({"learning_rate": 0.0}, r"^learning_rate=0\.0"),
     ({"weight_decay": -1e-4}, r"^weight_decay"), ({"smoothing": 1.0}, r"^smoothing=1\.0")],
)
def test_train_config_errors_name_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_noise_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^mode='sometimes'.*off, once"):
        NoiseConfig(mode="sometimes")
    with pytest.raises(ValueError, match=r"^snr_db"):
        NoiseConfig(snr_db=float("nan"))


def test_too_little_data_is_refused() -> None:
    x, y = _blobs(1, n_classes=1)
    with pytest.raises(ValueError, match="at least 2 training"):
        train_classifier(x, y, x, y, 1, SMALL, LossConfig(), TrainConfig(), seed=0)


def _random_label_run(config: TrainConfig) -> train_module.TrainedClassifier:
    rng = np.random.default_rng(6)
    x_train, x_val = (rng.normal(size=(64, 16)).astype(np.float32) for _ in range(2))
    y_train, y_val = (rng.integers(0, 4, size=64) for _ in range(2))
    return train_classifier(x_train, y_train, x_val, y_val, 4,
                            ClassifierConfig(hidden_layers=2, dropout=0.0), LossConfig(),
                            config, seed=0)


def test_early_stopping_follows_the_smoothed_validation_loss() -> None:
    config = TrainConfig(epochs=200, batch_size=16, learning_rate=1e-2, patience=4,
                         smoothing=0.7, min_delta=0.0, noise=NoiseConfig("off"))
    trained = _random_label_run(config)
    raw = [row["val_loss"] for row in trained.history]
    smoothed = [row["val_loss_smoothed"] for row in trained.history]
    expected = [raw[0]]
    for value in raw[1:]:  # the exponential moving average, by hand
        expected.append(0.7 * expected[-1] + 0.3 * value)
    np.testing.assert_allclose(smoothed, expected, rtol=1e-12)
    assert trained.stopped_early
    assert trained.best_epoch == int(np.argmin(smoothed)) + 1
    assert len(raw) == trained.best_epoch + config.patience


def test_a_run_that_reaches_the_cap_is_not_early_stopped() -> None:
    trained = _random_label_run(TrainConfig(epochs=3, batch_size=16, patience=50,
                                            noise=NoiseConfig("off")))
    assert len(trained.history) == 3 and not trained.stopped_early


@pytest.mark.parametrize("metric", ["w_contrastive", "w_triplet"])
def test_a_negligible_metric_loss_trains_the_ce_only_model(metric: str) -> None:
    """A metric loss weighted 1e-12 adds its head and its pair mining but, to float
    rounding, no gradient: the run must be the CE-only run of the same seed (the same noise,
    batch order, dropout masks, epochs and weights), so that a comparison with CE alone
    measures the loss and not another draw of the seed's randomness."""
    x_train, y_train = _blobs(30, seed=6)
    x_val, y_val = _blobs(8, seed=7)
    config = TrainConfig(epochs=12, batch_size=16, patience=4, noise=NoiseConfig("every_epoch"))
    ce = train_classifier(x_train, y_train, x_val, y_val, 4, SMALL, LossConfig(), config,
                          seed=3)
    tiny = train_classifier(x_train, y_train, x_val, y_val, 4, SMALL,
                            LossConfig(weights={"w_ce": 1.0, metric: 1e-12}), config, seed=3)
    assert tiny.model.embedding is not None and ce.model.embedding is None
    assert tiny.best_epoch == ce.best_epoch and len(tiny.history) == len(ce.history)
    for key, value in ce.model.state_dict().items():
        torch.testing.assert_close(tiny.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([row["val_loss"] for row in tiny.history],
                               [row["val_loss"] for row in ce.history], rtol=1e-5)


def test_the_mining_stream_is_its_own_per_seed() -> None:
    """Not the shuffling stream (same seed, other numbers), and one stream per seed."""
    draws = {seed: torch.rand(4, generator=train_module.mining_generator(seed))
             for seed in (0, 1)}
    assert not torch.equal(draws[0], torch.rand(4, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[0], torch.rand(4, generator=train_module.mining_generator(0)))


def test_each_epoch_logs_every_term_and_its_active_margins() -> None:
    x, y = _blobs(20, seed=2)
    loss = LossConfig(weights={"w_ce": 0.7, "w_contrastive": 0.3, "w_triplet": 0.1})
    trained = train_classifier(x, y, x, y, 4, SMALL, loss,
                               TrainConfig(epochs=2, batch_size=16, noise=NoiseConfig("off")),
                               seed=0)
    row = trained.history[0]
    assert {"loss_ce", "loss_contrastive", "loss_triplet", "active_contrastive",
            "active_triplet", "train_loss", "val_loss_smoothed"} <= row.keys()
    assert 0.0 <= row["active_contrastive"] <= 1.0 and 0.0 <= row["active_triplet"] <= 1.0
    weighted = 0.7 * row["loss_ce"] + 0.3 * row["loss_contrastive"] + 0.1 * row["loss_triplet"]
    assert row["train_loss"] == pytest.approx(weighted, rel=1e-5)


@settings(max_examples=25)
@given(weight_exponent=st.integers(0, 308), snr_db=st.floats(-2000, 60))
def test_a_run_whose_loss_goes_non_finite_fails_naming_the_keys(weight_exponent: int,
                                                                 snr_db: float) -> None:
    """Extreme loss weights or noise far louder than the signal made the loss NaN, and the
    stage still exited 0 with a bundle; now training either stays finite or raises
    TrainingError naming the keys to change (so the stage writes nothing)."""
    x_train, y_train = _blobs(8, seed=0)
    x_val, y_val = _blobs(2, seed=1)
    config = TrainConfig(epochs=2, batch_size=16, patience=2,
                         noise=NoiseConfig(mode="once", snr_db=snr_db))
    loss = LossConfig(weights={"w_ce": 10.0 ** weight_exponent})
    try:
        trained = train_classifier(x_train, y_train, x_val, y_val, 4, SMALL, loss, config,
                                   seed=0)
    except TrainingError as error:
        assert "loss.w_*" in str(error) and "train.noise.snr_db" in str(error)
        assert "is nan" in str(error) or "is inf" in str(error)
        return
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])
               for row in trained.history)
    assert all(torch.isfinite(p).all() for p in trained.model.parameters())


@pytest.mark.parametrize(("weight", "snr_db"), [(1e300, 20.0), (1.0, -1000.0)])
def test_extreme_loss_weight_or_noise_raises_training_error(weight: float,
                                                            snr_db: float) -> None:
    x_train, y_train = _blobs(8, seed=0)
    x_val, y_val = _blobs(2, seed=1)
    config = TrainConfig(epochs=2, batch_size=16, noise=NoiseConfig(snr_db=snr_db))
    with pytest.raises(TrainingError, match=r"at epoch 1 \(classifier dnn, seed 3\)"):
        train_classifier(x_train, y_train, x_val, y_val, 4, SMALL,
                         LossConfig(weights={"w_ce": weight}), config, seed=3)


def test_an_improvement_under_min_delta_does_not_count() -> None:
    config = TrainConfig(epochs=200, batch_size=16, learning_rate=1e-2, patience=4,
                         smoothing=0.0, min_delta=0.05, noise=NoiseConfig("off"))
    trained = _random_label_run(config)
    raw = [row["val_loss"] for row in trained.history]
    best = raw[0]
    for value in raw[1:trained.best_epoch]:  # each new best beat the last by > min_delta
        if value < best - 0.05:
            best = value
    assert raw[trained.best_epoch - 1] == best
    assert all(value >= best - 0.05 for value in raw[trained.best_epoch:])
    assert len(raw) == trained.best_epoch + config.patience
