"""The classifier that sits on frozen embeddings: a DNN of Linear-BN-activation-Dropout blocks
(the paper's) or a linear probe, with the heads the multitask losses need.

Input standardisation (the StandardScaler fit on train) is a buffer of the model, so a saved
state dict is everything `mgc predict` needs to reproduce the training-time inputs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
METRIC_HEADS = ("projection", "shared")
"""Where the metric embedding sits. `projection`: a linear layer on the trunk beside the CE
heads, which read the trunk as in the CE-only model (SupCon's projection head). `shared`: the
authors' layout, the CE heads read the metric embedding, which puts one more linear layer
(last hidden width -> embedding_dim) on the CE path; on the default corpus that layer alone,
with the metric loss weighted 1e-9, cost PANNs 13.5 points on synth_gtzan (README)."""


@dataclass(frozen=True)
class ClassifierConfig:
    """The architecture knobs of Fig. 2 (depth, width, dropout, activation, BatchNorm).

    `hidden_layers` takes the first 1-4 of the paper's widths 256-128-64-32, each scaled by
    `width_multiplier`. `embedding_dim` is the size of the metric-learning head and
    `metric_head` its place (`METRIC_HEADS`), used only when a contrastive or triplet loss
    is on.
    """

    hidden_layers: int = 4
    width_multiplier: float = 1.0
    dropout: float = 0.3
    activation: str = "relu"
    batchnorm: bool = True
    embedding_dim: int = 128
    metric_head: str = "projection"

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
        if self.metric_head not in METRIC_HEADS:
            raise invalid("metric_head", self.metric_head,
                          f"allowed values are {', '.join(METRIC_HEADS)}")

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(max(2, round(w * self.width_multiplier))
                     for w in PAPER_WIDTHS[: self.hidden_layers])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


LOGIT_SCALE = 30.0
"""Layer weights are softmax(LOGIT_SCALE x logits). Adam moves each parameter by about the
learning rate per step whatever its gradient, and early stopping ends these small-data
trainings after a few dozen epochs: unscaled logits then stay near zero, so the weights stay
within a few % of uniform even where one layer carries every label (0.23-0.30 over four
layers in tests/test_model.py's problem, 0.06-0.82 with this scale, and better accuracy)."""


class LayerWeighting(nn.Module):
    """SUPERB-style weighted sum over an extractor's layers (`train.layer: weighted`).

    The input is every layer side by side, already standardised feature by feature. CNN
    layers differ in width (64 to 4096), so each layer is first projected by its own linear
    map to a common `width` and layer-normalised without affine parameters; the normalised
    layers are then summed with softmax weights. The layer norm pins every projected layer
    to the same scale, so a projection cannot grow to stand in for its weight and the
    softmax weights say how much each layer contributes, as SUPERB's do over a
    transformer's equal-width layers. (Softmax-scaled concatenation would keep the widths,
    but the first trunk layer could then rescale any layer freely, and the weights would
    mean nothing.)
    """

    def __init__(self, layer_dims: Sequence[int], width: int) -> None:
        super().__init__()
        self.layer_dims = [int(dim) for dim in layer_dims]
        self.projections = nn.ModuleList(nn.Linear(dim, width) for dim in self.layer_dims)
        self.logits = nn.Parameter(torch.zeros(len(self.layer_dims)))
        self.width = width

    def weights(self) -> torch.Tensor:
        """The softmax weight of each layer, in depth order."""
        return torch.softmax(LOGIT_SCALE * self.logits, dim=0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        layers = torch.split(z, self.layer_dims, dim=1)
        projected = torch.stack([nn.functional.layer_norm(projection(layer), (self.width,))
                                 for projection, layer in zip(self.projections, layers,
                                                              strict=True)])
        return torch.einsum("l,lbd->bd", self.weights(), projected)


def _side_linear(in_features: int, out_features: int) -> nn.Linear:
    """A linear layer initialised from its own seed (drawn from the global stream, whose
    state is then put back), so that building it changes no other random draw: with the
    same seed the rest of the model, and training's dropout masks, are the CE-only model's."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, ())))
        return nn.Linear(in_features, out_features)


@dataclass
class ClassifierOutput:
    """What one forward pass gives the loss: anchor logits, pair-head logits, metric embedding,
    and the trunk's last hidden layer (where a domain classifier reads, `mgc.domain`)."""

    logits: torch.Tensor
    pair_logits: torch.Tensor | None
    embedding: torch.Tensor | None
    features: torch.Tensor | None = None


class GenreClassifier(nn.Module):
    """Standardise -> [layer weighting] -> trunk -> [metric embedding] -> CE head (+ a
    second CE head for pairs).

    With `layer_dims` the input is several layers side by side, combined by a
    `LayerWeighting` to the width of the first hidden layer before the trunk.

    With a metric loss on, the trunk also feeds a linear `embedding_dim` layer on which the
    contrastive/triplet loss acts. The CE heads read the trunk beside it (`projection`), or
    read it (`shared`, the authors' multitask model); without a metric loss, the CE head
    reads the trunk directly (the paper's DNN). Predictions always come from `head`, the
    anchor CE head.
    """

    def __init__(self, input_dim: int, n_classes: int, config: ClassifierConfig,
                 kind: str = "dnn", heads: Collection[str] = ("anchor",),
                 layer_dims: Sequence[int] | None = None) -> None:
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
        if layer_dims is not None and sum(layer_dims) != input_dim:
            raise ValueError(f"layer_dims {list(layer_dims)} add up to {sum(layer_dims)}, "
                             f"not the input's {input_dim}")
        self.layer_weighting = (LayerWeighting(layer_dims, config.widths[0])
                                if layer_dims is not None else None)
        layers: list[nn.Module] = []
        width = config.widths[0] if layer_dims is not None else input_dim
        if kind == "dnn":
            for hidden in config.widths:
                layers.append(nn.Linear(width, hidden))
                if config.batchnorm:
                    layers.append(nn.BatchNorm1d(hidden))
                layers.append(ACTIVATIONS[config.activation]())
                layers.append(nn.Dropout(config.dropout))
                width = hidden
        self.trunk = nn.Sequential(*layers)
        shared = metric_head and config.metric_head == "shared"
        # The shared embedding draws from the global stream, in the authors' (and this
        # project's earlier) order; the projection head draws nothing from it.
        self.embedding = (nn.Linear(width, config.embedding_dim) if shared
                          else _side_linear(width, config.embedding_dim) if metric_head
                          else None)
        head_input = config.embedding_dim if shared else width
        self.head = nn.Linear(head_input, n_classes)
        self.pair_head = nn.Linear(head_input, n_classes) if "pair" in heads else None

    @property
    def heads_read_embedding(self) -> bool:
        """Whether the CE heads read the metric embedding (the `shared` layout)."""
        return self.embedding is not None and self.config.metric_head == "shared"

    def set_standardisation(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Store the training split's feature mean and std (zero std is treated as 1)."""
        safe_scale = np.where(scale > 0, scale, 1.0)
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_scale.copy_(torch.as_tensor(safe_scale, dtype=torch.float32))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_scale

    def forward_standardised(self, z: torch.Tensor) -> ClassifierOutput:
        """Forward pass on already standardised inputs (noise augmentation acts there)."""
        if self.layer_weighting is not None:
            z = self.layer_weighting(z)
        features = self.trunk(z)
        embedding = self.embedding(features) if self.embedding is not None else None
        head_input = embedding if self.heads_read_embedding else features
        pair_logits = self.pair_head(head_input) if self.pair_head is not None else None
        return ClassifierOutput(self.head(head_input), pair_logits, embedding, features)

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        return self.forward_standardised(self.standardise(x))

    def layer_weights(self) -> list[float] | None:
        """The learned weight of each layer (`train.layer: weighted`), else None."""
        if self.layer_weighting is None:
            return None
        return self.layer_weighting.weights().detach().tolist()

    @torch.inference_mode()
    def predict_proba(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities for raw (unstandardised) embeddings."""
        self.eval()
        chunks = (torch.as_tensor(x[i:i + batch_size], dtype=torch.float32)
                  for i in range(0, len(x), batch_size))
        outputs = [torch.softmax(self(chunk).logits, dim=1) for chunk in chunks]
        return (torch.cat(outputs).numpy() if outputs
                else np.empty((0, self.head.out_features), np.float32))
