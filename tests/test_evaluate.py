"""mgc.evaluate: scores checked by hand and against scikit-learn; summaries over seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

from mgc.evaluate import (
    LabelledEmbeddings,
    classification_scores,
    confusion_rows,
    scoring_sets,
    shared_argmax_accuracy,
    summarise_over_seeds,
    twin_confusion,
)

CLASSES = ["a", "b", "c", "d"]
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
# argmax per row: 0, 1, 1, 1, 2, 3; second choice: 1, 2, 2, 3, 0, 2
PROBA = np.array([
    [0.6, 0.3, 0.05, 0.05],
    [0.05, 0.6, 0.3, 0.05],
    [0.05, 0.6, 0.3, 0.05],
    [0.05, 0.6, 0.05, 0.3],
    [0.3, 0.05, 0.6, 0.05],
    [0.05, 0.05, 0.3, 0.6],
])


def test_scores_of_a_hand_made_case() -> None:
    scores = classification_scores(Y_TRUE, PROBA, CLASSES)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    # a: P 1, R 1/2; b: P 2/3, R 1; c: P 1, R 1/2. d never occurs, so it is left out.
    assert scores["per_class_f1"] == pytest.approx({"a": 2 / 3, "b": 0.8, "c": 2 / 3})
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3) / 3)
    # the true label is among the top two in every row but the second
    assert scores["top2"] == pytest.approx(5 / 6)


def test_scores_agree_with_sklearn_on_random_predictions() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 5, size=200)
    proba = rng.dirichlet(np.ones(6), size=200)
    names = [f"g{i}" for i in range(6)]
    scores = classification_scores(y_true, proba, names)
    y_pred = proba.argmax(axis=1)
    present = np.arange(5)
    assert scores["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert scores["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, labels=present, average="macro"))
    assert scores["top2"] == pytest.approx(
        top_k_accuracy_score(y_true, proba, k=2, labels=np.arange(6)))
    top2_by_hand = np.mean([t in np.argsort(p)[-2:] for t, p in zip(y_true, proba, strict=True)])
    assert scores["top2"] == pytest.approx(top2_by_hand)
    assert set(scores["per_class_f1"]) == {f"g{i}" for i in range(5)}


def test_empty_test_set_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        classification_scores(np.array([], dtype=int), np.zeros((0, 4)), CLASSES)


def test_summary_is_mean_and_population_std() -> None:
    runs = [
        {"accuracy": acc, "macro_f1": acc / 2, "top2": 1.0, "per_class_f1": {"a": acc, "b": 0.0}}
        for acc in (0.5, 0.7, 0.9)
    ]
    summary = summarise_over_seeds(runs)
    assert summary["accuracy"]["mean"] == pytest.approx(0.7)
    assert summary["accuracy"]["std"] == pytest.approx(np.sqrt(0.08 / 3))
    assert summary["macro_f1"]["mean"] == pytest.approx(0.35)
    assert summary["top2"] == pytest.approx({"mean": 1.0, "std": 0.0})
    assert summary["per_class_f1"] == pytest.approx({"a": 0.7, "b": 0.0})
    with pytest.raises(ValueError):
        summarise_over_seeds([])


def test_confusion_rows_name_actual_and_predicted() -> None:
    rows = confusion_rows(Y_TRUE, PROBA.argmax(axis=1), CLASSES)
    assert len(rows) == len(Y_TRUE)
    assert rows[1] == {"actual": "a", "predicted": "b"}
    assert rows[5] == {"actual": "c", "predicted": "d"}


def test_twin_confusion_on_a_hand_built_prediction_table() -> None:
    """a/pop and b/Pop are twins; a/jazz has none, and the joint `all` rows are not own rows.
    Dataset a, 2 twin tracks x 2 seeds: true 1/4, twin 2/4, other 1/4; b: 1 track, true 1/2,
    other 1/2."""
    classes = ["a/jazz", "a/pop", "a/rock", "b/Folk", "b/Pop"]
    table = pd.DataFrame({
        "test_set": ["a", "a", "a", "b", "all"],
        "dataset": ["a", "a", "a", "b", "a"],
        "track_id": ["1", "2", "3", "4", "1"],
        "label": ["a/pop", "a/pop", "a/jazz", "b/Pop", "a/pop"],
        "dnn_seed0": ["a/pop", "b/Pop", "a/jazz", "b/Pop", "b/Pop"],
        "dnn_seed1": ["b/Pop", "a/rock", "b/Pop", "a/rock", "b/Pop"],
    })
    scores = twin_confusion(table, classes, ["dnn", "linear"])
    assert scores == {"dnn": {"a": {"n_test": 2, "true": 0.25, "twin": 0.5, "other": 0.25},
                              "b": {"n_test": 1, "true": 0.5, "twin": 0.0, "other": 0.5}}}


def test_canonical_classes_have_no_twin_confusion() -> None:
    table = pd.DataFrame({"test_set": ["a"], "dataset": ["a"], "track_id": ["1"],
                          "label": ["pop"], "dnn_seed0": ["pop"]})
    assert twin_confusion(table, ["pop", "rock"], ["dnn"]) == {}


def test_shared_argmax_answers_only_among_the_shared_classes() -> None:
    """Classes 0-3, shared 1 and 3: track 0 (true 1) has its best shared class right though
    class 0 wins overall; track 1 (true 3) picks 1 among the shared ones."""
    proba = np.array([[0.5, 0.3, 0.0, 0.2], [0.1, 0.3, 0.5, 0.1]])
    y = np.array([1, 3])
    assert shared_argmax_accuracy(y, proba, (1, 3)) == 0.5
    assert classification_scores(y, proba, list("abcd"))["accuracy"] == 0.0


def test_other_datasets_are_scored_on_shared_genres_with_their_classes() -> None:
    def tracks(dataset: str, labels: list[str]) -> LabelledEmbeddings:
        n = len(labels)
        return LabelledEmbeddings(np.zeros((n, 2), np.float32), np.full(n, dataset),
                                  np.array([str(i) for i in range(n)]), np.array(labels),
                                  np.full(n, "test"))

    classes = ["blues", "hiphop", "pop", "rock"]
    sets = scoring_sets(tracks("g", classes), {"f": tracks("f", ["Folk", "Pop", "Hip-Hop"])},
                        classes)
    assert sets["f"].matched_by == "shared genres"
    assert list(sets["f"].y) == [2, 1] and sets["f"].shared == (1, 2)
    assert sets["g"].shared == ()
