"""Domain adaptation between datasets: the domain of a track is its source dataset.

Adaptation is unsupervised: a target domain is known only by its *unlabelled training-split*
tracks (never its test tracks, never its labels). For a single-dataset train set, every other
dataset is a target; for `joint`, every dataset is labelled and is a domain of its own.

- `standardise`: each domain standardised with its own mean and std, the simplest strong
  baseline (it removes per-dimension offsets and scales between datasets).
- `coral` (Sun, Feng & Saenko 2016): each domain re-coloured to the reference domain's mean
  and covariance, x' = (x - mu_d) C_d^-1/2 C_ref^1/2 + mu_ref, on standardised features with
  CORAL's + I ridge (`CORAL_SHRINKAGE`); the reference is the training dataset (so its own
  tracks are untouched), or for `joint` all training tracks pooled.
- `adversarial` (DANN, Ganin et al. 2016): a domain classifier on the DNN trunk's last
  hidden layer behind a gradient-reversal layer, so the trunk learns features the domain
  head cannot tell apart (`Adversary`, used by `mgc.train.train_classifier`).

The first two are fixed maps of the embeddings (`DomainMap`), fitted once per train stage
and applied to every split of their domain before the classifier sees it; the bundle keeps
them so `mgc predict` feeds new audio the way training did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.linalg import eigh
from torch import nn

from mgc.config import invalid
from mgc.evaluate import LabelledEmbeddings

DOMAIN_METHODS = ("none", "standardise", "coral", "adversarial")
CORAL_SHRINKAGE = 1.0
"""CORAL's ridge, C + eps I, on standardised features (Sun et al. standardise, then add I).

With a hundred tracks per domain and up to 3072 dimensions the sample covariance is
singular (rank < tracks), so C^-1/2 needs a ridge. On standardised features every
dimension has variance 1 and eps = 1 is CORAL's own "+ I": the directions a domain's few
tracks do not span are left at unit scale instead of blown up by 1/sqrt(eps), and the ridge
means the same for every embedding whatever its units. Measured on the default corpus,
whitening the raw features instead (a ridge of the mean variance) took byola's
synth_fma -> synth_gtzan accuracy from 42 % unadapted to 8 %; standardising first, 58 %."""
DOMAIN_HIDDEN = 32
"""Width of the domain classifier's hidden layer (one hidden layer, as DANN's small MLP)."""


@dataclass(frozen=True)
class DomainConfig:
    """`train.domain` (the method) and `train.domain_weight` (DANN's lambda).

    lambda is a fixed weight rather than DANN's schedule 2/(1 + exp(-10 p)) - 1: that
    schedule needs the training progress p, and here the epoch count is only a cap that
    early stopping cuts short (p would be the fraction of an unknown length).
    """

    method: str = "none"
    weight: float = 0.1

    def __post_init__(self) -> None:
        if self.method not in DOMAIN_METHODS:
            raise invalid("domain", self.method,
                          f"allowed values are {', '.join(DOMAIN_METHODS)}")
        if (isinstance(self.weight, bool) or not isinstance(self.weight, int | float)
                or not 0 <= self.weight < math.inf):
            raise invalid("domain_weight", self.weight, "must be a finite number >= 0")

    @property
    def maps_embeddings(self) -> bool:
        """Whether the method is a fixed map of the embeddings (standardise, coral)."""
        return self.method in ("standardise", "coral")


NO_ADAPTATION = DomainConfig()


@dataclass(frozen=True)
class DomainMap:
    """x' = (x - centre) @ linear + offset; `linear` is a vector (a per-dimension scale) or a
    (dim, dim) matrix."""

    centre: np.ndarray
    linear: np.ndarray
    offset: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        centred = x - self.centre
        mapped = centred * self.linear if self.linear.ndim == 1 else centred @ self.linear
        return (mapped + self.offset).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"centre": self.centre, "linear": self.linear, "offset": self.offset}


def identity_map(dim: int) -> DomainMap:
    return DomainMap(np.zeros(dim, np.float32), np.ones(dim, np.float32),
                     np.zeros(dim, np.float32))


def standardising_map(x: np.ndarray) -> DomainMap:
    """The map that gives `x` zero mean and unit std per dimension (a constant one: 1)."""
    x = np.asarray(x, np.float64)
    std = x.std(axis=0)
    return DomainMap(x.mean(axis=0).astype(np.float32),
                     (1.0 / np.where(std > 0, std, 1.0)).astype(np.float32),
                     np.zeros(x.shape[1], np.float32))


def _ridged_covariance(x: np.ndarray, shrinkage: float) -> np.ndarray:
    covariance = np.cov(np.asarray(x, np.float64), rowvar=False).reshape(x.shape[1], x.shape[1])
    return covariance + shrinkage * np.eye(x.shape[1])


def _matrix_power(symmetric: np.ndarray, power: float) -> np.ndarray:
    values, vectors = eigh(symmetric)
    return (vectors * np.clip(values, 1e-12, None) ** power) @ vectors.T


def coral_map(x: np.ndarray, reference: np.ndarray,
              shrinkage: float = CORAL_SHRINKAGE) -> DomainMap:
    """The CORAL map that gives `x` the mean and covariance of `reference`: both
    standardised per dimension, `x` whitened with its ridged correlation C_x + shrinkage I
    and re-coloured with the reference's, then scaled and shifted to the reference's std
    and mean. With shrinkage 0 the output covariance is the reference's exactly."""
    x, reference = np.asarray(x, np.float64), np.asarray(reference, np.float64)
    own, target = standardising_map(x), standardising_map(reference)
    whiten = _matrix_power(_ridged_covariance(own.apply(x), shrinkage), -0.5)
    colour = _matrix_power(_ridged_covariance(target.apply(reference), shrinkage), 0.5)
    linear = (own.linear[:, None] * (whiten @ colour)) / target.linear[None, :]
    return DomainMap(own.centre, linear.astype(np.float32), target.centre)


def fit_domain_maps(method: str, train_by_domain: dict[str, np.ndarray],
                    reference: Sequence[str]) -> dict[str, DomainMap]:
    """One map per domain from its training-split embeddings.

    `reference` names the domains whose pooled training tracks CORAL aligns every domain to
    (one domain: the training dataset, left as the identity; for `joint`, all of them).
    """
    if method == "standardise":
        return {name: standardising_map(x) for name, x in train_by_domain.items()}
    if method != "coral":
        raise invalid("method", method, "only standardise and coral map embeddings")
    target = np.concatenate([train_by_domain[name] for name in reference])
    return {name: (identity_map(x.shape[1]) if [name] == list(reference)
                   else coral_map(x, target))
            for name, x in train_by_domain.items()}


def _train_tracks(tracks: LabelledEmbeddings) -> LabelledEmbeddings:
    return tracks.part(tracks.split == "train")


def _mapped(tracks: LabelledEmbeddings, maps: dict[str, DomainMap]) -> LabelledEmbeddings:
    x = tracks.x.copy()
    for name in np.unique(tracks.dataset):
        rows = tracks.dataset == name
        x[rows] = maps[name].apply(tracks.x[rows])
    return replace(tracks, x=x)


def adapt_embeddings(data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                     method: str) -> tuple[LabelledEmbeddings, dict[str, LabelledEmbeddings],
                                           dict[str, DomainMap]]:
    """`data` (the labelled train set) and `others` (other datasets, scored on shared
    genres) with every domain's map applied, and the maps by dataset.

    Each map is fitted on its domain's training split only: `data`'s own, and `others'`
    training tracks without their labels.
    """
    members = sorted(set(data.dataset))
    train = _train_tracks(data)
    by_domain = {name: train.x[train.dataset == name] for name in members}
    by_domain.update({name: _train_tracks(other).x for name, other in sorted(others.items())})
    for name, x in by_domain.items():
        if len(x) < 2:
            raise ValueError(f"domain adaptation ({method}) fits each dataset's map on its "
                             f"training split, and {name} has {len(x)} training track(s); "
                             "give it a training split or use train.domain none")
    maps = fit_domain_maps(method, by_domain, members)
    return (_mapped(data, maps), {name: _mapped(other, maps) for name, other in others.items()},
            maps)


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times -weight backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor,
                weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """`x` unchanged, but the gradient flowing back through it is multiplied by -weight."""
    return _ReverseGradient.apply(x, weight)


class DomainHead(nn.Module):
    """DANN's domain classifier: gradient reversal, then a one-hidden-layer MLP."""

    def __init__(self, input_dim: int, n_domains: int, weight: float) -> None:
        super().__init__()
        self.weight = weight
        self.classify = nn.Sequential(nn.Linear(input_dim, DOMAIN_HIDDEN), nn.ReLU(),
                                      nn.Linear(DOMAIN_HIDDEN, n_domains))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(reverse_gradient(features, self.weight))


@dataclass(frozen=True)
class Adversary:
    """What DANN trains its domain head on: the domain of every labelled training row, the
    unlabelled target-domain training tracks and theirs, how many domains, and lambda."""

    labelled_domains: np.ndarray
    x_unlabelled: np.ndarray
    unlabelled_domains: np.ndarray
    n_domains: int
    weight: float


def adversary_for(train: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                  weight: float) -> Adversary | None:
    """The `Adversary` for labelled training tracks `train` and target datasets `others`
    (their training-split tracks, labels unused); None when there is one domain only."""
    unlabelled = [_train_tracks(other) for _, other in sorted(others.items())]
    names = sorted({*train.dataset, *(name for name, _ in sorted(others.items()))})
    if len(names) < 2:
        return None
    index = {name: i for i, name in enumerate(names)}
    x_unlabelled = (np.concatenate([part.x for part in unlabelled]) if unlabelled
                    else np.empty((0, train.x.shape[1]), np.float32))
    domains = (np.concatenate([[index[d] for d in part.dataset] for part in unlabelled])
               if unlabelled else np.empty(0))
    return Adversary(np.array([index[d] for d in train.dataset], dtype=np.int64),
                     x_unlabelled.astype(np.float32), domains.astype(np.int64), len(names),
                     weight)
