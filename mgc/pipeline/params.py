"""params.yaml, parsed once into typed sections built from the library's own declarations.

Each section is a dataclass (or, for the loss, the registry of loss terms; for extractor and
dataset options, the constructor's keyword parameters), checked by `mgc.config`: an unknown
key, a missing key, a wrong type or an out-of-range value fails at once with its dotted key,
the value and what is allowed, before a stage does any work, so a typo in `dvc exp run -S`
costs seconds, not an hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mgc.config import ConfigError, build, check_keys, check_range, coerce, invalid
from mgc.datasets import REGISTRY as DATASETS
from mgc.datasets import check_source
from mgc.domain import DomainConfig
from mgc.embeddings import CLIP_POLICIES
from mgc.extractors import REGISTRY as EXTRACTORS
from mgc.labels import MERGE_STRATEGIES
from mgc.layers import ALL, LAST, WEIGHTED
from mgc.losses import TERMS, LossConfig
from mgc.model import CLASSIFIER_KINDS, ClassifierConfig
from mgc.pipeline.layout import JOINT
from mgc.pipeline.yaml12 import load_yaml12
from mgc.ray_extraction import RayOptions
from mgc.splits import PROTOCOLS
from mgc.train import NoiseConfig, TrainConfig
from mgc.zeroshot import ZERO_SHOT

PARAMS_FILE = Path("params.yaml")
ENGINES = ("local", "ray")
"""Where extraction runs: this process, or a Ray cluster (`embed.ray`)."""


class ParamsError(ConfigError):
    """A params.yaml value that is missing, misspelt or out of range."""


def _names(key: str, values: tuple[str, ...], allowed: list[str]) -> None:
    if not values:
        raise invalid(key, list(values), f"expected a non-empty list from {', '.join(allowed)}")
    for name in values:
        if name not in allowed:
            raise ConfigError(f"{key}: {name!r} is not allowed; allowed: {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise invalid(key, list(values), "contains duplicates")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise invalid(key, value, f"allowed values are {', '.join(allowed)}")


@dataclass(frozen=True)
class DataParams:
    """`data`: which datasets, how they are split, and each dataset's source options."""

    datasets: tuple[str, ...]
    protocol: str
    seed: int
    test_fraction: float
    val_fraction: float
    folds: int
    sources: dict[str, dict[str, Any] | None]
    min_class_tracks: int | None = None
    """None: a class with too few usable tracks to split stops the split stage, naming it;
    N: classes with fewer than N usable tracks are left out of the split, with a warning."""

    def __post_init__(self) -> None:
        for name, options in self.sources.items():
            if name not in DATASETS and "kind" not in (options or {}):
                raise ConfigError(f"sources: unknown dataset {name!r}; name one of "
                                  f"{', '.join(sorted(DATASETS))}, or give yours a kind "
                                  "(e.g. {kind: folder, path: /music})")
        _names("datasets", self.datasets, sorted({*DATASETS, *self.sources}))
        for name in dict.fromkeys([*self.datasets, *self.sources]):
            try:
                check_source(name, self.source(name))
            except ConfigError as error:
                raise error.within("sources") from None
        _choice("protocol", self.protocol, PROTOCOLS)
        check_range("seed", self.seed, 0, 2**32 - 1)
        check_range("test_fraction", self.test_fraction, 0.05, 0.5)
        check_range("val_fraction", self.val_fraction, 0.05, 0.5)
        check_range("folds", self.folds, 3, 100)
        if self.min_class_tracks is not None:
            check_range("min_class_tracks", self.min_class_tracks, 1, 10**6)

    def source(self, dataset: str) -> dict[str, Any]:
        """The source options of `dataset` (none given: its defaults)."""
        return dict(self.sources.get(dataset) or {})


@dataclass(frozen=True)
class ExtractorParams:
    """One `embed.<model>` block: how clips are cut and batched, and the extractor's options."""

    clip: str
    batch_size: int
    options: dict[str, Any]


@dataclass(frozen=True)
class EmbedParams:
    """`embed`: the extractors to run, a block per extractor, and where extraction runs.

    `engine` and `ray` are no stage's params in dvc.yaml: both engines write the same
    bytes, so switching re-extracts nothing."""

    models: tuple[str, ...]
    blocks: dict[str, ExtractorParams]
    engine: str
    ray: RayOptions

    def __getitem__(self, model: str) -> ExtractorParams:
        return self.blocks[model]


@dataclass(frozen=True)
class MergeParams:
    """`merge`: how the datasets' label spaces are joined for the `joint` train set."""

    strategy: str

    def __post_init__(self) -> None:
        _choice("strategy", self.strategy, MERGE_STRATEGIES)


@dataclass(frozen=True)
class TrainParams:
    """`train`: what is trained (sets, classifier kinds, seeds) and how."""

    sets: tuple[str, ...]
    seeds: tuple[int, ...]
    classifiers: tuple[str, ...]
    layer: str
    """`last` (the extractor's output), a layer's name, or `weighted` (all layers)."""
    threads: int
    workers: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    patience: int
    smoothing: float
    min_delta: float
    classifier: ClassifierConfig
    noise: NoiseConfig
    domain: str
    domain_weight: float
    training: TrainConfig = field(init=False)
    """The training loop's settings, built (and range-checked) from the fields above."""
    adaptation: DomainConfig = field(init=False)
    """The domain adaptation between datasets (`mgc.domain`), from `domain` and
    `domain_weight`."""

    def __post_init__(self) -> None:
        if not self.seeds or not all(0 <= seed < 2**32 for seed in self.seeds):
            raise invalid("seeds", list(self.seeds),
                          f"expected a non-empty list of integers in [0, {2**32 - 1}]")
        _names("classifiers", self.classifiers, [*CLASSIFIER_KINDS, ZERO_SHOT])
        if self.classifiers[0] == ZERO_SHOT:
            raise invalid("classifiers", list(self.classifiers),
                          f"{ZERO_SHOT} cannot come first: the first kind is the model each "
                          "train stage ships, and zero-shot trains none")
        if not self.layer:
            raise invalid("layer", self.layer, f"expected {LAST}, {WEIGHTED} or a layer name")
        check_range("threads", self.threads, 1, 256)
        check_range("workers", self.workers, 1, 256)
        object.__setattr__(self, "training", TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, patience=self.patience, smoothing=self.smoothing,
            min_delta=self.min_delta, noise=self.noise))
        object.__setattr__(self, "adaptation", DomainConfig(self.domain, self.domain_weight))


@dataclass(frozen=True)
class Params:
    """The whole params.yaml, typed."""

    data: DataParams
    embed: EmbedParams
    merge: MergeParams
    train: TrainParams
    loss: LossConfig


def _embed(section: Any) -> EmbedParams:
    if not isinstance(section, Mapping) or "models" not in section:
        raise ConfigError("embed: expected a mapping with a `models` list")
    models = coerce(section["models"], tuple[str, ...], "embed.models")
    _names("embed.models", models, sorted(EXTRACTORS))
    for model in models:
        if model not in section:
            raise ConfigError(f"embed.{model}: missing settings block for a listed model")
    check_keys(section, "embed", {"models", "engine", "ray", *EXTRACTORS}, {"engine", "ray"})
    engine = coerce(section["engine"], str, "embed.engine")
    _choice("embed.engine", engine, ENGINES)
    ray = build(RayOptions, section["ray"], "embed.ray")
    blocks = {}
    for model in (name for name in section if name not in ("models", "engine", "ray")):
        key = f"embed.{model}"
        block = check_keys(section[model], key,   # `layers`: the model's check explains
                           {"clip", "batch_size", "layers", *EXTRACTORS[model].option_names()},
                           {"clip", "batch_size"})
        batch_size = coerce(block["batch_size"], int, f"{key}.batch_size")
        check_range(f"{key}.batch_size", batch_size, 1, 4096)
        clip = coerce(block["clip"], str, f"{key}.clip")
        _choice(f"{key}.clip", clip, CLIP_POLICIES)
        options = {name: value for name, value in block.items()
                   if name not in ("clip", "batch_size")}
        blocks[model] = ExtractorParams(clip, batch_size,
                                        EXTRACTORS[model].check_options(options, key))
    return EmbedParams(models, blocks, engine, ray)


def _check_layer(layer: str, embed: EmbedParams) -> None:
    """`train.layer` must name something every listed extractor emits, from its
    `layers: all` file: checked here, so a wrong name fails before any extraction runs."""
    if layer == LAST:
        return
    for model in embed.models:
        options = embed[model].options
        names = [spec.name for spec in EXTRACTORS[model].layer_specs(options)]
        if not names:
            raise invalid("train.layer", layer, f"{model} has no named layers (only "
                          f"{LAST}); leave it out of embed.models for this run")
        if layer != WEIGHTED and layer not in names:
            raise invalid("train.layer", layer, f"not a layer of {model}; its layers: "
                          f"{', '.join(names)} (or {LAST}, {WEIGHTED})")
        if options.get("layers", LAST) != ALL:
            raise invalid("train.layer", layer, f"needs every layer of {model} extracted: "
                          f"set embed.{model}.layers: {ALL}")


def _loss(section: Any) -> LossConfig:
    settings = {f.name for f in fields(LossConfig)} - {"weights"}
    check_keys(section, "loss", {*TERMS, *settings}, {*TERMS, *settings})
    weights = {key: coerce(section[key], float, f"loss.{key}") for key in TERMS}
    return build(LossConfig, {key: section[key] for key in settings}, "loss",
                 fixed={"weights": weights})


def parse_params(raw: Any) -> Params:
    """Validate the whole params mapping and return it typed."""
    try:
        sections = {"data", "embed", "merge", "train", "loss"}
        top = check_keys(raw, "", sections, sections, file=str(PARAMS_FILE))
        data = build(DataParams, top["data"], "data")
        train = build(TrainParams, top["train"], "train")
        _names("train.sets", train.sets, [*data.datasets, JOINT])
        embed = _embed(top["embed"])
        _check_layer(train.layer, embed)
        return Params(data=data, embed=embed,
                      merge=build(MergeParams, top["merge"], "merge"), train=train,
                      loss=_loss(top["loss"]))
    except ConfigError as error:
        raise ParamsError(str(error)) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml (with YAML 1.2 scalars, as DVC writes `-S` values)."""
    return parse_params(load_yaml12(Path(path).read_text()))
