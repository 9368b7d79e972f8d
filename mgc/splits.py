"""Train/validation/test splits, computed once per dataset and protocol.

The split is a function of the track table alone, never of an extractor's output, so every
extractor is scored on the same test tracks (the authors' code split each extractor's
array separately and so tested each on different tracks).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from mgc.config import invalid
from mgc.datasets import Dataset, usable_tracks
from mgc.errors import DataError
from mgc.split_roles import FOLD_PREFIX

PROTOCOLS = ("paper", "standard", "artist", "kfold")
MIN_TRACKS_PER_CLASS = 3
"""One each for train, validation and test: a class with fewer cannot be split."""


def paper_split(tracks: pd.DataFrame, stratified: bool, seed: int = 42,
                test_fraction: float = 0.2, val_fraction: float = 0.1) -> pd.Series:
    """The authors' split: random 80/20 with seed 42, validation carved from the train part.

    GTZAN was stratified by genre and FMA was not; `stratified` chooses. The validation part
    (for early stopping, which the authors did by CV on train) is `val_fraction` of train,
    stratified so every genre is seen, and so at least one track per genre on small corpora.
    """
    ordered = tracks.sort_values("track_id", kind="stable")
    ids = ordered["track_id"].to_numpy()
    labels = ordered["label"].to_numpy()
    train_ids, test_ids, train_labels, _ = train_test_split(
        ids, labels, test_size=test_fraction, random_state=seed,
        stratify=labels if stratified else None,
    )
    n_val = max(round(val_fraction * len(train_ids)), len(set(train_labels)))
    _, val_ids = train_test_split(
        train_ids, test_size=n_val, random_state=seed, stratify=train_labels,
    )
    split = pd.Series("train", index=ids, dtype=object)
    split[val_ids] = "val"
    split[test_ids] = "test"
    return split.reindex(tracks["track_id"]).reset_index(drop=True)


def _held_out_fold(part: pd.DataFrame, fraction: float, seed: int) -> pd.Series:
    """The track ids of one fold of about `fraction` of `part`, whole artists only, as
    stratified by genre as the artists allow."""
    n_splits = max(2, min(round(1 / fraction), part["artist_id"].nunique(),
                          int(part["label"].value_counts().min())))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, held = next(splitter.split(part, part["label"], part["artist_id"]))
    return part["track_id"].iloc[held]


def artist_split(tracks: pd.DataFrame, seed: int = 42, test_fraction: float = 0.2,
                 val_fraction: float = 0.1) -> pd.Series:
    """A split in which the songs of one artist never straddle train, validation and test
    (scikit-learn's StratifiedGroupKFold: test is one fold of about `test_fraction`, the
    validation part one fold of the rest), so the test measures genre, not artist, recall.
    """
    artists = tracks["artist_id"]
    if artists.isna().any() or (artists.astype(str).str.strip() == "").any():
        raise DataError(f"protocol 'artist': {int(artists.isna().sum())} track(s) have no "
                        "artist (a CSV `artist` column gives one to every track)")
    ordered = tracks.sort_values("track_id", kind="stable").reset_index(drop=True)
    test_ids = set(_held_out_fold(ordered, test_fraction, seed))
    rest = ordered[~ordered["track_id"].isin(test_ids)].reset_index(drop=True)
    val_ids = set(_held_out_fold(rest, val_fraction, seed))
    return tracks["track_id"].map(
        lambda t: "test" if t in test_ids else "val" if t in val_ids else "train")


def kfold_split(tracks: pd.DataFrame, folds: int, seed: int = 42) -> pd.Series:
    """`fold0` .. `fold<folds-1>` per track: scikit-learn's StratifiedKFold, shuffled with
    `seed`, so each genre is spread evenly over the folds (HEAR's 10-fold GTZAN protocol)."""
    ordered = tracks.sort_values("track_id", kind="stable")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold = pd.Series("", index=ordered["track_id"].to_numpy(), dtype=object)
    for k, (_, held) in enumerate(splitter.split(ordered, ordered["label"])):
        fold.iloc[held] = f"{FOLD_PREFIX}{k}"
    return fold.reindex(tracks["track_id"]).reset_index(drop=True)


class SmallClassesError(DataError):
    """Some classes have too few usable tracks for every part of the split to hold one."""


def small_classes(tracks: pd.DataFrame, minimum: int) -> dict[str, int]:
    """The labels with fewer than `minimum` usable tracks, with their counts, by label."""
    counts = usable_tracks(tracks)["label"].value_counts()
    return {str(label): int(count) for label, count in sorted(counts[counts < minimum].items())}


def _check_class_sizes(name: str, usable: pd.DataFrame,
                       needed: int = MIN_TRACKS_PER_CLASS) -> None:
    small = small_classes(usable, needed)
    if small:
        listed = ", ".join(f"{label!r} ({count})" for label, count in small.items())
        raise SmallClassesError(f"{name}: too few usable tracks to split class(es) {listed}; each "
                                f"needs at least {needed} (one per part: train, validation "
                                "and test, or one per fold)")


def make_split(dataset: Dataset, tracks: pd.DataFrame, raw_dir: Path, protocol: str,
               seed: int = 42, test_fraction: float = 0.2,
               val_fraction: float = 0.1, folds: int = 10) -> pd.DataFrame:
    """Split the usable tracks of `dataset` under `protocol`.

    Returns columns track_id, label, split ('train'/'val'/'test', or under `kfold` the
    track's fold, `fold0`..). Tracks the protocol leaves out (the GTZAN faults) are dropped.
    """
    if protocol not in PROTOCOLS:
        raise invalid("protocol", protocol, f"allowed values are {', '.join(PROTOCOLS)}")
    usable = usable_tracks(tracks)
    if protocol == "standard":
        split = dataset.standard_split(usable, raw_dir)
    elif protocol == "kfold":
        _check_class_sizes(dataset.name, usable, folds)
        split = kfold_split(usable, folds, seed)
    elif protocol == "artist":
        _check_class_sizes(dataset.name, usable)
        split = artist_split(usable, seed, test_fraction, val_fraction)
    else:
        _check_class_sizes(dataset.name, usable)
        split = paper_split(usable, dataset.paper_split_stratified, seed, test_fraction,
                            val_fraction)
    table = pd.DataFrame({"track_id": usable["track_id"], "label": usable["label"],
                          "split": split.to_numpy()})
    return table.dropna(subset=["split"]).reset_index(drop=True)
