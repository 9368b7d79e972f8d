"""The training loop (mini-batches, noise augmentation, early stopping) and the seed loop
around it (every classifier kind x every seed, scored on every test split it can label).

A plain loop (nanoGPT-style) rather than a framework: the whole procedure, including what
is and is not augmented, is readable top to bottom.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from mgc.config import invalid
from mgc.domain import (
    NO_ADAPTATION,
    Adversary,
    DomainConfig,
    DomainHead,
    DomainMap,
    adapt_embeddings,
    adversary_for,
)
from mgc.evaluate import (
    SHARED_ARGMAX,
    LabelledEmbeddings,
    ScoringSet,
    class_indices,
    classification_scores,
    confusion_rows,
    scoring_sets,
    shared_argmax_accuracy,
    summarise_over_seeds,
)
from mgc.losses import LossConfig, LossValues, multitask_loss
from mgc.model import ClassifierConfig, ClassifierOutput, GenreClassifier
from mgc.split_roles import fold_roles
from mgc.statistics import bootstrap_interval, per_track_correct
from mgc.zeroshot import ZERO_SHOT

ZeroShotScorer = Callable[[np.ndarray, list[str]], np.ndarray]
"""(embeddings, class names) -> class probabilities, with no training (mgc/zeroshot.py)."""

NOISE_MODES = ("off", "once", "every_epoch")


@dataclass(frozen=True)
class NoiseConfig:
    """Gaussian noise on standardised training embeddings, at `snr_db` per vector.

    `once` appends one noisy copy of the training set (the paper: std 0.1 on standardised
    features, i.e. about 20 dB); `every_epoch` draws a fresh noisy copy each epoch.
    Validation and test data are never augmented.
    """

    mode: str = "once"
    snr_db: float = 20.0

    def __post_init__(self) -> None:
        if self.mode not in NOISE_MODES:
            raise invalid("mode", self.mode, f"allowed values are {', '.join(NOISE_MODES)}")
        if not math.isfinite(self.snr_db):
            raise invalid("snr_db", self.snr_db, "must be a finite number")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and stopping rule: the paper's optimiser, and a budget that early stopping,
    not the corpus size, decides.

    `epochs` is only a cap. Training stops when the validation loss, smoothed by an
    exponential moving average (`smoothing` is the weight of the past, 0 = raw), has not
    reached a new minimum, lower than the last by more than `min_delta`, for `patience`
    epochs, and the model of that minimum is restored. `min_delta` (as in Keras'
    EarlyStopping) ends the long tail of a convex fit such as the linear probe, whose loss
    keeps creeping down by a hair per epoch and would otherwise run to the cap.
    Smoothing matters on small validation splits, whose raw loss jumps from epoch to epoch
    (16 tracks on the default corpus) and would stop a run on one unlucky epoch or restore
    one lucky one. A fixed epoch count would instead give a small corpus few optimiser
    steps (5 per epoch on the default corpus) and a large one many.
    """

    epochs: int = 400
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    patience: int = 20
    smoothing: float = 0.8
    min_delta: float = 1e-3
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "patience"):
            if int(getattr(self, key)) < 1:
                raise invalid(key, getattr(self, key), "must be a positive integer")
        if not 0 < self.learning_rate < math.inf:
            raise invalid("learning_rate", self.learning_rate, "must be finite and > 0")
        if not 0 <= self.weight_decay < math.inf:
            raise invalid("weight_decay", self.weight_decay, "must be finite and >= 0")
        if not 0 <= self.smoothing < 1:
            raise invalid("smoothing", self.smoothing, "must be in [0, 1)")
        if not 0 <= self.min_delta < math.inf:
            raise invalid("min_delta", self.min_delta, "must be finite and >= 0")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class TrainingError(ValueError):
    """Training went numerically wrong (a non-finite loss); nothing trained may be kept."""


def _check_finite(value: float, what: str, epoch: int, seed: int, kind: str,
                  config: TrainConfig) -> None:
    if not math.isfinite(value):
        raise TrainingError(
            f"{what} is {value} at epoch {epoch} (classifier {kind}, seed {seed}): training "
            f"diverged; lower the loss weights (loss.w_*) or raise the noise SNR "
            f"(train.noise.snr_db={config.noise.snr_db:g}) or the learning rate "
            f"(train.learning_rate={config.learning_rate:g}) may be too high")


@dataclass
class TrainedClassifier:
    """The best model on validation, the per-epoch history that led to it, and whether
    early stopping ended the run before the epoch cap."""

    model: GenreClassifier
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool


def add_noise(z: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """`z` plus white Gaussian noise whose power is each row's power / 10^(snr_db / 10)."""
    signal_power = z.pow(2).mean(dim=1, keepdim=True)
    sigma = torch.sqrt(signal_power / 10 ** (snr_db / 10))
    return z + sigma * torch.randn(z.shape, generator=generator)


MINING_STREAM = 1
"""The spawn key of the metric losses' random stream below a seed (`mining_generator`)."""


def mining_generator(seed: int) -> torch.Generator:
    """The random stream that mines pairs and triplets for training seed `seed`: an
    independent child of the seed (numpy's SeedSequence), not the shuffling stream itself."""
    state = np.random.SeedSequence(seed, spawn_key=(MINING_STREAM,)).generate_state(1)
    return torch.Generator().manual_seed(int(state[0]))


def _augmented(z: torch.Tensor, y: torch.Tensor, noise: NoiseConfig,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if noise.mode == "off":
        return z, y
    return torch.cat([z, add_noise(z, noise.snr_db, generator)]), torch.cat([y, y])


def train_classifier(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                     y_val: np.ndarray, n_classes: int, classifier: ClassifierConfig,
                     loss: LossConfig, config: TrainConfig, seed: int,
                     kind: str = "dnn", layer_dims: Sequence[int] | None = None,
                     adversary: Adversary | None = None) -> TrainedClassifier:
    """Train one classifier with early stopping on validation loss; restore the best epoch.

    With an `adversary` (DANN, `mgc.domain`), a domain head behind gradient reversal reads
    the DNN trunk's last hidden layer and learns the domain of the labelled training rows
    and of as many unlabelled target rows per batch; the CE heads see only labelled rows,
    early stopping only the labelled validation loss, and the head is not part of the model
    returned, so predictions are the trunk's and the class head's alone.

    The standardiser is fit on the clean training embeddings only. Pairs and triplets for
    the metric losses are mined inside each batch from that batch's own labels, with their
    own random stream (`mining_generator`): the noise, the batch order and the dropout masks
    are then those of the CE-only run with the same seed, so comparing a loss configuration
    with CE alone compares the losses, not two draws of batch order. A loss that
    turns non-finite (extreme loss weights, noise far louder than the signal) raises
    TrainingError at once, so no stage writes a model or metrics from a diverged run.
    `layer_dims` (`train.layer: weighted`) says how the input splits into layers.
    """
    if len(x_train) < 2 or len(x_val) < 1:
        raise ValueError(f"need at least 2 training and 1 validation examples, got "
                         f"{len(x_train)} and {len(x_val)}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mining = mining_generator(seed)
    model = GenreClassifier(x_train.shape[1], n_classes, classifier, kind=kind,
                            heads=loss.heads, layer_dims=layer_dims)
    model.set_standardisation(x_train.mean(axis=0), x_train.std(axis=0))
    with torch.no_grad():
        z_train = model.standardise(torch.as_tensor(x_train, dtype=torch.float32))
        x_val_t = torch.as_tensor(x_val, dtype=torch.float32)
    y_train_t = torch.as_tensor(y_train, dtype=torch.long)
    y_val_t = torch.as_tensor(y_val, dtype=torch.long)
    z_epoch, y_epoch = _augmented(z_train, y_train_t, config.noise, generator)
    domain = (_DomainTraining.build(model, adversary, copies=len(z_epoch) // len(z_train))
              if adversary is not None and kind == "dnn" else None)
    parameters = [*model.parameters(), *(domain.head.parameters() if domain else ())]
    # The fused kernel: the same algorithm as the loop-over-tensors default (within float
    # rounding), in half the time per step on CPU, where the step dominates small models.
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate,
                                 weight_decay=config.weight_decay, fused=True)

    history: list[dict[str, float]] = []
    smoothed = math.nan
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(model.state_dict())
    for epoch in range(1, config.epochs + 1):
        if config.noise.mode == "every_epoch" and epoch > 1:
            z_epoch, y_epoch = _augmented(z_train, y_train_t, config.noise, generator)
        row = {"epoch": epoch, **_train_epoch(model, optimiser, z_epoch, y_epoch, loss,
                                               config.batch_size, generator, mining,
                                               domain)}
        _check_finite(row.get("train_loss", 0.0), "the training loss", epoch, seed, kind,
                      config)
        model.eval()
        with torch.no_grad():
            val_logits = model(x_val_t).logits
            val_loss = float(nn.functional.cross_entropy(val_logits, y_val_t))
            val_accuracy = float((val_logits.argmax(dim=1) == y_val_t).float().mean())
        _check_finite(val_loss, "the validation loss", epoch, seed, kind, config)
        smoothed = (val_loss if epoch == 1
                    else config.smoothing * smoothed + (1 - config.smoothing) * val_loss)
        history.append({**row, "val_loss": val_loss, "val_loss_smoothed": smoothed,
                        "val_accuracy": val_accuracy})
        if smoothed < best_loss - config.min_delta:
            best_loss, best_epoch, best_state = smoothed, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainedClassifier(model=model, history=history, best_epoch=best_epoch,
                             stopped_early=len(history) < config.epochs)


@dataclass
class _DomainTraining:
    """DANN's side of training: the domain head, every labelled training row's domain (tiled
    like the rows' noisy copies), and the standardised unlabelled target rows."""

    head: DomainHead
    labelled: torch.Tensor
    z_unlabelled: torch.Tensor
    unlabelled: torch.Tensor

    @classmethod
    def build(cls, model: GenreClassifier, adversary: Adversary,
              copies: int) -> _DomainTraining:
        """`copies`: how many times the epoch's rows repeat the training rows (2 with one
        noisy copy each), so every row's domain is known."""
        with torch.no_grad():
            z_unlabelled = model.standardise(torch.as_tensor(adversary.x_unlabelled,
                                                             dtype=torch.float32))
        return cls(DomainHead(model.config.widths[-1], adversary.n_domains, adversary.weight),
                   torch.as_tensor(adversary.labelled_domains, dtype=torch.long).repeat(copies),
                   z_unlabelled, torch.as_tensor(adversary.unlabelled_domains, dtype=torch.long))

    def step(self, model: GenreClassifier, z: torch.Tensor, y: torch.Tensor,
             index: torch.Tensor, loss: LossConfig, generator: torch.Generator,
             mining: torch.Generator) -> LossValues:
        """The multitask loss on the labelled rows `index`, plus the domain head's
        cross-entropy on them and on as many unlabelled rows drawn at random, from one
        trunk pass (so BatchNorm sees both domains, as in DANN)."""
        size = len(index) if len(self.z_unlabelled) else 0
        drawn = torch.randint(max(len(self.z_unlabelled), 1), (size,), generator=generator)
        output = model.forward_standardised(torch.cat([z[index], self.z_unlabelled[drawn]]))
        labelled = ClassifierOutput(*(None if t is None else t[:len(index)] for t in (
            output.logits, output.pair_logits, output.embedding, output.features)))
        terms = multitask_loss(labelled, y[index], loss, mining)
        domain_loss = nn.functional.cross_entropy(
            self.head(output.features), torch.cat([self.labelled[index], self.unlabelled[drawn]]))
        return LossValues(terms.total + domain_loss,
                          {**terms.by_term, "domain": float(domain_loss.detach())}, terms.active)


def _train_epoch(model: GenreClassifier, optimiser: torch.optim.Optimizer, z: torch.Tensor,
                 y: torch.Tensor, loss: LossConfig, batch_size: int,
                 generator: torch.Generator, mining: torch.Generator,
                 domain: _DomainTraining | None = None) -> dict[str, float]:
    """One pass over mini-batches shuffled by `generator`, pairs and triplets mined by
    `mining`; the epoch's mean total loss, each term's mean
    unweighted value (`loss_<term>`; `loss_domain`, DANN's domain head) and each hinge
    term's active fraction (`active_<term>`).
    """
    model.train()
    order = torch.randperm(len(z), generator=generator)
    sums: dict[str, float] = {}
    count = 0
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        if len(index) < 2:
            continue
        terms = (multitask_loss(model.forward_standardised(z[index]), y[index], loss, mining)
                 if domain is None else domain.step(model, z, y, index, loss, generator, mining))
        optimiser.zero_grad()
        terms.total.backward()
        optimiser.step()
        logged = {"train_loss": terms.total.item(),
                  **{f"loss_{name}": value for name, value in terms.by_term.items()},
                  **{f"active_{name}": value for name, value in terms.active.items()}}
        for name, value in logged.items():
            sums[name] = sums.get(name, 0.0) + value * len(index)
        count += len(index)
    return {name: total / max(count, 1) for name, total in sums.items()}


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
                     zero_shot: ZeroShotScorer | None = None,
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

    The `zeroshot` kind trains nothing: `zero_shot` scores every test split once (seeds
    change nothing), and the kind is skipped for an extractor that has no text tower
    (`zero_shot` None).

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
                metrics[kind] = _zero_shot_scores(evaluation, zero_shot, class_names,
                                                  predicted)
            continue
        runs: dict[str, list[dict[str, object]]] = {name: [] for name in evaluation}
        stopping: list[TrainedClassifier] = []
        for seed in seeds:
            trained = next(results)
            stopping.append(trained)
            for name, test in evaluation.items():
                proba = trained.model.predict_proba(test.tracks.x)
                scores = classification_scores(test.y, proba, class_names)
                if test.shared:
                    scores[SHARED_ARGMAX] = shared_argmax_accuracy(test.y, proba, test.shared)
                runs[name].append(scores)
                predicted[name][f"{kind}_seed{seed}"] = proba.argmax(axis=1)
            val_accuracy = float((trained.model.predict_proba(val.x).argmax(1) == y_val).mean())
            if kind == classifier_kinds[0] and (best is None or val_accuracy > best[0]):
                best = (val_accuracy, seed, trained.model, trained.history)
        metrics[kind] = {}
        for name, scores in runs.items():
            test = evaluation[name]
            correct = per_track_correct(test.y, np.stack(
                [predicted[name][f"{kind}_seed{seed}"] for seed in seeds]))
            metrics[kind][name] = {**summarise_over_seeds(scores, correct),
                                   "n_test": len(test.y), "matched_by": test.matched_by}
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


def _zero_shot_scores(evaluation: dict[str, ScoringSet], zero_shot: ZeroShotScorer,
                      class_names: list[str], predicted: dict[str, dict[str, np.ndarray]]
                      ) -> dict[str, object]:
    """The untrained zero-shot classifier's scores on every test set (one run: no seeds),
    its predictions recorded in the `zeroshot` column."""
    scores = {}
    for name, test in evaluation.items():
        proba = zero_shot(test.tracks.x, class_names)
        predicted[name][ZERO_SHOT] = proba.argmax(axis=1)
        scores[name] = {**summarise_over_seeds(
            [classification_scores(test.y, proba, class_names)],
            per_track_correct(test.y, proba.argmax(axis=1)[None, :])),
            "n_test": len(test.y), "matched_by": test.matched_by}
    return scores


def prediction_table(evaluation: dict[str, ScoringSet],
                     predicted: dict[str, dict[str, np.ndarray]],
                     class_names: Sequence[str]) -> pd.DataFrame:
    """One row per (test set, track): its dataset, id and true label, and the label each
    classifier kind and seed predicted (`<kind>_seed<seed>` columns; `zeroshot`, which has
    no seeds)."""
    parts = []
    for name, test in evaluation.items():
        part = pd.DataFrame({"test_set": name, "dataset": test.tracks.dataset,
                             "track_id": test.tracks.track_id,
                             "label": [class_names[i] for i in test.y]})
        for column, classes in predicted[name].items():
            part[column] = [class_names[i] for i in classes]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def train_over_folds(data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                     folds: int, classifier_kinds: Sequence[str], seeds: Sequence[int],
                     classifier: ClassifierConfig, loss: LossConfig,
                     config: TrainConfig, workers: int = 1,
                     zero_shot: ZeroShotScorer | None = None,
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
