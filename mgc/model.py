"""The classifier that sits on frozen embeddings: a DNN of Linear-BN-activation-Dropout blocks
(the paper's) or a linear probe, with the heads the multitask losses need.

Input standardisation (the StandardScaler fit on train) is a buffer of the model, so a saved
state dict is everything `mgc predict` needs to reproduce the training-time inputs.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mgc.config import check_range, invalid
from mgc.paper import PAPER_WIDTHS

CLASSIFIER_KINDS = ("dnn", "linear")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "swish": nn.SiLU,
}
HEADS = ("anchor", "pair", "metric")
"""What a loss term can read: the anchor CE head (predictions come from it), a second CE head
for the other samples of pairs and triplets, and the metric-learning embedding."""


@dataclass(frozen=True)
class ClassifierConfig:
    """The architecture knobs of Fig. 2 (depth, width, dropout, activation, BatchNorm).

    `hidden_layers` takes the first 1-4 of the paper's widths 256-128-64-32, each scaled by
    `width_multiplier`. `embedding_dim` is the size of the metric-learning head, used only
    when a contrastive or triplet loss is on.
    """

    hidden_layers: int = 4
    width_multiplier: float = 1.0
    dropout: float = 0.3
    activation: str = "relu"
    batchnorm: bool = True
    embedding_dim: int = 128

    def __post_init__(self) -> None:
        if not 1 <= self.hidden_layers <= len(PAPER_WIDTHS):
            raise invalid("hidden_layers", self.hidden_layers,
                          f"must be between 1 and {len(PAPER_WIDTHS)}")
        check_range("width_multiplier", self.width_multiplier, 0.1, 8)
        if not 0.0 <= self.dropout < 1.0:
            raise invalid("dropout", self.dropout, "must be in [0, 1)")
        if self.activation not in ACTIVATIONS:
            raise invalid("activation", self.activation,
                          f"allowed values are {', '.join(ACTIVATIONS)}")
        if self.embedding_dim < 2:
            raise invalid("embedding_dim", self.embedding_dim, "must be at least 2")

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(max(2, round(w * self.width_multiplier))
                     for w in PAPER_WIDTHS[: self.hidden_layers])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ClassifierOutput:
    """What one forward pass gives the loss: anchor logits, pair-head logits, metric embedding,
    and the trunk's last hidden layer (where a domain classifier reads, `mgc.domain`)."""

    logits: torch.Tensor
    pair_logits: torch.Tensor | None
    embedding: torch.Tensor | None
    features: torch.Tensor | None = None


class GenreClassifier(nn.Module):
    """Standardise -> trunk -> [metric embedding] -> CE head (+ a second CE head for pairs).

    With a metric loss on, the trunk feeds a linear `embedding_dim` layer on which the
    contrastive/triplet loss acts and from which the CE heads read, as in the authors'
    multitask model; without one, the CE head reads the trunk directly (the paper's DNN).
    Predictions always come from `head`, the anchor CE head.
    """

    def __init__(self, input_dim: int, n_classes: int, config: ClassifierConfig,
                 kind: str = "dnn", heads: Collection[str] = ("anchor",)) -> None:
        if kind not in CLASSIFIER_KINDS:
            raise invalid("kind", kind, f"allowed values are {', '.join(CLASSIFIER_KINDS)}")
        unknown = set(heads) - set(HEADS)
        if unknown or "anchor" not in heads:
            raise ValueError(f"heads={sorted(heads)}: must include 'anchor' and come from "
                             f"{', '.join(HEADS)}")
        super().__init__()
        self.config = config
        self.kind = kind
        self.heads = tuple(head for head in HEADS if head in heads)
        metric_head = "metric" in heads
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_scale", torch.ones(input_dim))
        layers: list[nn.Module] = []
        width = input_dim
        if kind == "dnn":
            for hidden in config.widths:
                layers.append(nn.Linear(width, hidden))
                if config.batchnorm:
                    layers.append(nn.BatchNorm1d(hidden))
                layers.append(ACTIVATIONS[config.activation]())
                layers.append(nn.Dropout(config.dropout))
                width = hidden
        self.trunk = nn.Sequential(*layers)
        self.embedding = nn.Linear(width, config.embedding_dim) if metric_head else None
        head_input = config.embedding_dim if metric_head else width
        self.head = nn.Linear(head_input, n_classes)
        self.pair_head = nn.Linear(head_input, n_classes) if "pair" in heads else None

    def set_standardisation(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Store the training split's feature mean and std (zero std is treated as 1)."""
        safe_scale = np.where(scale > 0, scale, 1.0)
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_scale.copy_(torch.as_tensor(safe_scale, dtype=torch.float32))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_scale

    def forward_standardised(self, z: torch.Tensor) -> ClassifierOutput:
        """Forward pass on already standardised inputs (noise augmentation acts there)."""
        features = self.trunk(z)
        embedding = self.embedding(features) if self.embedding is not None else None
        head_input = embedding if embedding is not None else features
        pair_logits = self.pair_head(head_input) if self.pair_head is not None else None
        return ClassifierOutput(self.head(head_input), pair_logits, embedding, features)

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        return self.forward_standardised(self.standardise(x))

    @torch.inference_mode()
    def predict_proba(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities for raw (unstandardised) embeddings."""
        self.eval()
        chunks = (torch.as_tensor(x[i:i + batch_size], dtype=torch.float32)
                  for i in range(0, len(x), batch_size))
        outputs = [torch.softmax(self(chunk).logits, dim=1) for chunk in chunks]
        return (torch.cat(outputs).numpy() if outputs
                else np.empty((0, self.head.out_features), np.float32))
