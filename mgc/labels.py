"""Label spaces of several datasets and how they are merged for joint training.

The paper joined GTZAN's 10 and FMA-small's 8 genres into 18 classes without merging, so
hip-hop, pop and rock each appear twice (`disjoint`). `canonical` merges genres with the
same meaning into one class, which is what a user of a joint model would expect.
"""

from __future__ import annotations

import pandas as pd

from mgc.config import invalid

MERGE_STRATEGIES = ("disjoint", "canonical")


def canonical_genre(label: str) -> str:
    """The dataset-independent spelling of a genre: 'Hip-Hop' and 'hiphop' -> 'hiphop'."""
    return label.lower().replace("-", "").replace(" ", "")


def joint_label(dataset: str, label: str, strategy: str) -> str:
    """The class of (`dataset`, `label`) in the joint label space of `strategy`."""
    if strategy == "disjoint":
        return f"{dataset}/{label}"
    if strategy == "canonical":
        return canonical_genre(label)
    raise invalid("strategy", strategy, f"allowed values are {', '.join(MERGE_STRATEGIES)}")


def merge_label_spaces(splits: dict[str, pd.DataFrame], strategy: str) -> tuple[
        pd.DataFrame, dict[str, dict[str, str]]]:
    """Stack the split tables of several datasets into one joint table.

    Returns the table (dataset, track_id, label, split, source_label) and the label map
    {dataset: {source label: joint label}}, which is written next to it so every joint
    class can be traced to the genres it came from.
    """
    frames, label_map = [], {}
    for dataset, table in sorted(splits.items()):
        mapping = {label: joint_label(dataset, label, strategy)
                   for label in sorted(table["label"].unique())}
        label_map[dataset] = mapping
        frames.append(pd.DataFrame({
            "dataset": dataset,
            "track_id": table["track_id"].astype(str),
            "label": table["label"].map(mapping),
            "split": table["split"],
            "source_label": table["label"],
        }))
    if not frames:
        raise ValueError("merge needs at least one dataset")
    return pd.concat(frames, ignore_index=True), label_map


def shared_classes(source_labels: list[str], target_labels: list[str]) -> dict[str, str]:
    """Map each source class to the target class of the same canonical genre, where one exists.

    Used for cross-dataset scoring: a GTZAN model can be scored on FMA tracks of the genres
    both datasets share (hip-hop, pop, rock) and on nothing else.
    """
    target_by_canonical = {canonical_genre(label.split("/")[-1]): label for label in target_labels}
    return {label: target_by_canonical[canonical_genre(label.split("/")[-1])]
            for label in source_labels
            if canonical_genre(label.split("/")[-1]) in target_by_canonical}


def twin_classes(class_names: list[str]) -> dict[str, list[str]]:
    """Each `disjoint` class ('dataset/label') whose canonical genre is also a class of
    another dataset, mapped to those twins: under the paper's 18 classes, GTZAN's hiphop,
    pop and rock and FMA's Hip-Hop, Pop and Rock. Classes without a dataset prefix (the
    `canonical` space) have no twins."""
    by_genre: dict[str, list[str]] = {}
    for name in class_names:
        if "/" in name:
            by_genre.setdefault(canonical_genre(name.split("/", 1)[1]), []).append(name)
    return {name: [twin for twin in group if twin.split("/")[0] != name.split("/")[0]]
            for group in by_genre.values() for name in group
            if any(twin.split("/")[0] != name.split("/")[0] for twin in group)}
