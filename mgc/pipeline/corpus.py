"""The download stage: each dataset fetched (or rendered), unpacked and indexed into the
layout, and the dataset objects every later stage builds from `data.sources`."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mgc.atomic import process_exists, write_parquet
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


STAGING_PREFIX = ".staging-"


def remove_dead_staging(data_dir: Path) -> list[Path]:
    """Delete `data_dir/.staging-<pid>-*` folders whose process is gone (and unnamed ones
    from before staging folders carried their pid); return what was removed."""
    removed = []
    for folder in data_dir.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if not (pid.isdigit() and process_exists(int(pid))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def build_dataset(dataset: Dataset, layout: Layout, progress: bool = True) -> pd.DataFrame:
    """Prepare `dataset` into `layout.raw(name)` and write its track table; return the table.

    Archives are fetched into a staging folder beside the data, so an interrupted run's
    debris lives in one place (ignored by git and DVC) and never inside an output; the
    folder is named after this process, and those of processes that are gone (a killed
    run) are removed first.
    """
    layout.data.mkdir(parents=True, exist_ok=True)
    remove_dead_staging(layout.data)
    with tempfile.TemporaryDirectory(dir=layout.data,
                                     prefix=f"{STAGING_PREFIX}{os.getpid()}-") as staging:
        tracks = prepare_dataset(dataset, layout.raw(dataset.name), Path(staging), progress)
    write_parquet(layout.tracks(dataset.name), tracks)
    return tracks
