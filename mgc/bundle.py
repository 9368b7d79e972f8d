"""A trained model bundle: everything `mgc predict` needs, and nothing that runs code on load.

`classifier.pt` is a plain state dict (tensors only, loaded with `weights_only=True`);
`bundle.json` says how to rebuild the network and the front end that fed it: class names,
classifier configuration and the heads its loss terms trained, the extractor's name and
options, the clip length.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from mgc.atomic import atomic_path, write_json
from mgc.config import ConfigError, build, invalid
from mgc.model import CLASSIFIER_KINDS, HEADS, ClassifierConfig, GenreClassifier

BUNDLE_FORMAT = 2
STATE_FILE = "classifier.pt"
INFO_FILE = "bundle.json"


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


def save_bundle(model: GenreClassifier, info: BundleInfo, directory: Path) -> None:
    """Write the bundle into `directory`, each file atomically.

    torch.save is given an open file, not the temp path: given a path it names the zip's
    inner folder after the file (`.classifier.pt.<pid>`), so every run's bytes would differ
    and DVC would never see a retrained model as the same output.
    """
    with atomic_path(directory / STATE_FILE) as temp, open(temp, "wb") as handle:
        torch.save(model.state_dict(), handle)
    write_json(directory / INFO_FILE, {"format": BUNDLE_FORMAT, **asdict(info)})


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
        info = build(BundleInfo, raw, "")
        config = build(ClassifierConfig, info.classifier, "classifier")
    except ConfigError as error:
        raise BundleError(f"{info_path}: {error}") from None
    model = GenreClassifier(info.input_dim, len(info.class_names), config, kind=info.kind,
                            heads=info.heads)
    model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    model.eval()
    return model, info
