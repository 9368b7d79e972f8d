"""Cross-entropy, contrastive and triplet losses, and their weighted multitask sum.

Pairs and triplets are mined inside each batch from that batch's own labels, by index, so
every term's labels are the labels of the samples it acts on (the authors' code took CE
labels as `train_labels[:len(batch)]`, misaligned with its pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

_EPS = 1e-12


@dataclass(frozen=True)
class LossWeights:
    """One loss configuration: a head per non-zero weight.

    `w_ce` is CE on the anchor (the head predictions come from, so it must be > 0),
    `w_ce_pair` CE on the other samples of each pair/triplet, `w_contrastive` and
    `w_triplet` the metric losses on the embedding head, `margin` their margin.
    """

    w_ce: float = 1.0
    w_ce_pair: float = 0.0
    w_contrastive: float = 0.0
    w_triplet: float = 0.0
    margin: float = 1.0

    def __post_init__(self) -> None:
        for key in ("w_ce", "w_ce_pair", "w_contrastive", "w_triplet", "margin"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                    value) or value < 0:
                raise ValueError(f"loss.{key}={value!r}: must be a finite number >= 0")
        if self.w_ce <= 0:
            raise ValueError(f"loss.w_ce={self.w_ce!r}: must be > 0, since predictions come "
                             "from the anchor cross-entropy head")
        if self.margin <= 0:
            raise ValueError(f"loss.margin={self.margin!r}: must be > 0")

    @property
    def uses_metric_loss(self) -> bool:
        return self.w_contrastive > 0 or self.w_triplet > 0

    @property
    def uses_pair_ce(self) -> bool:
        return self.w_ce_pair > 0


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per row, with a gradient that stays finite at zero distance."""
    return torch.sqrt((a - b).pow(2).sum(dim=1) + _EPS)


def contrastive_loss(emb_a: torch.Tensor, emb_b: torch.Tensor, same: torch.Tensor,
                     margin: float) -> torch.Tensor:
    """Hadsell et al. (2006): y*d^2 + (1-y)*max(0, m-d)^2, averaged over pairs."""
    if len(emb_a) == 0:
        return emb_a.sum() * 0.0
    d = _distance(emb_a, emb_b)
    similar = same.to(d.dtype)
    return (similar * d.pow(2) + (1 - similar) * torch.clamp(margin - d, min=0).pow(2)).mean()


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """mean(max(0, d(a,p) - d(a,n) + m))."""
    if len(anchor) == 0:
        return anchor.sum() * 0.0
    return torch.clamp(_distance(anchor, positive) - _distance(anchor, negative) + margin,
                       min=0).mean()


@dataclass(frozen=True)
class PairBatch:
    anchor_idx: torch.Tensor
    other_idx: torch.Tensor
    same: torch.Tensor


@dataclass(frozen=True)
class TripletBatch:
    anchor_idx: torch.Tensor
    positive_idx: torch.Tensor
    negative_idx: torch.Tensor


def _random_partner(mask: torch.Tensor, generator: torch.Generator | None) -> tuple[
        torch.Tensor, torch.Tensor]:
    """For each row of a boolean (B, B) mask, one random True column; and which rows have one."""
    has_partner = mask.any(dim=1)
    scores = torch.rand(mask.shape, generator=generator)
    scores = torch.where(mask, scores, torch.full_like(scores, -1.0))
    return scores.argmax(dim=1), has_partner


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    not_self = ~torch.eye(len(labels), dtype=torch.bool)
    return same & not_self, ~same


def mine_pairs(labels: torch.Tensor, generator: torch.Generator | None = None) -> PairBatch:
    """One positive and one negative partner per anchor, where the batch has them."""
    positive_mask, negative_mask = _masks(labels)
    positive, has_positive = _random_partner(positive_mask, generator)
    negative, has_negative = _random_partner(negative_mask, generator)
    anchors = torch.arange(len(labels))
    return PairBatch(
        anchor_idx=torch.cat([anchors[has_positive], anchors[has_negative]]),
        other_idx=torch.cat([positive[has_positive], negative[has_negative]]),
        same=torch.cat([torch.ones(int(has_positive.sum()), dtype=torch.bool),
                        torch.zeros(int(has_negative.sum()), dtype=torch.bool)]),
    )


def mine_triplets(labels: torch.Tensor, generator: torch.Generator | None = None) -> TripletBatch:
    """A random (positive, negative) for every anchor that has both in the batch."""
    positive_mask, negative_mask = _masks(labels)
    positive, has_positive = _random_partner(positive_mask, generator)
    negative, has_negative = _random_partner(negative_mask, generator)
    valid = has_positive & has_negative
    anchors = torch.arange(len(labels))
    return TripletBatch(anchors[valid], positive[valid], negative[valid])


@dataclass
class LossTerms:
    """The total to back-propagate and each weighted term's value for logging."""

    total: torch.Tensor
    ce: float = 0.0
    ce_pair: float = 0.0
    contrastive: float = 0.0
    triplet: float = 0.0


def multitask_loss(logits: torch.Tensor, pair_logits: torch.Tensor | None,
                   embeddings: torch.Tensor | None, labels: torch.Tensor,
                   weights: LossWeights, generator: torch.Generator | None = None) -> LossTerms:
    """w_ce*CE(anchor) + w_ce_pair*CE(partners) + w_contrastive*contrastive + w_triplet*triplet.

    Zero-weight terms are not computed. CE on partners uses the second head on the
    samples that were mined as positives/negatives (for triplets both), labelled by index.
    """
    ce = nn.functional.cross_entropy(logits, labels)
    total = weights.w_ce * ce
    terms = LossTerms(total=total, ce=float(ce.detach()))
    partner_idx: list[torch.Tensor] = []
    if weights.w_contrastive > 0 or (weights.uses_pair_ce and weights.w_triplet == 0):
        pairs = mine_pairs(labels, generator)
        partner_idx.append(pairs.other_idx)
        if weights.w_contrastive > 0:
            if embeddings is None:
                raise ValueError("a contrastive loss needs the model's embedding head")
            contrastive = contrastive_loss(embeddings[pairs.anchor_idx],
                                           embeddings[pairs.other_idx], pairs.same,
                                           weights.margin)
            total = total + weights.w_contrastive * contrastive
            terms.contrastive = float(contrastive.detach())
    if weights.w_triplet > 0:
        if embeddings is None:
            raise ValueError("a triplet loss needs the model's embedding head")
        triplets = mine_triplets(labels, generator)
        partner_idx.extend([triplets.positive_idx, triplets.negative_idx])
        triplet = triplet_loss(embeddings[triplets.anchor_idx], embeddings[triplets.positive_idx],
                               embeddings[triplets.negative_idx], weights.margin)
        total = total + weights.w_triplet * triplet
        terms.triplet = float(triplet.detach())
    if weights.uses_pair_ce:
        if pair_logits is None:
            raise ValueError("w_ce_pair > 0 needs the model's pair head")
        index = torch.cat(partner_idx)
        ce_pair = (nn.functional.cross_entropy(pair_logits[index], labels[index])
                   if len(index) else pair_logits.sum() * 0.0)
        total = total + weights.w_ce_pair * ce_pair
        terms.ce_pair = float(ce_pair.detach())
    terms.total = total
    return terms
