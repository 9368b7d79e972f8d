"""Scores of a trained classifier (scikit-learn's), their mean and std over seeds, and what
they are scored on: embeddings aligned with their labels, and every test split a model can
label, its own and other datasets' tracks of the genres it knows (the paper's Table 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

from mgc.labels import shared_classes, twin_classes
from mgc.statistics import bootstrap_interval, per_track_correct


def classification_scores(y_true: np.ndarray, proba: np.ndarray,
                          class_names: Sequence[str]) -> dict[str, object]:
    """Accuracy, macro-F1, top-2 accuracy and per-class F1 of predicted probabilities.

    `y_true` holds indices into `class_names`, the columns of `proba`. Macro-F1 and the
    per-class F1 cover only the classes present in `y_true`, so a model trained on a joint
    label space is scored fairly on one dataset's test split.
    """
    if len(y_true) == 0:
        raise ValueError("cannot score an empty test set")
    y_pred = proba.argmax(axis=1)
    present = np.unique(y_true)
    all_classes = np.arange(len(class_names))
    per_class = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro",
                                   zero_division=0)),
        "top2": float(top_k_accuracy_score(y_true, proba, k=2, labels=all_classes)
                      if len(class_names) > 2 else 1.0),
        "per_class_f1": {class_names[c]: float(f) for c, f in zip(present, per_class, strict=True)},
    }


SHARED_ARGMAX = "shared_argmax_accuracy"
"""Cross-dataset accuracy with the argmax taken over the shared genres only."""


def shared_argmax_accuracy(y_true: np.ndarray, proba: np.ndarray,
                           shared: Sequence[int]) -> float:
    """Accuracy when the model may only answer one of the `shared` classes (the genres the
    test dataset has): how well it ranks the right genre among those, apart from how much
    probability it gives genres the test set cannot have."""
    columns = np.asarray(shared)
    return float(np.mean(columns[proba[:, columns].argmax(axis=1)] == y_true))


def summarise_over_seeds(runs: Sequence[dict[str, object]],
                         correct: np.ndarray | None = None) -> dict[str, object]:
    """Mean and (population) std of every scalar score over seeds; per-class F1 averaged.

    Given each test track's fraction of seeds right (`mgc.statistics.per_track_correct`),
    the accuracy also gets a 95 % bootstrap interval over test tracks (`ci95_low`,
    `ci95_high`): how much another test set of this size could move the mean.
    """
    if not runs:
        raise ValueError("no runs to summarise")
    summary: dict[str, object] = {}
    for key in ("accuracy", "macro_f1", "top2", SHARED_ARGMAX):
        if key not in runs[0]:
            continue
        values = np.array([run[key] for run in runs], dtype=float)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
    if correct is not None:
        low, high = bootstrap_interval(correct)
        summary["accuracy"].update(ci95_low=low, ci95_high=high)
    classes = runs[0]["per_class_f1"]
    summary["per_class_f1"] = {
        name: float(np.mean([run["per_class_f1"][name] for run in runs])) for name in classes
    }
    return summary


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray,
                   class_names: Sequence[str]) -> list[dict[str, str]]:
    """One {actual, predicted} row per test clip: the input of DVC's confusion template."""
    return [{"actual": class_names[t], "predicted": class_names[p]}
            for t, p in zip(y_true, y_pred, strict=True)]


@dataclass(frozen=True)
class LabelledEmbeddings:
    """Embeddings aligned with their labels: X (n, dim), dataset, label and split per row."""

    x: np.ndarray
    dataset: np.ndarray
    track_id: np.ndarray
    label: np.ndarray
    split: np.ndarray

    def part(self, mask: np.ndarray) -> LabelledEmbeddings:
        return LabelledEmbeddings(self.x[mask], self.dataset[mask], self.track_id[mask],
                                  self.label[mask], self.split[mask])


def align(table: pd.DataFrame,
          embeddings: dict[str, tuple[Sequence[str], np.ndarray]]) -> LabelledEmbeddings:
    """Join a (dataset, track_id, label, split) table with per-dataset embeddings.

    Tracks in the table without an embedding (skipped at extraction) are dropped; the
    caller reports how many.
    """
    xs, rows = [], []
    for dataset, part in table.groupby("dataset", sort=True):
        ids, vectors = embeddings[dataset]
        position = {track_id: i for i, track_id in enumerate(ids)}
        present = part[part["track_id"].isin(position)]
        xs.append(vectors[[position[t] for t in present["track_id"]]])
        rows.append(present)
    joined = pd.concat(rows, ignore_index=True)
    return LabelledEmbeddings(
        x=np.concatenate(xs).astype(np.float32),
        dataset=joined["dataset"].to_numpy(dtype=str),
        track_id=joined["track_id"].to_numpy(dtype=str),
        label=joined["label"].to_numpy(dtype=str),
        split=joined["split"].to_numpy(dtype=str),
    )


def class_indices(labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """Each label's position in `class_names` (the columns of the model's probabilities)."""
    lookup = {name: i for i, name in enumerate(class_names)}
    return np.array([lookup[label] for label in labels], dtype=np.int64)


@dataclass(frozen=True)
class ScoringSet:
    """One test split a model is scored on: its tracks, their labels as class indices, how
    they were matched to the model's classes (`own`, or `shared genres`) and, for shared
    genres, the model's classes they map to."""

    tracks: LabelledEmbeddings
    y: np.ndarray
    matched_by: str
    shared: tuple[int, ...] = ()


def scoring_sets(data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                 class_names: list[str]) -> dict[str, ScoringSet]:
    """Every test split the model can label, by name.

    The train set's own test split (per dataset for `joint`), then the test tracks of every
    other dataset whose canonical genre the model knows.
    """
    own = data.part(data.split == "test")
    sets = {}
    for dataset in sorted(set(own.dataset)):
        part = own.part(own.dataset == dataset)
        sets[dataset] = ScoringSet(part, class_indices(part.label, class_names), "own")
    if len(sets) > 1:
        sets["all"] = ScoringSet(own, class_indices(own.label, class_names), "own")
    for dataset, other in sorted(others.items()):
        if dataset in sets:
            continue
        test = other.part(other.split == "test")
        mapping = shared_classes(sorted(set(test.label)), class_names)
        keep = np.array([label in mapping for label in test.label], dtype=bool)
        if keep.any():
            mapped = [mapping[label] for label in test.label[keep]]
            shared = tuple(class_indices(np.array(sorted(set(mapping.values()))),
                                         class_names).tolist())
            sets[dataset] = ScoringSet(test.part(keep),
                                       class_indices(np.array(mapped), class_names),
                                       "shared genres", shared)
    return sets


def score_probabilities(test: ScoringSet, proba: np.ndarray,
                        class_names: Sequence[str]) -> dict[str, object]:
    """One run's scores on `test` (`classification_scores`), with the accuracy over the
    shared genres only when `test` is another dataset's."""
    scores = classification_scores(test.y, proba, class_names)
    if test.shared:
        scores[SHARED_ARGMAX] = shared_argmax_accuracy(test.y, proba, test.shared)
    return scores


def summarise_test_set(test: ScoringSet, runs: Sequence[dict[str, object]],
                       predicted: np.ndarray) -> dict[str, object]:
    """Every run's scores on `test` summarised over runs, the accuracy's interval from each
    track's fraction of runs right (`predicted`: (runs, tracks) class indices), and how
    many tracks were scored and how they were matched."""
    return {**summarise_over_seeds(runs, per_track_correct(test.y, predicted)),
            "n_test": len(test.y), "matched_by": test.matched_by}


def prediction_table(evaluation: dict[str, ScoringSet],
                     predicted: dict[str, dict[str, np.ndarray]],
                     class_names: Sequence[str]) -> pd.DataFrame:
    """One row per (test set, track): its dataset, id and true label, and the label each
    classifier kind and seed predicted (`<kind>_seed<seed>` columns; `zeroshot`, which has
    no seeds). The input of paired tests between configurations and of `twin_confusion`."""
    parts = []
    for name, test in evaluation.items():
        part = pd.DataFrame({"test_set": name, "dataset": test.tracks.dataset,
                             "track_id": test.tracks.track_id,
                             "label": [class_names[i] for i in test.y]})
        for column, classes in predicted[name].items():
            part[column] = [class_names[i] for i in classes]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def correct_by_seed(predictions: pd.DataFrame, test_set: str,
                    kind: str = "dnn") -> pd.DataFrame:
    """Each seed's right/wrong on each track of one test set of a `prediction_table`: a
    boolean frame of tracks (indexed by dataset and track id) x seeds (the `<kind>_seed<N>`
    columns, in their order), the input of the paired tests between configurations."""
    part = predictions[predictions["test_set"] == test_set]
    columns = [c for c in part.columns if c.startswith(f"{kind}_seed")]
    right = part[columns].to_numpy() == part[["label"]].to_numpy()
    return pd.DataFrame(right, columns=columns,
                        index=pd.MultiIndex.from_frame(part[["dataset", "track_id"]]))


def twin_confusion(predictions: pd.DataFrame, class_names: list[str],
                   kinds: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """How a joint model confuses the genres the paper's 18 classes count twice.

    Per classifier kind and source dataset, over that dataset's own test tracks whose class
    has a twin in another dataset (`twin_classes`) and over every seed: the fraction
    predicted as the true class, as its twin (right genre, wrong dataset) and as anything
    else. `predictions` is `prediction_table`'s (`<kind>_seed<seed>` columns).
    Empty when no class has a twin (the `canonical` space, or a single dataset).
    """
    twins = twin_classes(class_names)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    own = predictions[(predictions["test_set"] == predictions["dataset"])
                      & predictions["label"].isin(twins)]
    for kind in kinds:
        columns = [c for c in predictions.columns if c.startswith(f"{kind}_seed")]
        if not twins or not columns:
            continue
        scores[kind] = {}
        for dataset, part in own.groupby("dataset", sort=True):
            predicted = part[columns].to_numpy()
            true = predicted == part[["label"]].to_numpy()
            twin = np.array([[p in twins[label] for p in row]
                             for label, row in zip(part["label"], predicted, strict=True)])
            scores[kind][str(dataset)] = {"n_test": len(part), "true": float(true.mean()),
                                          "twin": float(twin.mean()),
                                          "other": float((~true & ~twin).mean())}
    return scores
