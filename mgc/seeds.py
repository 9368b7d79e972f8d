"""Every classifier kind x every seed (and, for k-fold, every fold): the repetitions around
the training loop (`mgc.train`), each scored on every test split it can label, and the
model of the best seed kept to ship.

Apart from the loop so that what one training does and how many are run, in how many
processes, and summarised how, can each be read on their own.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from mgc.domain import NO_ADAPTATION, DomainConfig, DomainMap, adapt_embeddings, adversary_for
from mgc.evaluate import (
    LabelledEmbeddings,
    class_indices,
    confusion_rows,
    prediction_table,
    score_probabilities,
    scoring_sets,
    summarise_test_set,
)
from mgc.losses import LossConfig
from mgc.model import ClassifierConfig, GenreClassifier
from mgc.split_roles import fold_roles
from mgc.statistics import bootstrap_interval, per_track_correct
from mgc.train import TrainConfig, TrainedClassifier, train_classifier
from mgc.zeroshot import ZERO_SHOT, ZeroShotClassifier, zero_shot_scores


def training_summary(runs: Sequence[TrainedClassifier]) -> dict[str, float]:
    """How training ended over seeds: the mean and largest best epoch, the mean number of
    epochs run, and the fraction of seeds that early stopping ended before the cap."""
    best = np.array([run.best_epoch for run in runs], dtype=float)
    return {"best_epoch_mean": float(best.mean()), "best_epoch_max": int(best.max()),
            "epochs_mean": float(np.mean([len(run.history) for run in runs])),
            "stopped_early": float(np.mean([run.stopped_early for run in runs]))}


def layer_weight_summary(runs: Sequence[TrainedClassifier],
                         names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each layer's learned softmax weight, mean and std over seeds, by layer name."""
    weights = np.array([run.model.layer_weights() for run in runs], dtype=float)
    return {name: {"mean": float(weights[:, i].mean()), "std": float(weights[:, i].std())}
            for i, name in enumerate(names)}


@dataclass
class SeedsResult:
    """Scores per classifier and test set over seeds, every seed's prediction per test
    track (for paired tests between configurations), and the artefacts of the best DNN
    seed."""

    metrics: dict[str, object]
    best_model: GenreClassifier
    best_seed: int
    best_val_accuracy: float
    history: list[dict[str, float]]
    predictions: pd.DataFrame
    confusion: list[dict[str, str]] = field(default_factory=list)
    domain_maps: dict[str, DomainMap] = field(default_factory=dict)
    """Each dataset's map of its embeddings (standardise, coral; `mgc.domain`), else empty."""


def _start_worker(threads: int, deterministic: bool) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def _train_task(task: tuple) -> TrainedClassifier:
    return train_classifier(*task)


def _train_all(tasks: list[tuple], workers: int) -> list[TrainedClassifier]:
    """`train_classifier(*task)` for every task, in `workers` processes at once.

    Each task seeds its own generators and runs single-threaded as the parent does (the
    workers copy its torch thread count and determinism), so the results are the same
    bytes whatever `workers` is; processes, not threads, because each training is a long
    chain of small ops that one core runs as fast as several. Spawned, not forked: a fork
    of a process whose OpenMP pool has started can deadlock.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [_train_task(task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                             initializer=_start_worker,
                             initargs=(torch.get_num_threads(),
                                       torch.are_deterministic_algorithms_enabled())) as pool:
        return list(pool.map(_train_task, tasks))


def train_over_seeds(data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                     classifier_kinds: Sequence[str], seeds: Sequence[int],
                     classifier: ClassifierConfig, loss: LossConfig,
                     config: TrainConfig, workers: int = 1,
                     zero_shot: ZeroShotClassifier | None = None,
                     layer_dims: Mapping[str, int] | None = None,
                     domain: DomainConfig = NO_ADAPTATION) -> SeedsResult:
    """Train each classifier kind once per seed on `data`'s train split (early stopping on
    its val split), `workers` trainings at once, score it on every test split it can label
    (`scoring_sets`: its own, and `others`' tracks of shared genres), and keep the best seed
    of the first kind (the DNN by default) as the model to ship.

    `domain` adapts between datasets (`mgc.domain`): standardise and coral map every
    dataset's embeddings first, each map fitted on that dataset's training split; with
    adversarial the DNN trains a domain head on `data`'s training tracks and `others'`
    unlabelled training tracks. The linear probe has no hidden layer for a domain head to
    shape, so it ignores adversarial, as it ignores the metric losses.

    The linear probe is trained with plain cross-entropy whatever `loss` says: the
    multitask heads are a property of the DNN. "Best" is judged on validation accuracy
    only, never on test.

    The `zeroshot` kind trains nothing: `zero_shot`, built for the run's classes (the
    sorted labels), scores every test split once (seeds change nothing), and its setup
    (checkpoint, text-tower check, prompts) goes into the metrics; the kind is skipped for
    an extractor that has no text tower (`zero_shot` None).

    `layer_dims` (name -> dim, in depth order) says the embeddings are those layers side by
    side (`train.layer: weighted`); each kind's learned layer weights, mean and std over
    seeds, go into the metrics as `<kind>_layer_weights`.
    """
    domain_maps: dict[str, DomainMap] = {}
    if domain.maps_embeddings:
        data, others, domain_maps = adapt_embeddings(data, others, domain.method)
    class_names = sorted(set(data.label))
    train, val = data.part(data.split == "train"), data.part(data.split == "val")
    adversary = (adversary_for(train, others, domain.weight)
                 if domain.method == "adversarial" else None)
    y_train, y_val = class_indices(train.label, class_names), class_indices(val.label, class_names)
    evaluation = scoring_sets(data, others, class_names)
    metrics: dict[str, object] = {"classes": len(class_names)}
    predicted: dict[str, dict[str, np.ndarray]] = {name: {} for name in evaluation}
    best: tuple[float, int, GenreClassifier, list[dict[str, float]]] | None = None
    tasks = [(train.x, y_train, val.x, y_val, len(class_names), classifier,
              loss if kind == "dnn" else LossConfig(), config, seed, kind,
              None if layer_dims is None else list(layer_dims.values()),
              adversary if kind == "dnn" else None)
             for kind in classifier_kinds if kind != ZERO_SHOT for seed in seeds]
    results = iter(_train_all(tasks, workers))
    for kind in classifier_kinds:
        if kind == ZERO_SHOT:
            if zero_shot is not None:
                metrics[kind], zero_shot_predicted = zero_shot_scores(evaluation, zero_shot,
                                                                      class_names)
                for name, classes in zero_shot_predicted.items():
                    predicted[name][ZERO_SHOT] = classes
                metrics[f"{kind}_setup"] = zero_shot.describe()
            continue
        runs: dict[str, list[dict[str, object]]] = {name: [] for name in evaluation}
        stopping: list[TrainedClassifier] = []
        for seed in seeds:
            trained = next(results)
            stopping.append(trained)
            for name, test in evaluation.items():
                proba = trained.model.predict_proba(test.tracks.x)
                runs[name].append(score_probabilities(test, proba, class_names))
                predicted[name][f"{kind}_seed{seed}"] = proba.argmax(axis=1)
            val_accuracy = float((trained.model.predict_proba(val.x).argmax(1) == y_val).mean())
            if kind == classifier_kinds[0] and (best is None or val_accuracy > best[0]):
                best = (val_accuracy, seed, trained.model, trained.history)
        metrics[kind] = {}
        for name, scores in runs.items():
            metrics[kind][name] = summarise_test_set(evaluation[name], scores, np.stack(
                [predicted[name][f"{kind}_seed{seed}"] for seed in seeds]))
        metrics[f"{kind}_training"] = training_summary(stopping)
        if layer_dims is not None:
            metrics[f"{kind}_layer_weights"] = layer_weight_summary(stopping, list(layer_dims))
    if best is None:
        raise ValueError("classifier_kinds and seeds must not be empty")
    best_val_accuracy, best_seed, best_model, history = best
    own_test = data.part(data.split == "test")
    y_test = class_indices(own_test.label, class_names)
    y_pred = best_model.predict_proba(own_test.x).argmax(axis=1)
    return SeedsResult(metrics=metrics, best_model=best_model, best_seed=best_seed,
                       best_val_accuracy=best_val_accuracy, history=history,
                       predictions=prediction_table(evaluation, predicted, class_names),
                       confusion=confusion_rows(y_test, y_pred, class_names),
                       domain_maps=domain_maps)


def train_over_folds(data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                     folds: int, classifier_kinds: Sequence[str], seeds: Sequence[int],
                     classifier: ClassifierConfig, loss: LossConfig,
                     config: TrainConfig, workers: int = 1,
                     zero_shot: ZeroShotClassifier | None = None,
                     layer_dims: Mapping[str, int] | None = None,
                     domain: DomainConfig = NO_ADAPTATION) -> SeedsResult:
    """k-fold cross-validation: `train_over_seeds` once per fold (`fold_roles`: fold k
    tests, the next validates), every score the mean and std over folds of each fold's
    mean over seeds, as HEAR reports GTZAN.

    Every track is tested exactly once, so the bootstrap interval resamples all of them
    (seeds averaged per track) and the confusion rows cover the whole dataset. The model
    shipped is the best seed of the fold with the best validation accuracy.
    """
    rounds = [train_over_seeds(
        replace(data, split=fold_roles(data.split, k, folds)),
        {name: replace(other, split=fold_roles(other.split, k, folds))
         for name, other in others.items()},
        classifier_kinds, seeds, classifier, loss, config, workers, zero_shot, layer_dims,
        domain)
        for k in range(folds)]
    predictions = pd.concat([r.predictions.assign(fold=k) for k, r in enumerate(rounds)],
                            ignore_index=True)
    metrics: dict[str, object] = {"classes": rounds[0].metrics["classes"], "folds": folds}
    for kind in classifier_kinds:
        if kind not in rounds[0].metrics:
            continue  # zero-shot without a scorer
        metrics[kind] = {name: _over_folds([r.metrics[kind][name] for r in rounds],
                                           predictions[predictions["test_set"] == name], kind)
                         for name in rounds[0].metrics[kind]}
        if kind == ZERO_SHOT:
            metrics[f"{kind}_setup"] = rounds[0].metrics[f"{kind}_setup"]
            continue
        metrics[f"{kind}_training"] = {
            key: float(np.mean([r.metrics[f"{kind}_training"][key] for r in rounds]))
            for key in rounds[0].metrics[f"{kind}_training"]}
        if layer_dims is not None:
            metrics[f"{kind}_layer_weights"] = {name: {"mean": float(np.mean(
                [r.metrics[f"{kind}_layer_weights"][name]["mean"] for r in rounds]))}
                for name in layer_dims}
    shipped = max(rounds, key=lambda r: r.best_val_accuracy)
    return SeedsResult(metrics=metrics, best_model=shipped.best_model,
                       best_seed=shipped.best_seed, best_val_accuracy=shipped.best_val_accuracy,
                       history=shipped.history, predictions=predictions,
                       confusion=[row for r in rounds for row in r.confusion],
                       domain_maps=shipped.domain_maps)


def _over_folds(per_fold: Sequence[dict[str, object]], predictions: pd.DataFrame,
                kind: str) -> dict[str, object]:
    """One test set's scores over folds: mean and std over folds of each fold's mean; the
    accuracy's bootstrap interval over every fold's tracks together."""
    summary: dict[str, object] = {}
    for key in ("accuracy", "macro_f1", "top2"):
        means = np.array([fold[key]["mean"] for fold in per_fold], dtype=float)
        summary[key] = {"mean": float(means.mean()), "std": float(means.std())}
    columns = [c for c in predictions.columns if c == kind or c.startswith(f"{kind}_seed")]
    low, high = bootstrap_interval(per_track_correct(predictions["label"].to_numpy(),
                                                     predictions[columns].to_numpy().T))
    summary["accuracy"].update(ci95_low=low, ci95_high=high)
    classes = dict.fromkeys(c for fold in per_fold for c in fold["per_class_f1"])
    summary["per_class_f1"] = {c: float(np.mean([fold["per_class_f1"][c] for fold in per_fold
                                                  if c in fold["per_class_f1"]]))
                               for c in classes}
    summary["n_test"] = int(sum(fold["n_test"] for fold in per_fold))
    summary["matched_by"] = per_fold[0]["matched_by"]
    return summary
