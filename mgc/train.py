"""The training loop: mini-batches, noise augmentation, the multitask loss, early stopping
on validation loss; one classifier, one seed (`mgc.seeds` repeats it over seeds and folds).

A plain loop (nanoGPT-style) rather than a framework: the whole procedure, including what
is and is not augmented, is readable top to bottom.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mgc.config import invalid
from mgc.domain import Adversary, DomainHead
from mgc.errors import UserError
from mgc.losses import LossConfig, LossValues, multitask_loss
from mgc.model import ClassifierConfig, ClassifierOutput, GenreClassifier

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


class TrainingError(UserError, ValueError):
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
