"""params.yaml, parsed once into typed, validated objects.

Every bad value fails at once with its dotted key, the value and what is allowed, before a
stage does any work: a typo in `dvc exp run -S` should cost seconds, not an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgc.datasets import REGISTRY as DATASETS
from mgc.extract import CLIP_POLICIES
from mgc.extractors import REGISTRY as EXTRACTORS
from mgc.labels import MERGE_STRATEGIES
from mgc.losses import LossWeights
from mgc.model import CLASSIFIER_KINDS, ClassifierConfig
from mgc.splits import PROTOCOLS
from mgc.sweeps import load_yaml12
from mgc.train import NoiseConfig, TrainConfig

JOINT = "joint"


class ParamsError(ValueError):
    """A params.yaml value that is missing, misspelt or out of range."""


@dataclass(frozen=True)
class EmbedParams:
    """One extractor's `embed.<model>` block: extraction settings + extractor options."""

    clip: str
    batch_size: int
    options: dict[str, Any]


@dataclass(frozen=True)
class Params:
    datasets: tuple[str, ...]
    protocol: str
    split_seed: int
    test_fraction: float
    val_fraction: float
    sources: dict[str, dict[str, Any]]
    models: tuple[str, ...]
    embed: dict[str, EmbedParams]
    merge_strategy: str
    train_sets: tuple[str, ...]
    seeds: tuple[int, ...]
    classifiers: tuple[str, ...]
    threads: int
    classifier: ClassifierConfig
    training: TrainConfig
    loss: LossWeights


def _section(mapping: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise ParamsError(f"{key}: expected a mapping, got {mapping!r}")
    unknown = sorted(str(name) or repr(name) for name in set(mapping) - allowed)
    if unknown:
        dotted = unknown if key == "params.yaml" else [f"{key}.{name}" for name in unknown]
        raise ParamsError(f"{', '.join(dotted)}: unknown key(s) in {key}; "
                          f"allowed: {', '.join(sorted(allowed))}")
    missing = allowed - set(mapping)
    if missing:
        raise ParamsError(f"{key}: missing key(s) {', '.join(sorted(missing))}")
    return mapping


def _names(value: Any, key: str, allowed: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ParamsError(f"{key}={value!r}: expected a non-empty list from {', '.join(allowed)}")
    for name in value:
        if name not in allowed:
            raise ParamsError(f"{key}: {name!r} is not allowed; allowed: {', '.join(allowed)}")
    if len(set(value)) != len(value):
        raise ParamsError(f"{key}={value!r}: contains duplicates")
    return tuple(value)


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ParamsError(f"{key}={value!r}: allowed values are {', '.join(allowed)}")
    return value


def _number(value: Any, key: str, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamsError(f"{key}={value!r}: expected a number in [{low}, {high}]")
    if not low <= value <= high:
        raise ParamsError(f"{key}={value!r}: must be between {low} and {high}")
    if kind is int and value != int(value):
        raise ParamsError(f"{key}={value!r}: expected an integer")
    return kind(value)


def _typed(section: dict[str, Any], key: str, kinds: dict[str, type]) -> dict[str, Any]:
    """Check (and coerce) the type of each value in `kinds`, naming its key.

    The typed objects check ranges but assume numbers: without this, `-S train.epochs=2.5`
    or `-S train.learning_rate=fast` would fail deep inside training, not here.
    """
    typed = dict(section)
    for name, kind in kinds.items():
        value = section[name]
        if kind is bool:
            valid = isinstance(value, bool)
        else:
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                kind is float or float(value).is_integer())
        if not valid:
            expected = {bool: "true or false", int: "an integer", float: "a number"}[kind]
            raise ParamsError(f"{key}.{name}={value!r}: expected {expected}")
        typed[name] = kind(value)
    return typed


def _build(factory: Any, key: str, **values: Any) -> Any:
    try:
        return factory(**values)
    except TypeError as error:
        raise ParamsError(f"{key}: {error}") from None
    except ValueError as error:
        raise ParamsError(str(error)) from None


def parse_params(raw: dict[str, Any]) -> Params:
    """Validate the whole params mapping and return it typed."""
    top = _section(raw, "params.yaml", {"data", "embed", "merge", "train", "loss"})
    data = _section(top["data"], "data", {"datasets", "protocol", "seed", "test_fraction",
                                          "val_fraction", "sources"})
    datasets = _names(data["datasets"], "data.datasets", sorted(DATASETS))
    sources = data["sources"]
    if not isinstance(sources, dict):
        raise ParamsError(f"data.sources={sources!r}: expected a mapping")
    for name, options in sources.items():
        if name not in DATASETS:
            raise ParamsError(f"data.sources: unknown dataset {name!r}; "
                              f"allowed: {', '.join(sorted(DATASETS))}")
        if options is not None and not isinstance(options, dict):
            raise ParamsError(f"data.sources.{name}={options!r}: expected a mapping of "
                              "source options (or null)")
    embed = top["embed"]
    if not isinstance(embed, dict) or "models" not in embed:
        raise ParamsError("embed: expected a mapping with a `models` list")
    models = _names(embed["models"], "embed.models", sorted(EXTRACTORS))
    embed_params = {}
    for model in models:
        block = embed.get(model)
        if not isinstance(block, dict):
            raise ParamsError(f"embed.{model}: missing settings block for a listed model")
        options = {k: v for k, v in block.items() if k not in ("clip", "batch_size")}
        embed_params[model] = EmbedParams(
            clip=_choice(block.get("clip"), f"embed.{model}.clip", CLIP_POLICIES),
            batch_size=_number(block.get("batch_size"), f"embed.{model}.batch_size", int, 1, 4096),
            options=options,
        )
    merge = _section(top["merge"], "merge", {"strategy"})
    train = _section(top["train"], "train", {
        "sets", "seeds", "classifiers", "threads", "epochs", "batch_size", "learning_rate",
        "weight_decay", "patience", "classifier", "noise"})
    train_sets = _names(train["sets"], "train.sets", [*datasets, JOINT])
    seeds = train["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds):
        raise ParamsError(f"train.seeds={seeds!r}: expected a non-empty list of integers "
                          f"in [0, {2**32 - 1}]")
    train = _typed(train, "train", {"epochs": int, "batch_size": int, "patience": int,
                                    "learning_rate": float, "weight_decay": float})
    classifier = _typed(_section(train["classifier"], "train.classifier",
                                 {"hidden_layers", "width_multiplier", "dropout", "activation",
                                  "batchnorm", "embedding_dim"}),
                        "train.classifier",
                        {"hidden_layers": int, "width_multiplier": float, "dropout": float,
                         "batchnorm": bool, "embedding_dim": int})
    noise = _typed(_section(train["noise"], "train.noise", {"mode", "snr_db"}), "train.noise",
                   {"snr_db": float})
    loss = _typed(_section(top["loss"], "loss", {"w_ce", "w_ce_pair", "w_contrastive",
                                                 "w_triplet", "margin"}),
                  "loss", dict.fromkeys(("w_ce", "w_ce_pair", "w_contrastive", "w_triplet",
                                         "margin"), float))
    return Params(
        datasets=datasets,
        protocol=_choice(data["protocol"], "data.protocol", PROTOCOLS),
        split_seed=_number(data["seed"], "data.seed", int, 0, 2**32 - 1),
        test_fraction=_number(data["test_fraction"], "data.test_fraction", float, 0.05, 0.5),
        val_fraction=_number(data["val_fraction"], "data.val_fraction", float, 0.05, 0.5),
        sources={name: dict(sources.get(name) or {}) for name in datasets},
        models=models,
        embed=embed_params,
        merge_strategy=_choice(merge["strategy"], "merge.strategy", MERGE_STRATEGIES),
        train_sets=train_sets,
        seeds=tuple(seeds),
        classifiers=_names(train["classifiers"], "train.classifiers", list(CLASSIFIER_KINDS)),
        threads=_number(train["threads"], "train.threads", int, 1, 256),
        classifier=_build(ClassifierConfig, "train.classifier", kind="dnn", **classifier),
        training=_build(TrainConfig, "train", epochs=train["epochs"],
                        batch_size=train["batch_size"], learning_rate=train["learning_rate"],
                        weight_decay=train["weight_decay"], patience=train["patience"],
                        noise=_build(NoiseConfig, "train.noise", **noise)),
        loss=_build(LossWeights, "loss", **loss),
    )


def load_params(path: Path = Path("params.yaml")) -> Params:
    """Read and validate params.yaml.

    Read with YAML 1.2 scalars, as DVC writes `-S` values: `5e-4` is a float and `off`
    (train.noise.mode) a string, where PyYAML's YAML 1.1 would give a string and False.
    """
    return parse_params(load_yaml12(Path(path).read_text()))
