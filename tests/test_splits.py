"""mgc.splits: the paper's 80/20 split, the standard lists, k-fold; all independent of row order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from mgc.datasets import get_dataset
from mgc.datasets.gtzan import split_from_lists
from mgc.split_roles import fold_roles
from mgc.splits import make_split, paper_split

GENRES = ["blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock"]


def _gtzan_shaped() -> pd.DataFrame:
    """1000 tracks, 10 genres x 100, as GTZAN's index has them (all usable)."""
    rows = [(f"{g}.{i:05d}", g) for g in GENRES for i in range(100)]
    table = pd.DataFrame(rows, columns=["track_id", "label"])
    table["status"] = "ok"
    return table


def _fma_shaped(n: int = 8000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(160_000, size=n, replace=False))
    labels = np.repeat([f"genre{k}" for k in range(8)], n // 8)
    return pd.DataFrame({"track_id": [f"{t:06d}" for t in ids], "label": rng.permutation(labels),
                         "status": "ok"})


def _by_track(tracks: pd.DataFrame, split: pd.Series) -> dict[str, str]:
    return dict(zip(tracks["track_id"], split, strict=True))


def test_paper_split_of_gtzan_is_800_200_stratified() -> None:
    tracks = _gtzan_shaped()
    split = paper_split(tracks, stratified=True, seed=42, test_fraction=0.2, val_fraction=0.1)
    frame = tracks.assign(split=split.to_numpy())
    counts = frame.groupby(["label", "split"]).size().unstack()
    assert (counts["test"] == 20).all()
    assert ((counts["train"] + counts["val"]) == 80).all()
    assert (counts["val"] == 8).all()
    assert (frame["split"] == "test").sum() == 200
    assert (frame["split"] != "test").sum() == 800


def test_paper_test_set_is_sklearns_on_sorted_ids() -> None:
    """The authors' call: train_test_split(test_size=0.2, random_state=42), stratified on GTZAN."""
    tracks = _gtzan_shaped()
    split = paper_split(tracks, stratified=True, seed=42)
    _, test_ids = train_test_split(tracks["track_id"].to_numpy(), test_size=0.2, random_state=42,
                                   stratify=tracks["label"].to_numpy())
    assert set(tracks["track_id"][split.to_numpy() == "test"]) == set(test_ids)


def test_validation_is_carved_from_train_only() -> None:
    tracks = _gtzan_shaped()
    with_val = paper_split(tracks, stratified=True, seed=42, val_fraction=0.1)
    other_val = paper_split(tracks, stratified=True, seed=42, val_fraction=0.25)
    assert set(with_val.unique()) == {"train", "val", "test"}
    np.testing.assert_array_equal(with_val == "test", other_val == "test")
    assert (other_val == "val").sum() == 200


def test_paper_split_of_fma_is_unstratified_80_20() -> None:
    tracks = _fma_shaped()
    split = paper_split(tracks, stratified=False, seed=42)
    assert (split == "test").sum() == 1600
    _, test_ids = train_test_split(tracks["track_id"].to_numpy(), test_size=0.2, random_state=42)
    assert set(tracks["track_id"][split.to_numpy() == "test"]) == set(test_ids)
    per_genre = tracks[split.to_numpy() == "test"].groupby("label").size()
    assert per_genre.nunique() > 1, "an unstratified split should not balance genres exactly"
    stratified = paper_split(tracks, stratified=True, seed=42)
    assert (tracks[stratified.to_numpy() == "test"].groupby("label").size() == 200).all()


def test_paper_split_is_deterministic_and_seeded() -> None:
    tracks = _gtzan_shaped()
    first = paper_split(tracks, stratified=True, seed=42)
    pd.testing.assert_series_equal(first, paper_split(tracks, stratified=True, seed=42))
    assert not first.equals(paper_split(tracks, stratified=True, seed=7))


@pytest.mark.parametrize("stratified", [True, False])
def test_paper_split_ignores_input_row_order(stratified: bool) -> None:
    tracks = _gtzan_shaped()
    shuffled = tracks.sample(frac=1.0, random_state=3).reset_index(drop=True)
    original = paper_split(tracks, stratified=stratified, seed=42)
    reordered = paper_split(shuffled, stratified=stratified, seed=42)
    assert _by_track(tracks, original) == _by_track(shuffled, reordered)


def test_make_split_drops_unusable_tracks() -> None:
    tracks = _gtzan_shaped()
    tracks.loc[tracks["track_id"] == "jazz.00054", "status"] = "unreadable"
    tracks.loc[tracks["track_id"] == "rock.00001", "status"] = "short"
    table = make_split(get_dataset("synth_gtzan"), tracks, Path("unused"), "paper")
    assert len(table) == 999
    assert "jazz.00054" not in set(table["track_id"])
    assert "rock.00001" in set(table["track_id"])


def test_standard_split_follows_the_lists(tmp_path: Path) -> None:
    """GTZAN's fault-filtered lists: listed tracks get their split, the rest are left out."""
    tracks = _gtzan_shaped()
    list_dir = tmp_path / "genres" / "split_lists"
    list_dir.mkdir(parents=True)
    listed = {"train_filtered.txt": ["blues/blues.00000.wav", "rock/rock.00099.wav"],
              "valid_filtered.txt": ["jazz/jazz.00010.wav"],
              "test_filtered.txt": ["pop/pop.00042.wav", "metal/metal.00003.wav"]}
    for name, lines in listed.items():
        (list_dir / name).write_text("\n".join(lines) + "\n")
    table = make_split(get_dataset("synth_gtzan"), tracks, tmp_path, "standard")
    assert dict(zip(table["track_id"], table["split"], strict=True)) == {
        "blues.00000": "train", "rock.00099": "train", "jazz.00010": "val",
        "pop.00042": "test", "metal.00003": "test"}


def test_standard_split_needs_its_lists(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train_filtered\.txt"):
        make_split(get_dataset("synth_gtzan"), _gtzan_shaped(), tmp_path, "standard")


def test_standard_split_of_fma_is_the_official_column() -> None:
    tracks = _fma_shaped(80)
    tracks["official_split"] = ["train"] * 60 + ["val"] * 10 + [None] * 2 + ["test"] * 8
    table = make_split(get_dataset("synth_fma"), tracks, Path("unused"), "standard")
    assert len(table) == 78
    assert table["split"].value_counts().to_dict() == {"train": 60, "val": 10, "test": 8}


def test_synth_standard_split_from_its_own_lists(synth_gtzan) -> None:
    table = make_split(synth_gtzan.dataset, synth_gtzan.tracks, synth_gtzan.raw_dir, "standard")
    listed = split_from_lists(synth_gtzan.tracks, synth_gtzan.raw_dir / "genres" / "split_lists")
    usable = synth_gtzan.tracks["status"] == "ok"
    assert dict(zip(table["track_id"], table["split"], strict=True)) == dict(
        zip(synth_gtzan.tracks["track_id"][usable], listed[usable], strict=True))
    per_genre = table.groupby(["label", "split"]).size().unstack(fill_value=0)
    assert (per_genre[["train", "test"]] > 0).all().all()
    unusable = synth_gtzan.tracks.loc[~usable, "track_id"]
    assert len(unusable) == 1 and not set(unusable) & set(table["track_id"])


def test_unknown_protocol_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"protocol='random'.*paper, standard"):
        make_split(get_dataset("synth_gtzan"), _gtzan_shaped(), Path("unused"), "random")


def test_kfold_split_puts_each_track_in_one_stratified_fold() -> None:
    tracks = _gtzan_shaped()
    table = make_split(get_dataset("gtzan"), tracks, Path("."), "kfold", folds=10)
    assert sorted(table["split"].unique()) == [f"fold{k}" for k in range(10)]
    counts = table.groupby(["split", "label"]).size()
    assert (counts == 10).all()  # 100 tracks per genre over 10 folds: 10 of each in each fold
    again = make_split(get_dataset("gtzan"), tracks.sample(frac=1, random_state=3),
                       Path("."), "kfold", folds=10)
    assert _by_track(table, table["split"]) == _by_track(again, again["split"])


def test_fold_roles_test_one_fold_validate_the_next() -> None:
    split = np.array([f"fold{k}" for k in range(5)] * 2)
    roles = fold_roles(split, 4, 5)
    assert list(roles[:5]) == ["val", "train", "train", "train", "test"]  # fold 0 follows 4
    tested = [np.flatnonzero(fold_roles(split, k, 5) == "test") for k in range(5)]
    assert sorted(np.concatenate(tested)) == list(range(10))  # every track tested once


def test_kfold_needs_a_track_per_fold_in_each_class() -> None:
    tracks = _gtzan_shaped().groupby("label").head(5)
    with pytest.raises(ValueError, match=r"'blues' \(5\).*at least 10"):
        make_split(get_dataset("gtzan"), tracks, Path("."), "kfold", folds=10)
