"""Registry of datasets: adding one is adding one module and one entry here."""

from __future__ import annotations

from typing import Any

from mgc.datasets.base import (
    SPLIT_NAMES,
    TRACK_COLUMNS,
    USABLE_STATUSES,
    Dataset,
    build_dataset,
    index_tracks,
    prepare_dataset,
    usable_tracks,
)
from mgc.datasets.fma import FmaSmall
from mgc.datasets.gtzan import Gtzan
from mgc.datasets.synth import SynthFma, SynthGtzan

REGISTRY: dict[str, type[Dataset]] = {
    cls.name: cls for cls in (Gtzan, FmaSmall, SynthGtzan, SynthFma)
}


def get_dataset(name: str, **source_options: Any) -> Dataset:
    """Build dataset `name` with its `data.sources.<name>` options."""
    try:
        dataset_class = REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"data.datasets: unknown dataset {name!r}; available: {', '.join(sorted(REGISTRY))}"
        ) from None
    try:
        return dataset_class(**source_options)
    except TypeError as error:
        raise ValueError(f"data.sources.{name}: {error}") from None


__all__ = ["REGISTRY", "SPLIT_NAMES", "TRACK_COLUMNS", "USABLE_STATUSES", "Dataset",
           "build_dataset", "get_dataset", "index_tracks", "prepare_dataset", "usable_tracks"]
