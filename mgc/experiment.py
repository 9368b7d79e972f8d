"""One train set x one extractor: train every classifier over several seeds and score it
on every test split it can label.

This is the unit the `train` stage runs. Cross-dataset scoring lives here too: a model
trained on one dataset is scored on another dataset's test tracks of the genres both share
(canonical names), and a model trained on the joint label space on each dataset's own test
split, so Table 3 of the paper falls out of the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from mgc.evaluate import classification_scores, confusion_rows, summarise_over_seeds
from mgc.labels import shared_classes
from mgc.losses import LossWeights
from mgc.model import ClassifierConfig, GenreClassifier
from mgc.train import TrainConfig, train_classifier


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


@dataclass
class ExperimentResult:
    """Scores per classifier and test set, and the artefacts of the best DNN seed."""

    metrics: dict[str, object]
    best_model: GenreClassifier
    best_seed: int
    history: list[dict[str, float]]
    confusion: list[dict[str, str]] = field(default_factory=list)


def _indices(labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(class_names)}
    return np.array([lookup[label] for label in labels], dtype=np.int64)


def scoring_sets(train_set: str, data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
              class_names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Every test split the model can label: name -> (X, y indices, how it was matched).

    The train set's own test split (per dataset for `joint`), then the test tracks of every
    other dataset whose canonical genre the model knows.
    """
    own = data.part(data.split == "test")
    sets = {}
    for dataset in sorted(set(own.dataset)):
        part = own.part(own.dataset == dataset)
        sets[dataset] = (part.x, _indices(part.label, class_names), "own")
    if len(sets) > 1:
        sets["all"] = (own.x, _indices(own.label, class_names), "own")
    for dataset, other in sorted(others.items()):
        if dataset in sets:
            continue
        test = other.part(other.split == "test")
        mapping = shared_classes(sorted(set(test.label)), class_names)
        keep = np.array([label in mapping for label in test.label], dtype=bool)
        if keep.any():
            mapped = [mapping[label] for label in test.label[keep]]
            sets[dataset] = (test.x[keep], _indices(np.array(mapped), class_names),
                             "shared genres")
    return sets


def run_experiment(train_set: str, data: LabelledEmbeddings,
                   others: dict[str, LabelledEmbeddings], classifier_kinds: Sequence[str],
                   seeds: Sequence[int], classifier: ClassifierConfig, loss: LossWeights,
                   config: TrainConfig) -> ExperimentResult:
    """Train each classifier kind once per seed, score it, and keep the best seed of the
    first kind (the DNN by default) as the model to ship.

    The linear probe is trained with plain cross-entropy whatever `loss` says: the
    multitask heads are a property of the DNN. "Best" is judged on validation accuracy
    only, never on test.
    """
    class_names = sorted(set(data.label))
    train, val = data.part(data.split == "train"), data.part(data.split == "val")
    y_train, y_val = _indices(train.label, class_names), _indices(val.label, class_names)
    evaluation = scoring_sets(train_set, data, others, class_names)
    metrics: dict[str, object] = {"classes": len(class_names)}
    best: tuple[float, int, GenreClassifier, list[dict[str, float]]] | None = None
    for kind in classifier_kinds:
        config_for_kind = replace(classifier, kind=kind)
        loss_for_kind = loss if kind == "dnn" else LossWeights()
        runs: dict[str, list[dict[str, object]]] = {name: [] for name in evaluation}
        for seed in seeds:
            trained = train_classifier(train.x, y_train, val.x, y_val, len(class_names),
                                       config_for_kind, loss_for_kind, config, seed)
            for name, (x_test, y_test, _) in evaluation.items():
                proba = trained.model.predict_proba(x_test)
                runs[name].append(classification_scores(y_test, proba, class_names))
            val_accuracy = float((trained.model.predict_proba(val.x).argmax(1) == y_val).mean())
            if kind == classifier_kinds[0] and (best is None or val_accuracy > best[0]):
                best = (val_accuracy, seed, trained.model, trained.history)
        metrics[kind] = {
            name: {**summarise_over_seeds(scores), "n_test": len(evaluation[name][1]),
                   "matched_by": evaluation[name][2]}
            for name, scores in runs.items()
        }
    if best is None:
        raise ValueError("classifier_kinds and seeds must not be empty")
    _, best_seed, best_model, history = best
    own_test = data.part(data.split == "test")
    y_test = _indices(own_test.label, class_names)
    y_pred = best_model.predict_proba(own_test.x).argmax(axis=1)
    return ExperimentResult(metrics=metrics, best_model=best_model, best_seed=best_seed,
                            history=history,
                            confusion=confusion_rows(y_test, y_pred, class_names))
