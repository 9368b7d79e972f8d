"""Named layers of an extractor, and which of them a classifier reads (`train.layer`).

Light on purpose (no torch): the Parquet reader, the params check and `mgc predict` all
need these names without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mgc.config import invalid

LayerMode = Literal["last", "all"]
"""`embed.<model>.layers`: the model's output only (the default), or every named layer."""
LAST = "last"
ALL = "all"
WEIGHTED = "weighted"
"""`train.layer`: every layer of an extractor, standardised and combined with learned weights."""


@dataclass(frozen=True)
class Layer:
    """One named layer an extractor can emit, pooled to one `dim`-vector per clip."""

    name: str
    dim: int


def select_layer(outputs: Mapping[str, Any], layer: str) -> Any:
    """The features `layer` asks for from every layer's output (a mapping in depth order,
    the model's final output last): `last`, one layer by name, or `weighted`: every layer
    concatenated in depth order (the classifier splits them again by their dims)."""
    names = list(outputs)
    if layer == LAST:
        return outputs[names[-1]]
    if layer == WEIGHTED:
        return np.concatenate([outputs[name] for name in names], axis=1)
    if layer not in outputs:
        raise invalid("layer", layer, f"allowed values are {LAST}, {WEIGHTED}, "
                      + ", ".join(names))
    return outputs[layer]
