"""mgc.losses: hand-computed loss values, margins, safe gradients, miner invariants, weighting.

The hand values use 2-d points at distances of the 3-4-5 triangle, so each expected number
is written out as arithmetic next to the assertion.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mgc.config import ConfigError
from mgc.losses import (
    TERMS,
    LossConfig,
    LossTerm,
    LossValues,
    TermBatch,
    all_pairs,
    contrastive_loss,
    metric_space,
    mine_pairs,
    mine_triplets,
    multitask_loss,
    register_term,
    triplet_loss,
)
from mgc.model import ClassifierConfig, ClassifierOutput, GenreClassifier

ORIGIN = [0.0, 0.0]
FAR = [3.0, 4.0]  # distance 5 from ORIGIN

label_batches = st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=24)


def _tensor(rows: list[list[float]], grad: bool = False) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64, requires_grad=grad)


# --- contrastive -------------------------------------------------------------------------


def test_contrastive_matches_hand_computation() -> None:
    emb_a = _tensor([ORIGIN, ORIGIN, ORIGIN, [1.0, 1.0]])
    emb_b = _tensor([FAR, FAR, [6.0, 8.0], [1.0, 1.0]])
    same = torch.tensor([True, False, False, False])
    # similar d=5: 5^2 = 25; dissimilar d=5, m=6: (6-5)^2 = 1; dissimilar d=10 >= m: 0;
    # dissimilar d=0: (6-0)^2 = 36.
    expected = (25 + 1 + 0 + 36) / 4
    assert float(contrastive_loss(emb_a, emb_b, same, margin=6.0)) == pytest.approx(expected)


def test_contrastive_gradient_matches_hand_derivation() -> None:
    emb_a = _tensor([ORIGIN, ORIGIN], grad=True)
    emb_b = _tensor([FAR, FAR])
    contrastive_loss(emb_a, emb_b, torch.tensor([True, False]), margin=6.0).backward()
    # d/da d^2 = 2(a-b) = (-6, -8); d/da (m-d)^2 = -2(m-d)(a-b)/d = -2*1*(-3,-4)/5;
    # both divided by the 2 pairs of the mean.
    expected = torch.tensor([[-6.0, -8.0], [6 / 5, 8 / 5]], dtype=torch.float64) / 2
    torch.testing.assert_close(emb_a.grad, expected)


@pytest.mark.parametrize(("margin", "expected"), [(4.0, 0.0), (5.0, 0.0), (5.5, 0.25),
                                                  (7.0, 4.0)])
def test_contrastive_margin_only_pushes_dissimilar_pairs_closer_than_it(
        margin: float, expected: float) -> None:
    emb_a = _tensor([ORIGIN], grad=True)
    loss = contrastive_loss(emb_a, _tensor([FAR]), torch.tensor([False]), margin)
    assert loss.item() == pytest.approx(expected)  # max(0, m - 5)^2
    loss.backward()
    assert bool(torch.all(emb_a.grad == 0)) == (margin <= 5.0)


def test_contrastive_at_zero_distance_has_finite_gradients() -> None:
    points = _tensor([[1.0, 2.0], [1.0, 2.0]], grad=True)
    loss = contrastive_loss(points[:1], points[1:2], torch.tensor([False]), margin=1.0)
    loss = loss + contrastive_loss(points[:1], points[1:2], torch.tensor([True]), margin=1.0)
    loss.backward()
    assert loss.item() == pytest.approx(1.0)  # (1 - 0)^2 + 0^2
    assert torch.isfinite(points.grad).all()


def test_contrastive_gradcheck_away_from_kinks() -> None:
    generator = torch.Generator().manual_seed(0)
    emb_a = torch.randn(6, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    emb_b = torch.randn(6, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    same = torch.tensor([True, False, True, False, False, True])
    assert torch.autograd.gradcheck(lambda a, b: contrastive_loss(a, b, same, 10.0),
                                    (emb_a, emb_b))


# --- triplet -----------------------------------------------------------------------------


def test_triplet_matches_hand_computation() -> None:
    anchor = _tensor([ORIGIN, ORIGIN, ORIGIN])
    positive = _tensor([FAR, [0.0, 1.0], [6.0, 8.0]])
    negative = _tensor([[0.0, 6.0], [6.0, 8.0], FAR])
    # (d_ap, d_an) = (5, 6), (1, 10), (10, 5)
    # m=1: max(0, 5-6+1)=0, max(0, 1-10+1)=0, max(0, 10-5+1)=6
    assert float(triplet_loss(anchor, positive, negative, 1.0)) == pytest.approx((0 + 0 + 6) / 3)
    # m=2: 1, 0, 7
    assert float(triplet_loss(anchor, positive, negative, 2.0)) == pytest.approx((1 + 0 + 7) / 3)


def test_triplet_matches_torch_reference() -> None:
    generator = torch.Generator().manual_seed(1)
    anchor, positive, negative = torch.randn(3, 64, 16, generator=generator)
    for margin in (0.5, 1.0, 3.0):
        reference = nn.functional.triplet_margin_loss(anchor, positive, negative, margin=margin)
        # torch adds eps=1e-6 to every coordinate difference; our distance is exact.
        torch.testing.assert_close(triplet_loss(anchor, positive, negative, margin), reference,
                                   atol=1e-4, rtol=1e-5)


def test_triplet_at_zero_distance_costs_the_margin_with_finite_gradients() -> None:
    point = _tensor([[2.0, -1.0]], grad=True)
    loss = triplet_loss(point, point * 1, point * 1, margin=0.7)
    loss.backward()
    assert loss.item() == pytest.approx(0.7)  # max(0, 0 - 0 + 0.7)
    assert torch.isfinite(point.grad).all()


@pytest.mark.parametrize("loss_fn", ["contrastive", "triplet"])
def test_no_pairs_gives_a_zero_that_backpropagates(loss_fn: str) -> None:
    embeddings = torch.randn(4, 3, requires_grad=True)
    empty = torch.zeros(0, dtype=torch.long)
    if loss_fn == "contrastive":
        loss = contrastive_loss(embeddings[empty], embeddings[empty],
                                torch.zeros(0, dtype=torch.bool), 1.0)
    else:
        loss = triplet_loss(embeddings[empty], embeddings[empty], embeddings[empty], 1.0)
    assert loss.shape == () and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(embeddings.grad, torch.zeros(4, 3))


def test_loss_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="emb_b"):
        contrastive_loss(torch.zeros(3, 2), torch.zeros(2, 2), torch.ones(3, dtype=torch.bool),
                         1.0)
    with pytest.raises(ValueError, match="same"):
        contrastive_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="negative"):
        triplet_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 4), 1.0)


# --- miners ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(labels=label_batches, seed=st.integers(min_value=0, max_value=2**31))
def test_mined_pairs_are_valid_complete_and_balanced(labels: list[int], seed: int) -> None:
    y = torch.tensor(labels)
    pairs = mine_pairs(y, torch.Generator().manual_seed(seed))
    anchors, others = pairs.anchor_idx.tolist(), pairs.other_idx.tolist()
    assert len(anchors) == len(others) == len(pairs.same)
    assert all(0 <= i < len(labels) for i in anchors + others)
    assert all(a != o for a, o in zip(anchors, others, strict=True))
    assert pairs.same.tolist() == [labels[a] == labels[o]
                                   for a, o in zip(anchors, others, strict=True)]
    counts = Counter(labels)
    with_positive = [i for i, label in enumerate(labels) if counts[label] > 1]
    with_negative = [i for i, label in enumerate(labels) if counts[label] < len(labels)]
    positives = [a for a, s in zip(anchors, pairs.same.tolist(), strict=True) if s]
    negatives = [a for a, s in zip(anchors, pairs.same.tolist(), strict=True) if not s]
    assert sorted(positives) == with_positive  # one positive per anchor that has one
    assert sorted(negatives) == with_negative  # one negative per anchor that has one


@settings(max_examples=60, deadline=None)
@given(labels=label_batches, seed=st.integers(min_value=0, max_value=2**31),
       semi_hard=st.booleans())
def test_mined_triplets_are_valid_and_cover_every_possible_anchor(
        labels: list[int], seed: int, semi_hard: bool) -> None:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(len(labels), 3, generator=generator) if semi_hard else None
    triplets = mine_triplets(torch.tensor(labels), embeddings, generator)
    counts = Counter(labels)
    possible = [i for i, label in enumerate(labels) if 1 < counts[label] < len(labels)]
    assert triplets.anchor_idx.tolist() == possible
    for a, p, n in zip(triplets.anchor_idx.tolist(), triplets.positive_idx.tolist(),
                       triplets.negative_idx.tolist(), strict=True):
        assert 0 <= p < len(labels) and 0 <= n < len(labels)
        assert p != a and labels[p] == labels[a]
        assert labels[n] != labels[a]


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.integers(min_value=0, max_value=2), min_size=2, max_size=16),
       seed=st.integers(min_value=0, max_value=2**31))
def test_semi_hard_negative_is_the_closest_beyond_the_positive(labels: list[int],
                                                               seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(len(labels), 2, generator=generator)
    triplets = mine_triplets(torch.tensor(labels), embeddings, generator)
    for a, p, n in zip(triplets.anchor_idx.tolist(), triplets.positive_idx.tolist(),
                       triplets.negative_idx.tolist(), strict=True):
        d = {j: float(torch.dist(embeddings[a], embeddings[j])) for j in range(len(labels))}
        negatives = [j for j in d if labels[j] != labels[a]]
        beyond = [j for j in negatives if d[j] > d[p]]
        expected = (min(d[j] for j in beyond) if beyond else max(d[j] for j in negatives))
        assert d[n] == pytest.approx(expected, abs=1e-6)


def test_single_class_batch_has_no_negatives_and_no_triplets() -> None:
    labels = torch.full((5,), 3)
    pairs = mine_pairs(labels, torch.Generator().manual_seed(0))
    assert len(pairs.same) == 5 and bool(pairs.same.all())
    assert len(mine_triplets(labels, generator=torch.Generator().manual_seed(0)).anchor_idx) == 0


def test_singleton_label_gets_a_negative_but_no_positive() -> None:
    labels = torch.tensor([0, 0, 1, 2, 2])
    pairs = mine_pairs(labels, torch.Generator().manual_seed(0))
    partners_of_2 = pairs.same[pairs.anchor_idx == 2]
    assert partners_of_2.tolist() == [False]
    assert 2 not in mine_triplets(labels, generator=torch.Generator().manual_seed(0)
                                  ).anchor_idx.tolist()


def test_partners_are_drawn_uniformly_and_reproducibly() -> None:
    labels = torch.tensor([0, 0, 0, 0, 1])
    generator = torch.Generator().manual_seed(0)
    draws = Counter()
    for _ in range(3000):
        pairs = mine_pairs(labels, generator)
        draws[int(pairs.other_idx[0])] += 1  # anchor 0's positive, the first pair
    assert set(draws) == {1, 2, 3}
    assert all(abs(count / 3000 - 1 / 3) < 0.04 for count in draws.values())
    first = mine_pairs(labels, torch.Generator().manual_seed(7))
    again = mine_pairs(labels, torch.Generator().manual_seed(7))
    assert torch.equal(first.other_idx, again.other_idx)


@pytest.mark.parametrize("labels", [torch.zeros(0, dtype=torch.long), torch.zeros(2, 2),
                                    torch.tensor([0.0, 1.0])])
def test_miners_reject_bad_labels(labels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="labels"):
        mine_pairs(labels)


# --- LossConfig and the term registry ------------------------------------------------------


def loss_config(margin: float = 1.0, triplet_mining: str = "random",
                distance: str = "euclidean", pairs: str = "balanced",
                **weights: float) -> LossConfig:
    """The loss weights as keywords (anchor CE 1.0 unless given), as a LossConfig; the
    distance is the paper's Euclidean one unless given, so hand values read as 3-4-5."""
    return LossConfig(weights={"w_ce": 1.0, **weights}, margin=margin,
                      triplet_mining=triplet_mining, distance=distance, pairs=pairs)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("w_ce", 0.0, "> 0"),
        ("w_ce", -1.0, ">= 0"),
        ("w_ce_pair", -0.1, ">= 0"),
        ("w_contrastive", math.nan, "finite"),
        ("w_triplet", math.inf, "finite"),
        ("w_triplet", True, "number"),
        ("margin", 0.0, "> 0"),
        ("margin", "one", "number"),
        ("triplet_mining", "hardest", "random, semi_hard"),
        ("w_focal", 0.5, "w_ce, w_contrastive, w_triplet, w_ce_pair"),
    ],
)
def test_loss_config_validation_names_key_value_and_rule(key: str, value: object,
                                                         allowed: str) -> None:
    with pytest.raises(ConfigError) as error:
        loss_config(**{key: value})
    message = str(error.value)
    assert message.startswith(f"{key}={value!r}") and allowed in message


def test_loss_config_heads_are_those_of_its_active_terms() -> None:
    assert loss_config().heads == ("anchor",)
    assert loss_config(w_contrastive=0.3).heads == ("anchor", "metric")
    assert loss_config(w_triplet=0.3).heads == ("anchor", "metric")
    assert loss_config(w_ce_pair=0.3).heads == ("anchor", "pair")
    assert loss_config(w_ce_pair=0.3, w_triplet=0.1).heads == ("anchor", "pair", "metric")


@pytest.fixture
def toy_term():
    """A registered toy loss (mean squared metric embedding), removed again afterwards."""
    term = register_term(LossTerm("w_norm", ("metric",),
                                  lambda batch: batch.head("metric").pow(2).mean()))
    yield term
    del TERMS[term.weight_key]


def test_a_registered_term_gets_its_heads_its_weight_and_its_share(toy_term: LossTerm,
                                                                   tmp_path) -> None:
    """Adding a loss is one term: the model, the multitask sum, the bundle and the params
    parser all follow the registry."""
    from mgc.bundle import BundleInfo, load_bundle, save_bundle
    from mgc.pipeline.params import parse_params
    from mgc.pipeline.yaml12 import load_yaml12

    config = loss_config(w_norm=0.5)
    assert config.heads == ("anchor", "metric")
    model = GenreClassifier(6, 3, ClassifierConfig(hidden_layers=1), heads=config.heads)
    labels = torch.tensor([0, 1, 2, 0])
    output = model(torch.randn(4, 6))
    values = multitask_loss(output, labels, config)
    expected = (nn.functional.cross_entropy(output.logits, labels)
                + 0.5 * output.embedding.pow(2).mean())
    assert values.by_term.keys() == {"ce", "norm"}
    assert values.total.item() == pytest.approx(expected.item())

    save_bundle(model, BundleInfo(
        class_names=["a", "b", "c"], input_dim=6, classifier=model.config.to_dict(),
        kind=model.kind, heads=list(model.heads), extractor="mfcc", extractor_options={},
        clip_samples=100, train_set="synth_gtzan", protocol="paper"), tmp_path)
    assert load_bundle(tmp_path)[0].embedding is not None

    raw = load_yaml12((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    with pytest.raises(ConfigError, match=r"loss: missing key.*w_norm"):
        parse_params(raw)
    raw["loss"]["w_norm"] = 0.25
    assert parse_params(raw).loss.weight("w_norm") == 0.25


def test_semi_hard_mining_is_a_param_of_the_triplet_term() -> None:
    """`loss.triplet_mining: semi_hard` picks, per anchor, the closest negative beyond its
    positive; `random` (the authors') does not look at the embeddings."""
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: positive 1 at d=1; negatives 2 at d=0.5 (too close) and 3 at d=2 (semi-hard).
    embeddings = torch.tensor([[0.0], [1.0], [0.5], [2.0]])
    output = ClassifierOutput(torch.zeros(4, 2), None, embeddings)
    semi_hard = TermBatch(output, labels, loss_config(w_triplet=1.0, triplet_mining="semi_hard"),
                          torch.Generator().manual_seed(0)).triplets
    assert semi_hard.negative_idx[semi_hard.anchor_idx == 0].tolist() == [3]
    drawn = {int(TermBatch(output, labels, loss_config(w_triplet=1.0),
                           torch.Generator().manual_seed(seed)).triplets.negative_idx[0])
             for seed in range(20)}
    assert drawn == {2, 3}


def test_registering_a_bad_term_is_refused() -> None:
    with pytest.raises(ValueError, match="w_ce"):
        register_term(LossTerm("w_ce", ("anchor",), lambda batch: batch.head("anchor").sum()))
    with pytest.raises(ValueError, match="heads"):
        register_term(LossTerm("w_other", ("projection",), lambda batch: torch.zeros(())))


# --- multitask ---------------------------------------------------------------------------


def _three_and_one() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels 0,0,0,1 with class 0 on one point and class 1 five away: every random draw
    mines the same partner labels and distances. Pairs: anchors 0-2 get a class-0 positive
    (d=0) and sample 3 as negative (d=5); anchor 3 gets a class-0 negative. Triplets: anchors
    0-2, each (class-0 positive at d=0, sample 3 at d=5)."""
    labels = torch.tensor([0, 0, 0, 1])
    logits = torch.zeros(4, 2, requires_grad=True)
    pair_logits = torch.tensor([[math.log(3.0), 0.0]] * 4, requires_grad=True)
    embeddings = torch.tensor([ORIGIN, ORIGIN, ORIGIN, FAR], requires_grad=True)
    return labels, logits, pair_logits, embeddings


def multitask(logits: torch.Tensor, pair_logits: torch.Tensor | None,
              embeddings: torch.Tensor | None, labels: torch.Tensor, config: LossConfig,
              generator: torch.Generator | None = None) -> LossValues:
    return multitask_loss(ClassifierOutput(logits, pair_logits, embeddings), labels, config,
                          generator)


CE_CLASS_0 = math.log(4 / 3)  # pair logits (ln 3, 0): p(0) = 3/4
CE_CLASS_1 = math.log(4)  # p(1) = 1/4


@pytest.mark.parametrize(("w_contrastive", "w_triplet", "ce_pair"), [
    (0.0, 0.0, (4 * CE_CLASS_0 + 3 * CE_CLASS_1) / 7),  # pair partners: 3+1 class 0, 3 class 1
    (0.3, 0.0, (4 * CE_CLASS_0 + 3 * CE_CLASS_1) / 7),
    (0.0, 0.1, (3 * CE_CLASS_0 + 3 * CE_CLASS_1) / 6),  # triplet positives and negatives
    (0.3, 0.1, (7 * CE_CLASS_0 + 6 * CE_CLASS_1) / 13),  # both
])
def test_multitask_terms_match_hand_computation(w_contrastive: float, w_triplet: float,
                                                ce_pair: float) -> None:
    labels, logits, pair_logits, embeddings = _three_and_one()
    weights = loss_config(w_ce=0.7, w_ce_pair=0.2, w_contrastive=w_contrastive,
                          w_triplet=w_triplet, margin=6.0)
    terms = multitask(logits, pair_logits, embeddings, labels, weights,
                           torch.Generator().manual_seed(0))
    ce = math.log(2)  # uniform logits over 2 classes
    contrastive = (3 * 0**2 + 4 * (6 - 5) ** 2) / 7  # 3 positive pairs, 4 negative pairs
    triplet = max(0, 0 - 5 + 6)
    assert terms.by_term.get("ce") == pytest.approx(ce)
    assert terms.by_term.get("ce_pair") == pytest.approx(ce_pair)
    expected = 0.7 * ce + 0.2 * ce_pair
    if w_contrastive:
        assert terms.by_term.get("contrastive") == pytest.approx(contrastive)
        expected += w_contrastive * contrastive
    if w_triplet:
        assert terms.by_term.get("triplet") == pytest.approx(triplet)
        expected += w_triplet * triplet
    assert terms.total.item() == pytest.approx(expected, rel=1e-6)
    terms.total.backward()
    for tensor in (logits, pair_logits) + ((embeddings,) if w_contrastive or w_triplet else ()):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()


@settings(max_examples=30, deadline=None)
@given(labels=st.lists(st.integers(min_value=0, max_value=3), min_size=2, max_size=20),
       seed=st.integers(min_value=0, max_value=2**31),
       w=st.tuples(*[st.sampled_from([0.0, 0.25, 1.0])] * 3))
def test_multitask_total_is_the_weighted_sum_of_its_terms(
        labels: list[int], seed: int, w: tuple[float, float, float]) -> None:
    generator = torch.Generator().manual_seed(seed)
    batch = len(labels)
    logits, pair_logits = torch.randn(2, batch, 4, generator=generator)
    embeddings = torch.randn(batch, 3, generator=generator)
    weights = loss_config(w_ce=0.5, w_ce_pair=w[0], w_contrastive=w[1], w_triplet=w[2])
    terms = multitask(logits, pair_logits, embeddings, torch.tensor(labels), weights,
                           generator)
    parts = [(weights.weight(f"w_{name}"), terms.by_term.get(name))
             for name in ("ce", "ce_pair", "contrastive", "triplet")]
    assert all((value is None) == (weight == 0) for weight, value in parts)
    assert all(value is None or math.isfinite(value) for _, value in parts)
    expected = sum(weight * value for weight, value in parts if value is not None)
    assert terms.total.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_pair_ce_labels_are_those_of_the_partner_samples() -> None:
    labels = torch.tensor([2, 0, 1, 1, 0, 2, 2, 1])
    perfect = 30.0 * nn.functional.one_hot(labels, 3).float()
    weights = loss_config(w_ce_pair=1.0, w_contrastive=1.0, w_triplet=1.0)
    terms = multitask(torch.zeros(8, 3), perfect, torch.randn(8, 4), labels, weights,
                           torch.Generator().manual_seed(0))
    assert terms.by_term.get("ce_pair") is not None and terms.by_term.get("ce_pair") < 1e-9


def test_zero_weight_terms_leave_gradients_untouched() -> None:
    labels, logits, pair_logits, embeddings = _three_and_one()
    terms = multitask(logits, pair_logits, embeddings, labels,
                           loss_config(w_ce=0.7, margin=6.0), torch.Generator().manual_seed(0))
    terms.total.backward()
    assert terms.by_term.keys() == {"ce"}
    assert pair_logits.grad is None and embeddings.grad is None
    plain = logits.detach().clone().requires_grad_(True)
    (0.7 * nn.functional.cross_entropy(plain, labels)).backward()
    torch.testing.assert_close(logits.grad, plain.grad)


def test_heads_may_be_missing_when_their_weight_is_zero() -> None:
    labels = torch.tensor([0, 1, 1])
    terms = multitask(torch.randn(3, 2), None, None, labels, loss_config())
    assert terms.total.item() == pytest.approx(terms.by_term.get("ce"))


@pytest.mark.parametrize(("weights", "key"), [
    (loss_config(w_contrastive=0.3), "w_contrastive=0.3"),
    (loss_config(w_triplet=0.5), "w_triplet=0.5"),
    (loss_config(w_ce_pair=0.2), "w_ce_pair=0.2"),
])
def test_a_missing_head_is_named_by_its_weight(weights: LossConfig, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        multitask(torch.randn(4, 2), None, None, torch.tensor([0, 0, 1, 1]), weights)


def test_single_class_batch_multitask_is_finite_and_backpropagates() -> None:
    labels = torch.zeros(6, dtype=torch.long)
    logits = torch.randn(6, 3, requires_grad=True)
    pair_logits = torch.randn(6, 3, requires_grad=True)
    embeddings = torch.randn(6, 4, requires_grad=True)
    weights = loss_config(w_ce_pair=0.5, w_contrastive=0.5, w_triplet=0.5)
    terms = multitask(logits, pair_logits, embeddings, labels, weights,
                           torch.Generator().manual_seed(0))
    assert terms.by_term.get("triplet") == 0.0  # no triplets in one class
    assert math.isfinite(terms.total.item())
    terms.total.backward()
    for tensor in (logits, pair_logits, embeddings):
        assert torch.isfinite(tensor.grad).all()


# --- distances, pair modes and active margins ---------------------------------------------


def test_metric_space_scales_each_distance_as_documented() -> None:
    zeros, ones = torch.zeros(1, 128), torch.ones(1, 128)
    # rms: per dimension, so two embeddings 1 apart in every coordinate are 1 apart at any dim
    assert float(torch.dist(*(metric_space(t, "rms") for t in (zeros, ones)))) == (
        pytest.approx(1.0))
    assert float(torch.dist(*(metric_space(t, "euclidean") for t in (zeros, ones)))) == (
        pytest.approx(math.sqrt(128)))
    # cosine: unit rows; orthogonal vectors are sqrt(2) apart, opposite ones 2
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 5.0]])
    assert float(torch.dist(metric_space(a, "cosine"), metric_space(b, "cosine"))) == (
        pytest.approx(math.sqrt(2)))
    assert float(torch.dist(metric_space(a, "cosine"), metric_space(-a, "cosine"))) == (
        pytest.approx(2.0))
    with pytest.raises(ConfigError, match="distance"):
        metric_space(a, "manhattan")


@pytest.mark.parametrize(("distance", "apart"), [
    ("euclidean", 5.0),           # ORIGIN to FAR
    ("rms", 5.0 / math.sqrt(2)),  # divided by sqrt(dim = 2)
    ("cosine", 1.0),              # the zero vector stays 0, FAR becomes a unit vector
])
def test_multitask_metric_terms_use_the_configured_distance(distance: str,
                                                            apart: float) -> None:
    labels, logits, pair_logits, embeddings = _three_and_one()
    config = loss_config(w_contrastive=0.3, w_triplet=0.1, margin=6.0, distance=distance)
    terms = multitask(logits, pair_logits, embeddings, labels, config,
                      torch.Generator().manual_seed(0))
    # 3 positive pairs at distance 0, 4 negative pairs `apart`; 3 triplets (0, apart)
    assert terms.by_term["contrastive"] == pytest.approx(4 * (6 - apart) ** 2 / 7)
    assert terms.by_term["triplet"] == pytest.approx(0 - apart + 6)
    assert terms.active == {"contrastive": 1.0, "triplet": 1.0}


def test_active_fraction_counts_only_margins_that_still_act() -> None:
    labels, logits, pair_logits, embeddings = _three_and_one()
    # margin 4 < distance 5: no negative pair is inside it and every triplet is satisfied
    terms = multitask(logits, pair_logits, embeddings, labels,
                      loss_config(w_contrastive=0.3, w_triplet=0.1, margin=4.0),
                      torch.Generator().manual_seed(0))
    assert terms.active == {"contrastive": 0.0, "triplet": 0.0}
    assert terms.by_term["contrastive"] == pytest.approx(0.0)
    # every sample on one point: each negative pair is inside any margin
    close = torch.zeros(4, 2, requires_grad=True)
    terms = multitask(logits, pair_logits, close, labels,
                      loss_config(w_contrastive=0.3, margin=4.0),
                      torch.Generator().manual_seed(0))
    assert terms.active == {"contrastive": 1.0}


def test_all_pairs_lists_every_pair_once() -> None:
    pairs = all_pairs(torch.tensor([0, 0, 1, 1, 2]))
    listed = sorted(zip(pairs.anchor_idx.tolist(), pairs.other_idx.tolist(), strict=True))
    assert listed == [(i, j) for i in range(5) for j in range(i + 1, 5)]  # 10 = 5*4/2
    assert pairs.same.tolist() == [a // 2 == b // 2 and max(a, b) < 4
                                   for a, b in zip(pairs.anchor_idx.tolist(),
                                                   pairs.other_idx.tolist(), strict=True)]
    assert int(pairs.same.sum()) == 2  # (0,1) and (2,3)


def test_multitask_with_all_pairs_matches_hand_computation() -> None:
    labels, logits, pair_logits, embeddings = _three_and_one()
    terms = multitask(logits, pair_logits, embeddings, labels,
                      loss_config(w_contrastive=0.3, margin=6.0, pairs="all"))
    # pairs (0,1) (0,2) (1,2) positive at d=0; (0,3) (1,3) (2,3) negative at d=5
    assert terms.by_term["contrastive"] == pytest.approx(3 * (6 - 5) ** 2 / 6)


def test_semi_hard_negatives_are_chosen_in_the_configured_space() -> None:
    # anchor (1, 0), positive (2, 0.2); negatives (0, 1.2): near in Euclidean space but at
    # 90 degrees, and (10, 3): far away but at a small angle. Semi-hard = the closest
    # negative farther than the positive, which differs between the two spaces.
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.2], [0.0, 1.2], [10.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 1])
    for distance, expected in (("euclidean", 2), ("cosine", 3)):
        triplets = mine_triplets(labels, metric_space(embeddings, distance),
                                 torch.Generator().manual_seed(0))
        assert int(triplets.negative_idx[triplets.anchor_idx == 0]) == expected


@pytest.mark.parametrize(("key", "value"), [("distance", "manhattan"), ("pairs", "some")])
def test_loss_config_refuses_unknown_distance_or_pair_mode(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{key}.*allowed values"):
        LossConfig(**{key: value})
