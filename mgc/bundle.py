"""A trained model bundle: everything `mgc predict` needs, and nothing that runs code on load.

`classifier.pt` is a plain state dict (tensors only, loaded with `weights_only=True`);
`bundle.json` says how to rebuild the network and the front end that fed it: class names,
classifier configuration and the heads its loss terms trained, the extractor's name and
options, the clip length, and (for a classifier on other layers than the extractor's output)
which layer it reads, and the licence of the extractor's weights where they carry one
(MuQ's are non-commercial, and so is what is built on them). A model trained with a domain
map of the embeddings (`train.domain` standardise or coral, `mgc.domain`) also has
`domain.pt`, each domain's map (tensors only), and `domain` in bundle.json: the method, the
datasets mapped and the one applied by default.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from mgc.atomic import atomic_path, write_json
from mgc.config import ConfigError, build, invalid
from mgc.domain import DomainMap
from mgc.errors import UserError
from mgc.layers import LAST, WEIGHTED
from mgc.model import CLASSIFIER_KINDS, HEADS, ClassifierConfig, GenreClassifier

BUNDLE_FORMAT = 2
STATE_FILE = "classifier.pt"
INFO_FILE = "bundle.json"
DOMAIN_FILE = "domain.pt"
DOMAIN_PARTS = ("centre", "linear", "offset")


_OPTIONAL_DEFAULTS: dict[str, Any] = {"layer": LAST, "layer_dims": None,
                                      "weights_licence": None}
"""Fields left out of a bundle.json that has their default: a classifier on the extractor's
output, and embeddings from weights without a recorded licence, write the bundle they wrote
before these fields existed."""
_LEGACY_CLASSIFIER: dict[str, Any] = {"metric_head": "shared"}
"""Classifier fields a bundle from before they existed was trained with: the metric embedding
then always fed the CE heads."""


class BundleError(UserError, ValueError):
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
    domain: dict[str, Any] | None = None
    """{method, datasets, default}: the domain maps in `domain.pt`; absent without one."""
    weights_licence: str | None = None
    """The licence of the extractor's pretrained weights where the model card gives one
    (CC-BY-NC-4.0 for MERT and MuQ: the bundle is then for non-commercial use too)."""

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
        if self.domain is not None and (
                not isinstance(self.domain, dict)
                or set(self.domain) != {"method", "datasets", "default"}
                or not self.domain["datasets"]
                or self.domain["default"] not in self.domain["datasets"]):
            raise invalid("domain", self.domain, "must be {method, datasets, default} with "
                          "the default one of the datasets")


def save_bundle(model: GenreClassifier, info: BundleInfo, directory: Path,
                domain_maps: dict[str, DomainMap] | None = None) -> None:
    """Write the bundle into `directory`, each file atomically; `domain_maps` (by dataset,
    those `info.domain` names) into `domain.pt`.

    torch.save is given an open file, not the temp path: given a path it names the zip's
    inner folder after the file (`.classifier.pt.<pid>`), so every run's bytes would differ
    and DVC would never see a retrained model as the same output.
    """
    with atomic_path(directory / STATE_FILE) as temp, open(temp, "wb") as handle:
        torch.save(model.state_dict(), handle)
    if domain_maps:
        with atomic_path(directory / DOMAIN_FILE) as temp, open(temp, "wb") as handle:
            torch.save({f"{dataset}.{part}": torch.as_tensor(array)
                        for dataset, domain_map in sorted(domain_maps.items())
                        for part, array in domain_map.to_arrays().items()}, handle)
    else:
        (directory / DOMAIN_FILE).unlink(missing_ok=True)
    fields = asdict(info)
    for key, default in {**_OPTIONAL_DEFAULTS, "domain": None}.items():
        if fields[key] == default:
            del fields[key]
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
    # `domain` is optional (absent from a bundle without domain maps), so not built.
    domain = raw.pop("domain", None)
    try:
        info = build(BundleInfo, {**_OPTIONAL_DEFAULTS, **raw}, "", fixed={"domain": domain})
        config = build(ClassifierConfig, {**_LEGACY_CLASSIFIER, **info.classifier},
                       "classifier")
    except ConfigError as error:
        raise BundleError(f"{info_path}: {error}") from None
    model = GenreClassifier(info.input_dim, len(info.class_names), config, kind=info.kind,
                            heads=info.heads, layer_dims=(None if info.layer_dims is None
                                                          else list(info.layer_dims.values())))
    model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    model.eval()
    return model, info


def load_domain_map(directory: Path, info: BundleInfo,
                    dataset: str | None = None) -> DomainMap | None:
    """The map of the domain `dataset` (default: the bundle's default domain) that the
    classifier's inputs went through in training; None for a bundle without one."""
    if info.domain is None:
        if dataset is not None:
            raise BundleError(f"{directory}: this model was trained without a domain map "
                              "(train.domain none or adversarial); drop --domain")
        return None
    chosen = info.domain["default"] if dataset is None else dataset
    if chosen not in info.domain["datasets"]:
        raise BundleError(f"{directory}: domain {chosen!r} is not one of the bundle's: "
                          f"{', '.join(info.domain['datasets'])}")
    arrays = torch.load(directory / DOMAIN_FILE, map_location="cpu", weights_only=True)
    return DomainMap(*(arrays[f"{chosen}.{part}"].numpy() for part in DOMAIN_PARTS))
