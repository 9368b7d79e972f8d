"""Registry of datasets: adding one is adding one module to this package.

Every module here is imported below, and each `Dataset` subclass that sets a `name`
registers itself (`base.REGISTRY`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from mgc.config import ConfigError, invalid
from mgc.datasets.base import REGISTRY, TRACK_COLUMNS, USABLE_STATUSES, Dataset
from mgc.datasets.indexing import index_tracks, prepare_dataset, usable_tracks

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def dataset_kind(name: str, source_options: Mapping[str, Any]) -> type[Dataset]:
    """The class of dataset `name`: its options' `kind` (any registered dataset, e.g.
    `folder` or `csv` for a collection of your own), or the dataset registered as `name`."""
    kind = source_options.get("kind", name)
    if kind != name and kind not in REGISTRY:
        raise invalid(f"{name}.kind", kind, f"allowed values are {', '.join(sorted(REGISTRY))}")
    return REGISTRY.get_class(kind)


def get_dataset(name: str, **source_options: Any) -> Dataset:
    """Build dataset `name` with its source options; a bad option is a ConfigError naming
    `<name>.<option>`. With `kind`, `name` is yours and the class is the kind's."""
    dataset_class = dataset_kind(name, source_options)
    options = dataset_class.check_options(
        {key: value for key, value in source_options.items() if key != "kind"}, name)
    try:
        dataset = dataset_class(**options)
    except ConfigError as error:
        raise error.within(name) from None
    dataset.name = name
    return dataset


__all__ = ["REGISTRY", "TRACK_COLUMNS", "USABLE_STATUSES", "Dataset",
           "dataset_kind", "get_dataset", "index_tracks", "prepare_dataset",
           "usable_tracks"]
