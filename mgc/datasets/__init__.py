"""Registry of datasets: adding one is adding one module to this package.

Every module here is imported below, and each `Dataset` subclass that sets a `name`
registers itself (`base.REGISTRY`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from mgc.config import ConfigError
from mgc.datasets.base import REGISTRY, TRACK_COLUMNS, USABLE_STATUSES, Dataset
from mgc.datasets.indexing import index_tracks, prepare_dataset, usable_tracks

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def get_dataset(name: str, **source_options: Any) -> Dataset:
    """Build dataset `name` with its source options; a bad option is a ConfigError naming
    `<name>.<option>`."""
    dataset_class = REGISTRY.get_class(name)
    options = dataset_class.check_options(source_options, name)
    try:
        return dataset_class(**options)
    except ConfigError as error:
        raise error.within(name) from None


__all__ = ["REGISTRY", "TRACK_COLUMNS", "USABLE_STATUSES", "Dataset",
           "get_dataset", "index_tracks", "prepare_dataset",
           "usable_tracks"]
