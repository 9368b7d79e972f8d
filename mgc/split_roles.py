"""What a track's split value means: `train`, `val` or `test`, or under the `kfold`
protocol its fold (`fold<k>`), which each round of cross-validation turns into a role.

Apart from `mgc.splits` (which computes splits) because extraction reads it too, for the
tracks an extractor may be fitted on, and should not rerun when the splitting code changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FOLD_PREFIX = "fold"


def fold_roles(split: np.ndarray, k: int, folds: int) -> np.ndarray:
    """The train/val/test roles of one k-fold round: fold k tests, the next fold (mod
    `folds`) validates for early stopping, as HEAR does, and the rest train."""
    roles = np.full(len(split), "train", dtype=object)
    roles[split == f"{FOLD_PREFIX}{k}"] = "test"
    roles[split == f"{FOLD_PREFIX}{(k + 1) % folds}"] = "val"
    return roles.astype(str)


def training_tracks(split: pd.Series) -> pd.Series:
    """Which tracks an extractor's `fit` may see: the train split; under `kfold`, whose
    every track is tested once, all of them (what is fitted, such as a log-mel mean and
    std, never reads a label)."""
    return (split == "train") | split.astype(str).str.startswith(FOLD_PREFIX)
