"""The split and merge stages: which tracks train, validate and test under `data.protocol`,
and under which class of the joint label space (`merge.strategy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mgc.atomic import write_json, write_parquet
from mgc.labels import merge_label_spaces
from mgc.pipeline.corpus import source_dataset
from mgc.pipeline.layout import Layout
from mgc.splits import make_split

if TYPE_CHECKING:
    from mgc.pipeline.params import Params


def split_dataset(params: Params, name: str, layout: Layout) -> pd.DataFrame:
    """The `data.protocol` split of one dataset's usable tracks, written to its split file."""
    split = make_split(source_dataset(params, name), pd.read_parquet(layout.tracks(name)),
                       layout.raw(name), params.data.protocol, seed=params.data.seed,
                       test_fraction=params.data.test_fraction,
                       val_fraction=params.data.val_fraction, folds=params.data.folds)
    write_parquet(layout.split(name), split)
    return split


def merge_datasets(params: Params, layout: Layout) -> pd.DataFrame:
    """The joint label space of every dataset (`merge.strategy`), and its label map."""
    splits = {name: pd.read_parquet(layout.split(name)) for name in params.data.datasets}
    joint, label_map = merge_label_spaces(splits, params.merge.strategy)
    write_parquet(layout.joint_labels, joint)
    write_json(layout.label_map, {"strategy": params.merge.strategy, "map": label_map})
    return joint
