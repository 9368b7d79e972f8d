"""The training loop (mini-batches, noise augmentation, early stopping) and the seed loop
around it (every classifier kind x every seed, scored on every test split it can label).

A plain loop (nanoGPT-style) rather than a framework: the whole procedure, including what
is and is not augmented, is readable top to bottom.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mgc.config import invalid
from mgc.evaluate import (
    LabelledEmbeddings,
    class_indices,
    classification_scores,
    confusion_rows,
    scoring_sets,
    summarise_over_seeds,
)
from mgc.losses import LossConfig, multitask_loss
from mgc.model import ClassifierConfig, GenreClassifier
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
    """Optimiser and stopping rule; the paper's values are the defaults."""

    epochs: int = 35
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    patience: int = 6
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "patience"):
            if int(getattr(self, key)) < 1:
                raise invalid(key, getattr(self, key), "must be a positive integer")
        if not 0 < self.learning_rate < math.inf:
            raise invalid("learning_rate", self.learning_rate, "must be finite and > 0")
        if not 0 <= self.weight_decay < math.inf:
            raise invalid("weight_decay", self.weight_decay, "must be finite and >= 0")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainedClassifier:
    """The best model on validation, and the per-epoch history that led to it."""

    model: GenreClassifier
    history: list[dict[str, float]]
    best_epoch: int


def add_noise(z: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """`z` plus white Gaussian noise whose power is each row's power / 10^(snr_db / 10)."""
    signal_power = z.pow(2).mean(dim=1, keepdim=True)
    sigma = torch.sqrt(signal_power / 10 ** (snr_db / 10))
    return z + sigma * torch.randn(z.shape, generator=generator)


def _augmented(z: torch.Tensor, y: torch.Tensor, noise: NoiseConfig,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if noise.mode == "off":
        return z, y
    return torch.cat([z, add_noise(z, noise.snr_db, generator)]), torch.cat([y, y])


def train_classifier(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                     y_val: np.ndarray, n_classes: int, classifier: ClassifierConfig,
                     loss: LossConfig, config: TrainConfig, seed: int,
                     kind: str = "dnn") -> TrainedClassifier:
    """Train one classifier with early stopping on validation loss; restore the best epoch.

    The standardiser is fit on the clean training embeddings only. Pairs and triplets for
    the metric losses are mined inside each batch from that batch's own labels.
    """
    if len(x_train) < 2 or len(x_val) < 1:
        raise ValueError(f"need at least 2 training and 1 validation examples, got "
                         f"{len(x_train)} and {len(x_val)}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = GenreClassifier(x_train.shape[1], n_classes, classifier, kind=kind,
                            heads=loss.heads)
    model.set_standardisation(x_train.mean(axis=0), x_train.std(axis=0))
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    with torch.no_grad():
        z_train = model.standardise(torch.as_tensor(x_train, dtype=torch.float32))
        x_val_t = torch.as_tensor(x_val, dtype=torch.float32)
    y_train_t = torch.as_tensor(y_train, dtype=torch.long)
    y_val_t = torch.as_tensor(y_val, dtype=torch.long)
    z_epoch, y_epoch = _augmented(z_train, y_train_t, config.noise, generator)

    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(model.state_dict())
    for epoch in range(1, config.epochs + 1):
        if config.noise.mode == "every_epoch" and epoch > 1:
            z_epoch, y_epoch = _augmented(z_train, y_train_t, config.noise, generator)
        model.train()
        order = torch.randperm(len(z_epoch), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            if len(index) < 2:
                continue
            output = model.forward_standardised(z_epoch[index])
            terms = multitask_loss(output, y_epoch[index], loss, generator)
            optimiser.zero_grad()
            terms.total.backward()
            optimiser.step()
            total += terms.total.item() * len(index)
            count += len(index)
        model.eval()
        with torch.no_grad():
            val_logits = model(x_val_t).logits
            val_loss = float(nn.functional.cross_entropy(val_logits, y_val_t))
            val_accuracy = float((val_logits.argmax(dim=1) == y_val_t).float().mean())
        history.append({"epoch": epoch, "train_loss": total / max(count, 1),
                        "val_loss": val_loss, "val_accuracy": val_accuracy})
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return TrainedClassifier(model=model, history=history, best_epoch=best_epoch)


@dataclass
class SeedsResult:
    """Scores per classifier and test set over seeds, and the artefacts of the best DNN seed."""

    metrics: dict[str, object]
    best_model: GenreClassifier
    best_seed: int
    history: list[dict[str, float]]
    confusion: list[dict[str, str]] = field(default_factory=list)


def train_over_seeds(data: LabelledEmbeddings, others: dict[str, LabelledEmbeddings],
                     classifier_kinds: Sequence[str], seeds: Sequence[int],
                     classifier: ClassifierConfig, loss: LossConfig,
                     config: TrainConfig, zero_shot: ZeroShotScorer | None = None
                     ) -> SeedsResult:
    """Train each classifier kind once per seed on `data`'s train split (early stopping on
    its val split), score it on every test split it can label (`scoring_sets`: its own, and
    `others`' tracks of shared genres), and keep the best seed of the first kind (the DNN by
    default) as the model to ship.

    The linear probe is trained with plain cross-entropy whatever `loss` says: the
    multitask heads are a property of the DNN. "Best" is judged on validation accuracy
    only, never on test.

    The `zeroshot` kind trains nothing: `zero_shot` scores every test split once (seeds
    change nothing), and the kind is skipped for an extractor that has no text tower
    (`zero_shot` None).
    """
    class_names = sorted(set(data.label))
    train, val = data.part(data.split == "train"), data.part(data.split == "val")
    y_train, y_val = class_indices(train.label, class_names), class_indices(val.label, class_names)
    evaluation = scoring_sets(data, others, class_names)
    metrics: dict[str, object] = {"classes": len(class_names)}
    best: tuple[float, int, GenreClassifier, list[dict[str, float]]] | None = None
    for kind in classifier_kinds:
        if kind == ZERO_SHOT and zero_shot is None:
            continue
        runs: dict[str, list[dict[str, object]]] = {name: [] for name in evaluation}
        if kind == ZERO_SHOT:
            for name, (x_test, y_test, _) in evaluation.items():
                runs[name].append(classification_scores(
                    y_test, zero_shot(x_test, class_names), class_names))
        else:
            loss_for_kind = loss if kind == "dnn" else LossConfig()
            for seed in seeds:
                trained = train_classifier(train.x, y_train, val.x, y_val, len(class_names),
                                           classifier, loss_for_kind, config, seed, kind)
                for name, (x_test, y_test, _) in evaluation.items():
                    proba = trained.model.predict_proba(x_test)
                    runs[name].append(classification_scores(y_test, proba, class_names))
                val_accuracy = float(
                    (trained.model.predict_proba(val.x).argmax(1) == y_val).mean())
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
    y_test = class_indices(own_test.label, class_names)
    y_pred = best_model.predict_proba(own_test.x).argmax(axis=1)
    return SeedsResult(metrics=metrics, best_model=best_model, best_seed=best_seed,
                       history=history, confusion=confusion_rows(y_test, y_pred, class_names))
