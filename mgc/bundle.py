"""A trained model bundle: everything `mgc predict` needs, and nothing that runs code on load.

`classifier.pt` is a plain state dict (tensors only, loaded with `weights_only=True`);
`bundle.json` says how to rebuild the network and the front end that fed it: class names,
classifier configuration and the heads its loss terms trained, the extractor's name and
options, the clip length, and (for a classifier on other layers than the extractor's output)
which layer it reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from mgc.atomic import atomic_path, write_json
from mgc.config import ConfigError, build, invalid
from mgc.layers import LAST, WEIGHTED
from mgc.model import CLASSIFIER_KINDS, HEADS, ClassifierConfig, GenreClassifier

BUNDLE_FORMAT = 2
STATE_FILE = "classifier.pt"
INFO_FILE = "bundle.json"


_LAYER_DEFAULTS: dict[str, Any] = {"layer": LAST, "layer_dims": None}
"""The layer fields of a classifier on the extractor's output, left out of its bundle.json."""


class BundleError(ValueError):
    """A bundle.json that cannot be trusted; the message names the file and the field."""


@dataclass(frozen=True)
class BundleInfo:
    """The JSON half of a bundle; every field is checked on load, since a hand-edited or
    foreign bundle.json must fail naming its field, not later with a traceback or (class
    names given as one string) with silently wrong genres."""

    class_names: list[str]
    input_dim: int
    classifier: dict[str, Any]
    kind: str
    heads: list[str]
    extractor: str
    extractor_options: dict[str, Any]
    clip_samples: int
    train_set: str
    protocol: str
    layer: str = LAST
    """`train.layer` the classifier was trained on; `mgc predict` feeds it the same."""
    layer_dims: dict[str, int] | None = None
    """With `layer: weighted`, every layer's dim in depth order (the input side by side)."""

    def __post_init__(self) -> None:
        names = self.class_names
        if len(names) < 2 or len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise invalid("class_names", names, "must be a list of at least 2 distinct, "
                          "non-empty genre names")
        if not 1 <= self.input_dim <= 1 << 20:
            raise invalid("input_dim", self.input_dim, f"must be between 1 and {1 << 20}")
        if self.clip_samples < 1:
            raise invalid("clip_samples", self.clip_samples, "must be a positive integer")
        if self.kind not in CLASSIFIER_KINDS:
            raise invalid("kind", self.kind, f"allowed values are {', '.join(CLASSIFIER_KINDS)}")
        if "anchor" not in self.heads or not set(self.heads) <= set(HEADS):
            raise invalid("heads", self.heads, f"must include anchor and come from "
                          f"{', '.join(HEADS)}")
        if not self.layer:
            raise invalid("layer", self.layer, f"expected {LAST}, {WEIGHTED} or a layer name")
        if (self.layer == WEIGHTED) != (self.layer_dims is not None) or (
                self.layer_dims is not None and sum(self.layer_dims.values()) != self.input_dim):
            raise invalid("layer_dims", self.layer_dims, f"must be given exactly with layer "
                          f"{WEIGHTED} and add up to input_dim ({self.input_dim})")


def save_bundle(model: GenreClassifier, info: BundleInfo, directory: Path) -> None:
    """Write the bundle into `directory`, each file atomically.

    torch.save is given an open file, not the temp path: given a path it names the zip's
    inner folder after the file (`.classifier.pt.<pid>`), so every run's bytes would differ
    and DVC would never see a retrained model as the same output.
    """
    with atomic_path(directory / STATE_FILE) as temp, open(temp, "wb") as handle:
        torch.save(model.state_dict(), handle)
    fields = asdict(info)
    for key, default in _LAYER_DEFAULTS.items():
        if fields[key] == default:
            del fields[key]      # a `last` bundle is written as it was before layers
    write_json(directory / INFO_FILE, {"format": BUNDLE_FORMAT, **fields})


def load_bundle(directory: Path) -> tuple[GenreClassifier, BundleInfo]:
    """Rebuild the trained classifier from `directory`."""
    info_path, state_path = directory / INFO_FILE, directory / STATE_FILE
    if not info_path.exists() or not state_path.exists():
        raise FileNotFoundError(
            f"{directory} is not a model bundle (needs {INFO_FILE} and {STATE_FILE}); "
            "train one with `dvc repro` and pass --model models/<train_set>/<extractor>"
        )
    try:
        raw = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{info_path}: not a readable JSON file: {error}") from None
    if not isinstance(raw, dict) or raw.pop("format", None) != BUNDLE_FORMAT:
        raise BundleError(f"{info_path}: unsupported bundle format (this mgc reads format "
                          f"{BUNDLE_FORMAT}); retrain it with this version (`dvc repro`)")
    try:
        info = build(BundleInfo, {**_LAYER_DEFAULTS, **raw}, "")
        config = build(ClassifierConfig, info.classifier, "classifier")
    except ConfigError as error:
        raise BundleError(f"{info_path}: {error}") from None
    model = GenreClassifier(info.input_dim, len(info.class_names), config, kind=info.kind,
                            heads=info.heads, layer_dims=(None if info.layer_dims is None
                                                          else list(info.layer_dims.values())))
    model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    model.eval()
    return model, info
