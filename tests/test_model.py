"""mgc.model: the architecture knobs, config validation, heads, standardisation buffers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mgc.config import ConfigError
from mgc.model import ClassifierConfig, GenreClassifier


def _linear_widths(model: GenreClassifier) -> list[int]:
    return [layer.out_features for layer in model.trunk if isinstance(layer, nn.Linear)]


@pytest.mark.parametrize(
    ("hidden_layers", "width_multiplier", "expected"),
    [
        (4, 1.0, [256, 128, 64, 32]),
        (1, 1.0, [256]),
        (2, 0.5, [128, 64]),
        (3, 1.5, [384, 192, 96]),
        (4, 2.0, [512, 256, 128, 64]),
    ],
)
def test_trunk_widths(hidden_layers: int, width_multiplier: float, expected: list[int]) -> None:
    config = ClassifierConfig(hidden_layers=hidden_layers, width_multiplier=width_multiplier)
    model = GenreClassifier(40, 10, config)
    assert list(config.widths) == expected
    assert _linear_widths(model) == expected
    assert model.head.in_features == expected[-1] and model.head.out_features == 10


def test_paper_block_is_linear_bn_activation_dropout() -> None:
    config = ClassifierConfig(hidden_layers=1, dropout=0.25, activation="swish")
    kinds = [type(layer) for layer in GenreClassifier(8, 3, config).trunk]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.SiLU, nn.Dropout]
    no_bn = GenreClassifier(8, 3, ClassifierConfig(hidden_layers=2, batchnorm=False))
    assert not any(isinstance(layer, nn.BatchNorm1d) for layer in no_bn.trunk)
    dropouts = [layer.p for layer in GenreClassifier(8, 3, config).trunk
                if isinstance(layer, nn.Dropout)]
    assert dropouts == [0.25]


def test_linear_probe_is_one_layer_on_the_input() -> None:
    model = GenreClassifier(40, 10, ClassifierConfig(), kind="linear")
    assert len(model.trunk) == 0
    assert (model.head.in_features, model.head.out_features) == (40, 10)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_layers", 5, r"^hidden_layers=5.*between 1 and 4"),
        ("hidden_layers", 0, r"^hidden_layers=0"),
        ("width_multiplier", 0.0, r"^width_multiplier=0\.0"),
        ("dropout", 1.5, r"^dropout=1\.5.*\[0, 1\)"),
        ("dropout", -0.1, r"^dropout=-0\.1"),
        ("activation", "tanh", r"^activation='tanh'.*relu, leaky_relu, elu"),
        ("embedding_dim", 1, r"^embedding_dim=1"),
        ("metric_head", "stacked", r"^metric_head='stacked'.*projection, shared"),
    ],
)
def test_config_errors_name_the_field(field: str, value: object, message: str) -> None:
    """The library names its own field; the params layer adds where it lives (test_params)."""
    with pytest.raises(ConfigError, match=message):
        ClassifierConfig(**{field: value})


@pytest.mark.parametrize("heads", [("pair",), ("anchor", "projection")])
def test_heads_must_include_the_anchor_and_be_known(heads: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="anchor"):
        GenreClassifier(8, 3, ClassifierConfig(), heads=heads)


def test_unknown_kind_names_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"kind='svm'.*dnn, linear"):
        GenreClassifier(8, 3, ClassifierConfig(), kind="svm")


@pytest.mark.parametrize(("metric_head", "ce_input"), [("projection", 128), ("shared", 16)])
def test_heads_exist_only_when_asked(metric_head: str, ce_input: int) -> None:
    """The CE heads read the trunk's last layer (128) beside a projection head, or the
    16-d metric embedding in the authors' shared layout."""
    config = ClassifierConfig(hidden_layers=2, embedding_dim=16, metric_head=metric_head)
    plain = GenreClassifier(12, 5, config)
    assert plain.embedding is None and plain.pair_head is None
    assert plain.head.in_features == 128
    output = plain(torch.randn(4, 12))
    assert output.logits.shape == (4, 5)
    assert output.embedding is None and output.pair_logits is None

    full = GenreClassifier(12, 5, config, heads=("anchor", "pair", "metric"))
    assert (full.embedding.in_features, full.embedding.out_features) == (128, 16)
    assert full.head.in_features == ce_input and full.pair_head.in_features == ce_input
    full.eval()
    output = full(torch.randn(4, 12))
    assert output.embedding.shape == (4, 16)
    assert output.pair_logits.shape == (4, 5)
    assert {"embedding.weight", "pair_head.weight", "head.weight"} <= set(full.state_dict())


def test_a_projection_metric_head_leaves_the_ce_model_as_it_was() -> None:
    """Same seed, same trunk and CE head weights, same logits, and the same random stream
    after construction: adding a projection head only adds a loss, so a metric-loss run
    differs from CE only by what that loss does."""
    config = ClassifierConfig(hidden_layers=2)
    torch.manual_seed(3)
    ce_only = GenreClassifier(12, 5, config).eval()
    rng_after_ce_only = torch.get_rng_state()
    torch.manual_seed(3)
    with_metric = GenreClassifier(12, 5, config, heads=("anchor", "metric")).eval()
    assert torch.equal(torch.get_rng_state(), rng_after_ce_only)   # dropout masks to come
    ce_state, metric_state = ce_only.state_dict(), with_metric.state_dict()
    assert set(metric_state) - set(ce_state) == {"embedding.weight", "embedding.bias"}
    for key, value in ce_state.items():
        torch.testing.assert_close(metric_state[key], value, rtol=0, atol=0)
    x = torch.randn(6, 12)
    torch.testing.assert_close(with_metric(x).logits, ce_only(x).logits, rtol=0, atol=0)


def test_standardisation_lives_in_the_state_dict() -> None:
    rng = np.random.default_rng(0)
    mean, scale = rng.normal(size=6), np.array([1.0, 2.0, 0.0, 0.5, 3.0, 1.0])
    model = GenreClassifier(6, 3, ClassifierConfig(hidden_layers=1))
    model.set_standardisation(mean, scale)
    state = model.state_dict()
    torch.testing.assert_close(state["input_mean"], torch.tensor(mean, dtype=torch.float32))
    expected_scale = torch.tensor([1.0, 2.0, 1.0, 0.5, 3.0, 1.0])
    torch.testing.assert_close(state["input_scale"], expected_scale)

    clone = GenreClassifier(6, 3, ClassifierConfig(hidden_layers=1))
    clone.load_state_dict(state)
    x = torch.randn(5, 6)
    torch.testing.assert_close(clone.standardise(x), (x - state["input_mean"]) / expected_scale)


def test_forward_is_standardise_then_network() -> None:
    model = GenreClassifier(6, 3, ClassifierConfig(hidden_layers=2)).eval()
    model.set_standardisation(np.full(6, 2.0), np.full(6, 4.0))
    x = torch.randn(3, 6)
    torch.testing.assert_close(model(x).logits, model.forward_standardised((x - 2) / 4).logits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_proba_gives_distributions(dtype: type) -> None:
    model = GenreClassifier(6, 4, ClassifierConfig(hidden_layers=2))
    x = np.random.default_rng(1).normal(size=(7, 6)).astype(dtype)
    proba = model.predict_proba(x, batch_size=3)
    assert proba.shape == (7, 4) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, model.predict_proba(x, batch_size=100), rtol=1e-6)
    assert model.predict_proba(x[:0]).shape == (0, 4)


def _one_informative_layer(n: int, dims: list[int], informative: int, seed: int = 0
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Layers side by side: `informative` separates 4 classes, the others are pure noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    centres = rng.standard_normal((4, dims[informative])) * 0.7
    layers = [rng.standard_normal((n, dim)) for dim in dims]
    layers[informative] = centres[labels] + rng.standard_normal((n, dims[informative]))
    return np.concatenate(layers, axis=1).astype(np.float32), labels


@pytest.mark.parametrize("kind", ["linear", "dnn"])
def test_weighted_layers_learn_to_weight_the_informative_layer(kind: str) -> None:
    from mgc.losses import LossConfig
    from mgc.train import NoiseConfig, TrainConfig, train_classifier

    dims = [24, 6, 48, 12]
    x, y = _one_informative_layer(600, dims, informative=1)
    config = TrainConfig(learning_rate=5e-3, noise=NoiseConfig("once"))
    trained = train_classifier(x[:400], y[:400], x[400:], y[400:], 4, ClassifierConfig(),
                               LossConfig(), config, seed=0, kind=kind, layer_dims=dims)
    weights = trained.model.layer_weights()
    assert weights is not None and abs(sum(weights) - 1) < 1e-6
    others = max(w for i, w in enumerate(weights) if i != 1)
    assert int(np.argmax(weights)) == 1 and weights[1] > 1.5 * others, weights
    accuracy = (trained.model.predict_proba(x[400:]).argmax(1) == y[400:]).mean()
    assert accuracy > 0.65


def test_layer_weighting_is_off_unless_layer_dims_are_given() -> None:
    plain = GenreClassifier(40, 3, ClassifierConfig())
    assert plain.layer_weights() is None
    assert not any(key.startswith("layer_weighting") for key in plain.state_dict())
    weighted = GenreClassifier(40, 3, ClassifierConfig(), layer_dims=[10, 30])
    assert weighted.layer_weights() == pytest.approx([0.5, 0.5])
    assert weighted(torch.zeros(5, 40)).logits.shape == (5, 3)
    with pytest.raises(ValueError, match=r"layer_dims \[10, 20\] add up to 30, not the "
                                         r"input's 40"):
        GenreClassifier(40, 3, ClassifierConfig(), layer_dims=[10, 20])
