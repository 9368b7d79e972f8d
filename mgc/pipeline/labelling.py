"""The split and merge stages: which tracks train, validate and test under `data.protocol`,
and under which class of the joint label space (`merge.strategy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mgc.atomic import write_json, write_parquet
from mgc.labels import merge_label_spaces
from mgc.pipeline.corpus import source_dataset
from mgc.pipeline.layout import Layout
from mgc.splits import SmallClassesError, make_split, small_classes

if TYPE_CHECKING:
    from mgc.pipeline.params import Params


def split_dataset(params: Params, name: str, layout: Layout) -> tuple[pd.DataFrame,
                                                                       dict[str, int]]:
    """The `data.protocol` split of one dataset's usable tracks, written to its split file,
    and the classes `data.min_class_tracks` left out (label -> usable tracks)."""
    tracks = pd.read_parquet(layout.tracks(name))
    minimum = params.data.min_class_tracks
    left_out = small_classes(tracks, minimum) if minimum is not None else {}
    try:
        split = make_split(source_dataset(params, name), tracks[~tracks["label"].isin(left_out)],
                           layout.raw(name), params.data.protocol, seed=params.data.seed,
                           test_fraction=params.data.test_fraction,
                           val_fraction=params.data.val_fraction, folds=params.data.folds)
    except SmallClassesError as error:
        raise SmallClassesError(f"{error}. To leave such classes out with a warning instead, set "
                        "data.min_class_tracks (e.g. -S data.min_class_tracks=3)") from None
    write_parquet(layout.split(name), split)
    return split, left_out


def merge_datasets(params: Params, layout: Layout) -> pd.DataFrame:
    """The joint label space of every dataset (`merge.strategy`), and its label map."""
    splits = {name: pd.read_parquet(layout.split(name)) for name in params.data.datasets}
    joint, label_map = merge_label_spaces(splits, params.merge.strategy)
    write_parquet(layout.joint_labels, joint)
    write_json(layout.label_map, {"strategy": params.merge.strategy, "map": label_map})
    return joint
