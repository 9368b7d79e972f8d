"""mgc.labels: the paper's 18-class disjoint space, the 15-class canonical one, shared genres."""

from __future__ import annotations

import pandas as pd
import pytest

from mgc.labels import (
    canonical_genre,
    joint_label,
    merge_label_spaces,
    shared_classes,
    twin_classes,
)

GTZAN = ["blues", "classical", "country", "disco", "hiphop",
         "jazz", "metal", "pop", "reggae", "rock"]
FMA = ["Electronic", "Experimental", "Folk", "Hip-Hop",
       "Instrumental", "International", "Pop", "Rock"]


def _split_table(labels: list[str], prefix: str) -> pd.DataFrame:
    rows = [(f"{prefix}{i:03d}", label, ("train", "val", "test")[i % 3])
            for i, label in enumerate(labels * 2)]
    return pd.DataFrame(rows, columns=["track_id", "label", "split"])


@pytest.fixture
def splits() -> dict[str, pd.DataFrame]:
    return {"gtzan": _split_table(GTZAN, "g"), "fma_small": _split_table(FMA, "f")}


def test_disjoint_keeps_all_18_classes(splits: dict[str, pd.DataFrame]) -> None:
    table, label_map = merge_label_spaces(splits, "disjoint")
    assert table["label"].nunique() == 18
    assert {"gtzan/hiphop", "fma_small/Hip-Hop", "gtzan/pop", "fma_small/Pop"} <= set(
        table["label"])
    assert label_map["gtzan"]["rock"] == "gtzan/rock"
    assert label_map["fma_small"]["Rock"] == "fma_small/Rock"


def test_canonical_merges_hiphop_pop_rock_into_15(splits: dict[str, pd.DataFrame]) -> None:
    table, label_map = merge_label_spaces(splits, "canonical")
    assert table["label"].nunique() == 15
    for gtzan_label, fma_label in (("hiphop", "Hip-Hop"), ("pop", "Pop"), ("rock", "Rock")):
        assert label_map["gtzan"][gtzan_label] == label_map["fma_small"][fma_label]
    merged = table[table["label"] == label_map["gtzan"]["hiphop"]]
    assert set(merged["dataset"]) == {"gtzan", "fma_small"}
    assert set(merged["source_label"]) == {"hiphop", "Hip-Hop"}


def test_merge_keeps_every_row_with_its_split_and_source(splits: dict[str, pd.DataFrame]) -> None:
    table, _ = merge_label_spaces(splits, "canonical")
    assert len(table) == sum(len(t) for t in splits.values())
    assert list(table.columns) == ["dataset", "track_id", "label", "split", "source_label"]
    for dataset, original in splits.items():
        part = table[table["dataset"] == dataset].reset_index(drop=True)
        assert list(part["track_id"]) == list(original["track_id"])
        assert list(part["split"]) == list(original["split"])
        assert list(part["source_label"]) == list(original["label"])


def test_unknown_strategy_names_key_and_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"^strategy='union'.*disjoint, canonical"):
        joint_label("gtzan", "rock", "union")


def test_merge_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one dataset"):
        merge_label_spaces({}, "disjoint")


def test_canonical_genre_spellings() -> None:
    assert canonical_genre("Hip-Hop") == canonical_genre("hiphop") == "hiphop"
    assert canonical_genre("Rock") == "rock"
    assert canonical_genre("Old Time") == "oldtime"


def test_shared_classes_between_gtzan_and_fma() -> None:
    assert shared_classes(GTZAN, FMA) == {"hiphop": "Hip-Hop", "pop": "Pop", "rock": "Rock"}
    assert shared_classes(FMA, GTZAN) == {"Hip-Hop": "hiphop", "Pop": "pop", "Rock": "rock"}


def test_shared_classes_reads_through_disjoint_prefixes() -> None:
    joint = [joint_label("gtzan", g, "disjoint") for g in GTZAN]
    assert shared_classes(FMA, joint) == {"Hip-Hop": "gtzan/hiphop", "Pop": "gtzan/pop",
                                          "Rock": "gtzan/rock"}
    assert shared_classes(["Folk", "Electronic"], joint) == {}


def test_twin_classes_are_the_genres_counted_twice() -> None:
    classes = ["synth_fma/Hip-Hop", "synth_fma/Pop", "synth_fma/Folk", "synth_gtzan/hiphop",
               "synth_gtzan/pop", "synth_gtzan/jazz"]
    assert twin_classes(classes) == {
        "synth_fma/Hip-Hop": ["synth_gtzan/hiphop"], "synth_gtzan/hiphop": ["synth_fma/Hip-Hop"],
        "synth_fma/Pop": ["synth_gtzan/pop"], "synth_gtzan/pop": ["synth_fma/Pop"]}
    assert twin_classes(["hiphop", "pop", "jazz"]) == {}
