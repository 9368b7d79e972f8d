"""The training loop: mini-batches, noise augmentation, early stopping, one seed at a time.

A plain loop (nanoGPT-style) rather than a framework: the whole procedure, including what
is and is not augmented, is readable top to bottom.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mgc.losses import LossWeights, multitask_loss
from mgc.model import ClassifierConfig, GenreClassifier

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
            raise ValueError(f"train.noise.mode={self.mode!r}: allowed values are "
                             f"{', '.join(NOISE_MODES)}")
        if not math.isfinite(self.snr_db):
            raise ValueError(f"train.noise.snr_db={self.snr_db!r}: must be a finite number")


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
                raise ValueError(f"train.{key}={getattr(self, key)!r}: must be a positive integer")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"train.learning_rate={self.learning_rate!r}: must be finite and > 0")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"train.weight_decay={self.weight_decay!r}: must be finite and >= 0")

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
                     loss: LossWeights, config: TrainConfig, seed: int) -> TrainedClassifier:
    """Train one classifier with early stopping on validation loss; restore the best epoch.

    The standardiser is fit on the clean training embeddings only. Pairs and triplets for
    the metric losses are mined inside each batch from that batch's own labels.
    """
    if len(x_train) < 2 or len(x_val) < 1:
        raise ValueError(f"need at least 2 training and 1 validation examples, got "
                         f"{len(x_train)} and {len(x_val)}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = GenreClassifier(x_train.shape[1], n_classes, classifier,
                            metric_head=loss.uses_metric_loss, pair_head=loss.uses_pair_ce)
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
            terms = multitask_loss(output.logits, output.pair_logits, output.embedding,
                                   y_epoch[index], loss, generator)
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
