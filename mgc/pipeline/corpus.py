"""The download stage: each dataset fetched (or rendered), unpacked and indexed into the
layout, and the dataset objects every later stage builds from `data.sources`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mgc.atomic import write_parquet
from mgc.config import ConfigError
from mgc.datasets import Dataset, get_dataset, prepare_dataset
from mgc.pipeline.layout import Layout

if TYPE_CHECKING:
    from mgc.pipeline.params import Params


def source_dataset(params: Params, name: str) -> Dataset:
    """Dataset `name` built with its `data.sources.<name>` options."""
    try:
        return get_dataset(name, **params.data.source(name))
    except ConfigError as error:
        raise error.within("data.sources") from None


def build_dataset(dataset: Dataset, layout: Layout, progress: bool = True) -> pd.DataFrame:
    """Prepare `dataset` into `layout.raw(name)` and write its track table; return the table.

    Archives are fetched into a staging folder beside the data, so an interrupted run's
    debris lives in one place (ignored by git and DVC) and never inside an output.
    """
    layout.data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.data, prefix=".staging-") as staging:
        tracks = prepare_dataset(dataset, layout.raw(dataset.name), Path(staging), progress)
    write_parquet(layout.tracks(dataset.name), tracks)
    return tracks
