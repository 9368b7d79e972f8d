"""Cross-entropy, contrastive and triplet losses, their in-batch miners and their weighted sum.

The paper's multitask heads (Table 2) are one configuration, `LossWeights`: CE on the anchor,
CE on the other sample(s) of each pair or triplet, a contrastive and a triplet loss on the
embedding head. Pairs and triplets are mined inside each batch from that batch's own labels
and returned as indices into it, so every term's labels are the labels of the samples it acts
on (the authors' code took CE labels as `train_labels[:len(batch)]`, misaligned with its
pairs), and nothing of size O(n^2) in the dataset is ever built: only a (B, B) mask per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import torch
from torch import nn

_WEIGHT_KEYS = ("w_ce", "w_ce_pair", "w_contrastive", "w_triplet")


@dataclass(frozen=True)
class LossWeights:
    """One loss configuration: a head per non-zero weight.

    `w_ce` is CE on the anchor, `w_ce_pair` CE on the other samples of each pair/triplet,
    `w_contrastive` and `w_triplet` the metric losses on the embedding head, `margin` their
    margin. `w_ce` must be > 0 because predictions come from the anchor head: a model trained
    without it would predict from an untrained layer.
    """

    w_ce: float = 1.0
    w_ce_pair: float = 0.0
    w_contrastive: float = 0.0
    w_triplet: float = 0.0
    margin: float = 1.0

    def __post_init__(self) -> None:
        for key in (*_WEIGHT_KEYS, "margin"):
            value = getattr(self, key)
            if (isinstance(value, bool) or not isinstance(value, Real)
                    or not math.isfinite(value) or value < 0):
                raise ValueError(f"loss.{key}={value!r}: must be a finite number >= 0")
        if self.w_ce <= 0:
            raise ValueError(f"loss.w_ce={self.w_ce!r}: must be > 0, since predictions come "
                             "from the anchor cross-entropy head")
        if self.margin <= 0:
            raise ValueError(f"loss.margin={self.margin!r}: must be a finite number > 0")

    @property
    def uses_metric_loss(self) -> bool:
        """Whether the model needs its embedding head."""
        return self.w_contrastive > 0 or self.w_triplet > 0

    @property
    def uses_pair_ce(self) -> bool:
        """Whether the model needs its second CE head (the non-anchor role)."""
        return self.w_ce_pair > 0


def _check_rows(name: str, tensor: torch.Tensor, rows: int) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} is a {type(tensor).__name__}: expected a torch.Tensor")
    if tensor.ndim != 2 or len(tensor) != rows:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}: expected ({rows}, features)")


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


@dataclass
class LossTerms:
    """The total to back-propagate, and each term's unweighted value for logging.

    total = w_ce*ce + w_ce_pair*ce_pair + w_contrastive*contrastive + w_triplet*triplet; a
    term whose weight is zero is not computed and is None here.
    """

    total: torch.Tensor
    ce: float
    ce_pair: float | None = None
    contrastive: float | None = None
    triplet: float | None = None


def _require(head: torch.Tensor | None, key: str, value: float, what: str,
             rows: int) -> torch.Tensor:
    if head is None:
        raise ValueError(f"loss.{key}={value!r} needs the model's {what}, which was None")
    _check_rows(what, head, rows)
    return head


def multitask_loss(logits: torch.Tensor, pair_logits: torch.Tensor | None,
                   embeddings: torch.Tensor | None, labels: torch.Tensor,
                   weights: LossWeights, generator: torch.Generator | None = None) -> LossTerms:
    """w_ce*CE(anchor) + w_ce_pair*CE(partners) + w_contrastive*contrastive + w_triplet*triplet.

    Every sample of the batch is an anchor: `logits` is the anchor head on all B samples.
    Pairs are mined for the contrastive loss, triplets (random negatives) for the triplet
    loss; `pair_logits`, the second CE head evaluated on all B samples, is scored on the
    partners those yield (the other sample of each pair; both positive and negative of each
    triplet, the paper's 4-head setup), or on pairs mined for it alone when no metric loss is
    on. Zero-weight terms are not computed, and their heads may be None.
    """
    _check_labels(labels)
    _check_rows("logits", logits, len(labels))
    ce = nn.functional.cross_entropy(logits, labels)
    total = weights.w_ce * ce
    terms = LossTerms(total=total, ce=float(ce.detach()))
    partners: list[torch.Tensor] = []
    if weights.w_contrastive > 0 or (weights.uses_pair_ce and weights.w_triplet == 0):
        pairs = mine_pairs(labels, generator)
        partners.append(pairs.other_idx)
        if weights.w_contrastive > 0:
            embedded = _require(embeddings, "w_contrastive", weights.w_contrastive,
                                "embeddings", len(labels))
            contrastive = contrastive_loss(embedded[pairs.anchor_idx], embedded[pairs.other_idx],
                                           pairs.same, weights.margin)
            total = total + weights.w_contrastive * contrastive
            terms.contrastive = float(contrastive.detach())
    if weights.w_triplet > 0:
        embedded = _require(embeddings, "w_triplet", weights.w_triplet, "embeddings",
                            len(labels))
        triplets = mine_triplets(labels, generator=generator)
        partners.extend([triplets.positive_idx, triplets.negative_idx])
        triplet = triplet_loss(embedded[triplets.anchor_idx], embedded[triplets.positive_idx],
                               embedded[triplets.negative_idx], weights.margin)
        total = total + weights.w_triplet * triplet
        terms.triplet = float(triplet.detach())
    if weights.uses_pair_ce:
        second = _require(pair_logits, "w_ce_pair", weights.w_ce_pair, "pair_logits",
                          len(labels))
        index = torch.cat(partners)
        ce_pair = (nn.functional.cross_entropy(second[index], labels[index]) if len(index)
                   else second[index].sum())
        total = total + weights.w_ce_pair * ce_pair
        terms.ce_pair = float(ce_pair.detach())
    terms.total = total
    return terms
