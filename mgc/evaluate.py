"""Scores of a trained classifier, computed with scikit-learn, and their mean and std over seeds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score


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


def summarise_over_seeds(runs: Sequence[dict[str, object]]) -> dict[str, object]:
    """Mean and (population) std of every scalar score over seeds; per-class F1 averaged."""
    if not runs:
        raise ValueError("no runs to summarise")
    summary: dict[str, object] = {}
    for key in ("accuracy", "macro_f1", "top2"):
        values = np.array([run[key] for run in runs], dtype=float)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
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
