"""Cross-entropy, contrastive and triplet losses, their in-batch miners and their weighted sum.

Each loss is a registered `LossTerm` (weight key, the heads it reads, its function), and the
paper's multitask heads (Table 2) are one `LossConfig`: a weight per term, CE on the anchor,
CE on the other sample(s) of each pair or triplet, a contrastive and a triplet loss on the
embedding head. The params keys, the model's heads, the bundle and the experiment reports all
read `TERMS`, so adding a loss is one `register_term` call.

Pairs and triplets are mined inside each batch from that batch's own labels and returned as
indices into it, so every term's labels are the labels of the samples it acts on (the
authors' code took CE labels as `train_labels[:len(batch)]`, misaligned with its pairs), and
nothing of size O(n^2) in the dataset is ever built: only a (B, B) mask per batch.

Distances are Euclidean in a metric space chosen by `LossConfig.distance` (`metric_space`):
`rms` divides the embedding by sqrt(dim), so a margin of 1 means the same at any embedding
width; `euclidean` is the paper's formula on the raw embedding, where two samples of a 128-d
head start about 6.5 apart and almost no negative pair ever falls inside a margin of 1 (the
loss is then all same-class pull and shrinks the embedding); `cosine` L2-normalises it
(distances in [0, 2]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real

import torch
from torch import nn

from mgc.config import invalid
from mgc.model import HEADS, ClassifierOutput


def _check_rows(name: str, tensor: torch.Tensor, rows: int) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} is a {type(tensor).__name__}: expected a torch.Tensor")
    if tensor.ndim != 2 or len(tensor) != rows:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}: expected ({rows}, features)")


DISTANCES = ("rms", "euclidean", "cosine")
PAIRS = ("balanced", "all")


def metric_space(embeddings: torch.Tensor, distance: str) -> torch.Tensor:
    """The embeddings mapped so that the Euclidean distance between rows is `distance`.

    `rms`: divided by sqrt(dim), so the distance is the root-mean-square difference per
    dimension; `euclidean`: unchanged; `cosine`: L2-normalised rows, whose distance
    sqrt(2 - 2 cos) is a monotone function of the cosine similarity.
    """
    if distance == "rms":
        return embeddings / math.sqrt(embeddings.shape[1])
    if distance == "cosine":
        return nn.functional.normalize(embeddings, dim=1)
    if distance == "euclidean":
        return embeddings
    raise invalid("distance", distance, f"allowed values are {', '.join(DISTANCES)}")


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per row, exact, with a zero (not NaN) gradient at zero distance.

    The gradient of sqrt is infinite at 0; evaluating sqrt only where the squared distance is
    positive keeps both the value and the backward pass finite.
    """
    squared = (a - b).pow(2).sum(dim=1)
    positive = squared > 0
    return torch.where(positive, torch.where(positive, squared, 1.0).sqrt(), 0.0)


def contrastive_loss(emb_a: torch.Tensor, emb_b: torch.Tensor, same: torch.Tensor,
                     margin: float) -> torch.Tensor:
    """Hadsell et al. (2006): mean over pairs of y*d^2 + (1-y)*max(0, m-d)^2.

    `same` (bool, one per pair) is y. With no pairs the loss is a zero that is still part of
    the graph, so a batch that yielded none can be back-propagated like any other.
    """
    _check_rows("emb_a", emb_a, len(emb_a))
    if emb_b.shape != emb_a.shape or same.shape != (len(emb_a),) or same.dtype != torch.bool:
        raise ValueError(f"contrastive_loss: emb_b {tuple(emb_b.shape)} must match emb_a "
                         f"{tuple(emb_a.shape)} and same ({tuple(same.shape)}, {same.dtype}) "
                         "must be one bool per pair")
    if len(emb_a) == 0:
        return emb_a.sum()
    squared = (emb_a - emb_b).pow(2).sum(dim=1)
    apart = torch.clamp(margin - _distance(emb_a, emb_b), min=0).pow(2)
    return torch.where(same, squared, apart).mean()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """Mean over triplets of max(0, d(a,p) - d(a,n) + m); a graph-attached zero if none."""
    _check_rows("anchor", anchor, len(anchor))
    if positive.shape != anchor.shape or negative.shape != anchor.shape:
        raise ValueError(f"triplet_loss: positive {tuple(positive.shape)} and negative "
                         f"{tuple(negative.shape)} must match anchor {tuple(anchor.shape)}")
    if len(anchor) == 0:
        return anchor.sum()
    return torch.clamp(_distance(anchor, positive) - _distance(anchor, negative) + margin,
                       min=0).mean()


@dataclass(frozen=True)
class PairBatch:
    """Pairs as indices into the batch; `same[i]` says whether pair i shares a label."""

    anchor_idx: torch.Tensor
    other_idx: torch.Tensor
    same: torch.Tensor


@dataclass(frozen=True)
class TripletBatch:
    """Triplets as indices into the batch: the positive shares the anchor's label."""

    anchor_idx: torch.Tensor
    positive_idx: torch.Tensor
    negative_idx: torch.Tensor


def _check_labels(labels: torch.Tensor) -> None:
    if (not isinstance(labels, torch.Tensor) or labels.ndim != 1 or len(labels) == 0
            or labels.dtype.is_floating_point or labels.dtype == torch.bool):
        found = (f"a {labels.dtype} tensor of shape {tuple(labels.shape)}"
                 if isinstance(labels, torch.Tensor) else f"a {type(labels).__name__}")
        raise ValueError(f"labels is {found}: expected a non-empty 1-d integer tensor")


def _partner_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, B) masks of the allowed positive partners (same label, not itself) and negatives."""
    _check_labels(labels)
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & not_self, ~same


def _random_partner(mask: torch.Tensor, generator: torch.Generator | None) -> tuple[
        torch.Tensor, torch.Tensor]:
    """For each row of a (B, B) mask, one column drawn uniformly among its True ones, and
    whether the row has any (rows without one get an arbitrary column to ignore)."""
    device = generator.device if generator is not None else mask.device
    scores = torch.rand(mask.shape, generator=generator, device=device).to(mask.device)
    return torch.where(mask, scores, -1.0).argmax(dim=1), mask.any(dim=1)


def mine_pairs(labels: torch.Tensor, generator: torch.Generator | None = None) -> PairBatch:
    """Per anchor, one random positive and one random negative partner, where the batch has one.

    Balanced: when every label in the batch has a second member and there are two labels or
    more, there are exactly B positive and B negative pairs. A single-class batch yields only
    positives; a label seen once yields no positive for that anchor.
    """
    positive_mask, negative_mask = _partner_masks(labels)
    positive, has_positive = _random_partner(positive_mask, generator)
    negative, has_negative = _random_partner(negative_mask, generator)
    anchors = torch.arange(len(labels), device=labels.device)
    return PairBatch(
        anchor_idx=torch.cat([anchors[has_positive], anchors[has_negative]]),
        other_idx=torch.cat([positive[has_positive], negative[has_negative]]),
        same=torch.cat([torch.ones_like(anchors[has_positive], dtype=torch.bool),
                        torch.zeros_like(anchors[has_negative], dtype=torch.bool)]),
    )


def all_pairs(labels: torch.Tensor) -> PairBatch:
    """Every in-batch pair i < j once, as the authors' code formed pairs (over the whole
    training set there; here inside each batch). With C balanced classes about 1/C of them
    are positive."""
    _check_labels(labels)
    first, second = torch.triu_indices(len(labels), len(labels), offset=1,
                                       device=labels.device)
    return PairBatch(anchor_idx=first, other_idx=second, same=labels[first] == labels[second])


def _semi_hard_negative(embeddings: torch.Tensor, positive: torch.Tensor,
                        negative_mask: torch.Tensor) -> torch.Tensor:
    """Per anchor, the closest negative that is farther away than its positive; where none is,
    the farthest negative (the rule of FaceNet / TensorFlow Addons' `triplet_semihard_loss`,
    which avoids the collapse that the hardest negatives cause early in training)."""
    with torch.no_grad():
        distances = torch.cdist(embeddings, embeddings,
                                compute_mode="donot_use_mm_for_euclid_dist")
        to_positive = distances.gather(1, positive[:, None])
        semi_hard = negative_mask & (distances > to_positive)
        closest_semi_hard = torch.where(semi_hard, distances, math.inf).argmin(dim=1)
        farthest = torch.where(negative_mask, distances, -1.0).argmax(dim=1)
        return torch.where(semi_hard.any(dim=1), closest_semi_hard, farthest)


def mine_triplets(labels: torch.Tensor, embeddings: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> TripletBatch:
    """One triplet for every anchor that has both a positive and a negative in the batch.

    The positive is drawn at random. So is the negative when `embeddings` is None, as in the
    authors' code (and as `multitask_loss` does); given the batch's embeddings, the negative
    is semi-hard instead (see `_semi_hard_negative`).
    """
    positive_mask, negative_mask = _partner_masks(labels)
    positive, has_positive = _random_partner(positive_mask, generator)
    if embeddings is None:
        negative, has_negative = _random_partner(negative_mask, generator)
    else:
        _check_rows("embeddings", embeddings, len(labels))
        negative, has_negative = (_semi_hard_negative(embeddings, positive, negative_mask),
                                  negative_mask.any(dim=1))
    valid = has_positive & has_negative
    anchors = torch.arange(len(labels), device=labels.device)
    return TripletBatch(anchors[valid], positive[valid], negative[valid])


class TermBatch:
    """One training batch as the loss terms see it.

    Pairs and triplets are mined on first use and shared by every term that asks, and each
    mining records its partner samples, so CE on partners scores exactly the samples the
    metric terms used (both positive and negative of a triplet: the paper's 4-head setup).
    """

    def __init__(self, output: ClassifierOutput, labels: torch.Tensor, config: LossConfig,
                 generator: torch.Generator | None) -> None:
        _check_labels(labels)
        self.output, self.labels, self.config, self.generator = output, labels, config, generator
        self.partners: list[torch.Tensor] = []
        self._metric: torch.Tensor | None = None
        self._pairs: PairBatch | None = None
        self._triplets: TripletBatch | None = None

    def output_of(self, name: str) -> torch.Tensor | None:
        """The model's output for head `name` (one of `mgc.model.HEADS`), None if absent."""
        return {"anchor": self.output.logits, "pair": self.output.pair_logits,
                "metric": self.output.embedding}[name]

    def head(self, name: str) -> torch.Tensor:
        """The model's output for head `name` on the whole batch, shape-checked."""
        tensor = self.output_of(name)
        if tensor is None:
            raise ValueError(f"a loss term needs the model's {name!r} head, which it was built "
                             "without")
        _check_rows(f"{name} head", tensor, len(self.labels))
        return tensor

    @property
    def metric(self) -> torch.Tensor:
        """The metric head's output in the space of `config.distance` (see `metric_space`)."""
        if self._metric is None:
            self._metric = metric_space(self.head("metric"), self.config.distance)
        return self._metric

    @property
    def pairs(self) -> PairBatch:
        if self._pairs is None:
            self._pairs = (all_pairs(self.labels) if self.config.pairs == "all"
                           else mine_pairs(self.labels, self.generator))
            self.partners.append(self._pairs.other_idx)
        return self._pairs

    @property
    def triplets(self) -> TripletBatch:
        if self._triplets is None:
            embeddings = self.metric if self.config.triplet_mining == "semi_hard" else None
            self._triplets = mine_triplets(self.labels, embeddings, self.generator)
            self.partners += [self._triplets.positive_idx, self._triplets.negative_idx]
        return self._triplets


@dataclass(frozen=True)
class LossTerm:
    """One term of the multitask loss, and everything the rest of the code needs to know of it.

    `weight_key` is its weight's name under `loss` in params (`w_<name>`); `heads` are the
    model heads it reads (built only when its weight is > 0; see `mgc.model.HEADS`);
    `compute` gives its unweighted value on a batch. `metric` marks metric-learning terms,
    whose share of the total weight is the paper's alpha; `partner_roles` is how many
    partner samples each anchor gets from its mining (pairs 1, triplets 2), which is how
    many CE heads the paper counts for CE on partners. `active`, for a hinge loss, gives
    the fraction of its margins that are active (a non-zero hinge) on a batch: logged per
    epoch, it shows a loss that has stopped acting (0) or only pulls one way.
    """

    weight_key: str
    heads: tuple[str, ...]
    compute: Callable[[TermBatch], torch.Tensor]
    metric: bool = False
    partner_roles: int = 0
    active: Callable[[TermBatch], float] | None = None

    @property
    def name(self) -> str:
        return self.weight_key.removeprefix("w_")


TERMS: dict[str, LossTerm] = {}
"""Every loss term by weight key, in the order they are summed (which fixes the order in
which they draw from the batch's random generator)."""

ANCHOR_TERM = "w_ce"
TRIPLET_MINING = ("random", "semi_hard")


def register_term(term: LossTerm) -> LossTerm:
    """Add a loss term: from then on it has a params weight, its heads and a place in the sum."""
    if not term.weight_key.startswith("w_") or term.weight_key in TERMS:
        raise ValueError(f"loss term {term.weight_key!r}: the weight key must start with 'w_' "
                         "and be new")
    if not term.heads or set(term.heads) - set(HEADS):
        raise ValueError(f"loss term {term.weight_key!r}: heads {term.heads} must come from "
                         f"{', '.join(HEADS)}")
    TERMS[term.weight_key] = term
    return term


def _partner_ce(batch: TermBatch) -> torch.Tensor:
    index = torch.cat(batch.partners) if batch.partners else batch.pairs.other_idx
    second = batch.head("pair")
    if not len(index):
        return second[index].sum()
    return nn.functional.cross_entropy(second[index], batch.labels[index])


def _contrastive(batch: TermBatch) -> torch.Tensor:
    pairs, embedded = batch.pairs, batch.metric
    return contrastive_loss(embedded[pairs.anchor_idx], embedded[pairs.other_idx], pairs.same,
                            batch.config.margin)


def _contrastive_active(batch: TermBatch) -> float:
    """The fraction of negative pairs inside the margin: the only ones that push apart."""
    pairs, embedded = batch.pairs, batch.metric.detach()
    negative = ~pairs.same
    if not negative.any():
        return 0.0
    apart = _distance(embedded[pairs.anchor_idx[negative]], embedded[pairs.other_idx[negative]])
    return float((apart < batch.config.margin).float().mean())


def _triplet_hinge(batch: TermBatch) -> torch.Tensor:
    triplets, embedded = batch.triplets, batch.metric
    return (_distance(embedded[triplets.anchor_idx], embedded[triplets.positive_idx])
            - _distance(embedded[triplets.anchor_idx], embedded[triplets.negative_idx])
            + batch.config.margin)


def _triplet(batch: TermBatch) -> torch.Tensor:
    triplets, embedded = batch.triplets, batch.metric
    return triplet_loss(embedded[triplets.anchor_idx], embedded[triplets.positive_idx],
                        embedded[triplets.negative_idx], batch.config.margin)


def _triplet_active(batch: TermBatch) -> float:
    """The fraction of triplets whose hinge is non-zero (the negative not yet a margin
    farther than the positive)."""
    with torch.no_grad():
        hinge = _triplet_hinge(batch)
    return float((hinge > 0).float().mean()) if len(hinge) else 0.0


register_term(LossTerm(ANCHOR_TERM, ("anchor",),
                       lambda batch: nn.functional.cross_entropy(batch.head("anchor"),
                                                                 batch.labels)))
register_term(LossTerm("w_contrastive", ("metric",), _contrastive, metric=True, partner_roles=1,
                       active=_contrastive_active))
register_term(LossTerm("w_triplet", ("metric",), _triplet, metric=True, partner_roles=2,
                       active=_triplet_active))
register_term(LossTerm("w_ce_pair", ("pair",), _partner_ce))


@dataclass(frozen=True)
class LossConfig:
    """One loss configuration: a weight per registered term (a term with weight 0 is off and
    its heads are not built), the metric losses' margin, distance and mining.

    The anchor CE weight must be > 0 because predictions come from the anchor head: a model
    trained without it would predict from an untrained layer. `distance` is the metric
    space of the contrastive and triplet losses (`metric_space`; `euclidean` is the paper's
    formula as written); `pairs` is `balanced` (one positive and one negative partner per
    anchor) or `all` (every in-batch pair, as the authors); `triplet_mining` is `random`
    (as in the authors' code) or `semi_hard` (FaceNet's rule, see `mine_triplets`).
    """

    weights: Mapping[str, float] = field(default_factory=lambda: {ANCHOR_TERM: 1.0})
    margin: float = 1.0
    distance: str = "rms"
    pairs: str = "balanced"
    triplet_mining: str = "random"

    def __post_init__(self) -> None:
        for key, value in self.weights.items():
            if key not in TERMS:
                raise invalid(key, value, f"not a loss term; terms: {', '.join(TERMS)}")
            if (isinstance(value, bool) or not isinstance(value, Real)
                    or not math.isfinite(value) or value < 0):
                raise invalid(key, value, "must be a finite number >= 0")
        if self.weight(ANCHOR_TERM) <= 0:
            raise invalid(ANCHOR_TERM, self.weight(ANCHOR_TERM),
                          "must be > 0, since predictions come from the anchor head")
        if (isinstance(self.margin, bool) or not isinstance(self.margin, Real)
                or not 0 < self.margin < math.inf):
            raise invalid("margin", self.margin, "must be a finite number > 0")
        for key, allowed in (("distance", DISTANCES), ("pairs", PAIRS),
                             ("triplet_mining", TRIPLET_MINING)):
            if getattr(self, key) not in allowed:
                raise invalid(key, getattr(self, key), f"allowed values are {', '.join(allowed)}")

    def weight(self, key: str) -> float:
        return float(self.weights.get(key, 0.0))

    @property
    def active_terms(self) -> tuple[LossTerm, ...]:
        return tuple(term for key, term in TERMS.items() if self.weight(key) > 0)

    @property
    def heads(self) -> tuple[str, ...]:
        """The model heads this configuration trains, in `mgc.model.HEADS` order."""
        needed = {head for term in self.active_terms for head in term.heads}
        return tuple(head for head in HEADS if head in needed)


@dataclass
class LossValues:
    """The total to back-propagate, each active term's unweighted value and, for hinge
    terms, the fraction of active margins (`LossTerm.active`), for logging."""

    total: torch.Tensor
    by_term: dict[str, float]
    active: dict[str, float] = field(default_factory=dict)


def multitask_loss(output: ClassifierOutput, labels: torch.Tensor, config: LossConfig,
                   generator: torch.Generator | None = None) -> LossValues:
    """The weighted sum of every active term of `config` on one batch.

    Every sample of the batch is an anchor: each head is evaluated on all B samples, and the
    terms score the samples (anchors, pairs, triplets, partners) that `TermBatch` mines.
    """
    batch = TermBatch(output, labels, config, generator)
    for term in config.active_terms:
        for head in term.heads:
            if batch.output_of(head) is None:
                raise ValueError(f"{term.weight_key}={config.weight(term.weight_key)!r} needs "
                                 f"the model's {head!r} head, which it was built without")
    total: torch.Tensor | None = None
    values: dict[str, float] = {}
    active: dict[str, float] = {}
    for term in config.active_terms:
        value = term.compute(batch)
        weighted = config.weight(term.weight_key) * value
        total = weighted if total is None else total + weighted
        values[term.name] = float(value.detach())
        if term.active is not None:
            active[term.name] = term.active(batch)
    assert total is not None  # the anchor term is always active
    return LossValues(total=total, by_term=values, active=active)
