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


def check_source(name: str, source_options: Mapping[str, Any]) -> tuple[type[Dataset],
                                                                         dict[str, Any]]:
    """The class of dataset `name` and its other options, typed and checked against that
    class's constructor (a ConfigError names `<name>.<option>`).

    The class is the options' `kind` (any registered dataset, e.g. `folder` or `csv` for a
    collection of your own) or, without one, the dataset registered as `name`.
    """
    kind = source_options.get("kind", name)
    if kind != name and kind not in REGISTRY:
        raise invalid(f"{name}.kind", kind, f"allowed values are {', '.join(sorted(REGISTRY))}")
    dataset_class = REGISTRY.get_class(kind)
    options = {key: value for key, value in source_options.items() if key != "kind"}
    return dataset_class, dataset_class.check_options(options, name)


def get_dataset(name: str, **source_options: Any) -> Dataset:
    """Build dataset `name` with its source options (see `check_source`); the instance
    carries `name`, yours when the options give a `kind`."""
    dataset_class, options = check_source(name, source_options)
    try:
        dataset = dataset_class(**options)
    except ConfigError as error:
        raise error.within(name) from None
    dataset.name = name
    return dataset


__all__ = ["REGISTRY", "TRACK_COLUMNS", "USABLE_STATUSES", "Dataset",
           "check_source", "get_dataset", "index_tracks", "prepare_dataset",
           "usable_tracks"]
