"""BYOL-A (Niizumi et al.): the paper's main extractor, v2 (AudioNTT2022) and v1 (AudioNTT2020).

Front end and networks follow the published nttcslab/byol-a code; REFERENCE-MODELS.md lists
the facts. Two details decide whether pretrained weights mean anything: the 16 kHz
log-mel front end the weights were trained on, and the order in which conv features are
flattened per frame (mel-major, channel-minor). Both are pinned by tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from mgc.config import invalid
from mgc.extractors.frontend import MelSpectrogram
from mgc.extractors.kernels import use_onednn_linears
from mgc.extractors.neural import (
    POOLINGS,
    ExtractorNetwork,
    NeuralExtractor,
    Pooling,
    Precision,
    check_choice,
    fold_batchnorm,
    in_pieces,
    pool_over_time,
    run_blocks,
    stack_for_inference,
)
from mgc.extractors.weights import WeightFile, load_checkpoint, load_into, select_state_dict
from mgc.layers import LAST, Layer, LayerMode

SAMPLE_RATE = 16000
N_MELS = 64
# Log-mel statistics the authors normalise with (README of nttcslab/byol-a).
PAPER_NORMALISATION = (-9.660292, 4.7219563)
LOG_OFFSET = float(np.finfo(np.float32).eps)

_REPO = "nttcslab/byol-a"
_MIRRORS = (f"https://raw.githubusercontent.com/{_REPO}/master/",
            f"https://github.com/{_REPO}/raw/master/")


def _weights(path: str, sha256: str | None, size_bytes: int | None = None) -> WeightFile:
    return WeightFile(path.rsplit("/", 1)[-1], tuple(m + path for m in _MIRRORS), sha256,
                      size_bytes)


Variant = Literal["v2", "v1_d512", "v1_d1024", "v1_d2048"]
FITTED = "train"
"""`normalisation: train`: the log-mel statistics are fitted on the training split."""

# variant -> (conv blocks, fc width d, official file). The authors publish one sha256 (v1
# d512, REFERENCE-MODELS.md); the others are recorded on first download (see weights.py).
VARIANTS: dict[str, tuple[int, int, WeightFile]] = {
    "v2": (2, 2048, _weights("v2/AudioNTT2022-BYOLA-64x96d2048.pth", None)),
    "v1_d512": (3, 512, _weights(
        "pretrained_weights/AudioNTT2020-BYOLA-64x96d512.pth",
        "6cc64226318494f06ef41d7e5810be7d37abfd6490da45abdab48f188c5332e2", 2_410_576)),
    "v1_d1024": (3, 1024, _weights("pretrained_weights/AudioNTT2020-BYOLA-64x96d1024.pth", None)),
    "v1_d2048": (3, 2048, _weights("pretrained_weights/AudioNTT2020-BYOLA-64x96d2048.pth", None)),
}


def byola_log_mel(sample_rate: int = SAMPLE_RATE) -> MelSpectrogram:
    """BYOL-A's power mel spectrogram: n_fft = window 1024, hop 160 (10 ms), 64 Slaney bands
    60-7800 Hz, centred with reflect padding."""
    return MelSpectrogram(sample_rate=sample_rate, n_fft=1024, win_length=1024, hop_length=160,
                          n_mels=N_MELS, fmin=60, fmax=7800, mel_scale="slaney", norm="slaney")


class AudioNTT(nn.Module):
    """AudioNTT2020 (v1: 3 conv blocks, fc output only, d-dim) and AudioNTT2022 (v2: 2 blocks,
    conv features and fc output concatenated per frame, 1024 + 2048 = 3072-d).

    Input (batch, 1, 64 mels, frames); output per-frame features (batch, frames', dim) after
    the conv blocks' time pooling. Attribute and index names match the official state dict
    (`features.0/1/4/5(/8/9)`, `fc.0`, `fc.3`).
    """

    def __init__(self, conv_blocks: int, d: int, stack_conv_features: bool) -> None:
        super().__init__()
        self.conv_blocks = conv_blocks
        self.block_outputs: nn.Module | None = None
        layers: list[nn.Module] = []
        for block in range(conv_blocks):
            layers += [nn.Conv2d(1 if block == 0 else 64, 64, 3, padding=1), nn.BatchNorm2d(64),
                       nn.ReLU(), nn.MaxPool2d(2, stride=2)]
        self.features = nn.Sequential(*layers)
        conv_dim = 64 * (N_MELS // 2**conv_blocks)
        self.fc = nn.Sequential(nn.Linear(conv_dim, d), nn.ReLU(), nn.Dropout(0.3),
                                nn.Linear(d, d), nn.ReLU())
        self.stack_conv_features = stack_conv_features
        self.dim = conv_dim + d if stack_conv_features else d

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.head(_frames(self.features(log_mel)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv block's frames (batch, time, conv_dim) -> the output frames."""
        fc = self.fc(x)
        return torch.cat([x, fc], dim=-1) if self.stack_conv_features else fc

    def block_maps(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every conv block's map, from one pass through the blocks."""
        if self.block_outputs is not None:
            return self.block_outputs(log_mel)
        return run_blocks((self.features[4 * block:4 * block + 4]
                           for block in range(self.conv_blocks)), log_mel)

    def layer_vectors(self, maps: tuple[torch.Tensor, ...], pooling: str
                      ) -> dict[str, torch.Tensor]:
        """Every named layer (`layer_specs`) pooled over time from the blocks' `maps`: each
        conv block's map as the model flattens its last one (mel-major, channel-minor),
        then `fc` and, in v2, `stacked` (the last conv block's frames and `fc` side by
        side: `forward`'s output). A conv map is pooled where it lies, along its time
        axis, and only then flattened: the same values as flattening first, without
        copying the largest map (49 MB per 30 s clip)."""
        vectors = {f"conv{index}": pool_over_time(conv_map, pooling, dim=3).transpose(1, 2)
                   .reshape(len(conv_map), -1) for index, conv_map in enumerate(maps, 1)}
        x = _frames(maps[-1])
        fc = self.fc(x)
        vectors["fc"] = pool_over_time(fc, pooling)
        if self.stack_conv_features:
            vectors["stacked"] = pool_over_time(torch.cat([x, fc], dim=-1), pooling)
        return vectors


def _frames(conv_map: torch.Tensor) -> torch.Tensor:
    """(batch, ch, mel, time) -> (batch, time, mel * ch): feature = mel * 64 + channel."""
    x = conv_map.permute(0, 3, 2, 1)
    return x.reshape(x.shape[0], x.shape[1], -1)


class ByolaModel(ExtractorNetwork):
    """Waveforms at 16 kHz -> normalised log-mel -> AudioNTT -> pooled clip vectors."""

    def __init__(self, encoder: AudioNTT, normalisation: tuple[float, float], pooling: str
                 ) -> None:
        super().__init__()
        self.log_mel = byola_log_mel()
        self.encoder = encoder
        self.mean, self.std = normalisation
        self.pooling = pooling
        self.clips_per_pass: int | None = None
        """Set on CPU: one clip at a time through the whole network, whose first conv map
        (49 MB per 30 s clip) is memory-bound, is the fastest per clip and the smallest
        (neural.in_pieces)."""

    def normalised_log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        log_mel = (self.log_mel(waveforms) + LOG_OFFSET).log()   # (batch, frames, mels)
        return ((log_mel - self.mean) / self.std).transpose(1, 2).unsqueeze(1)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return in_pieces(lambda piece: pool_over_time(
            self.encoder(self.normalised_log_mel(piece)), self.pooling),
            waveforms, self.clips_per_pass)

    def forward_layers(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        return in_pieces(lambda piece: self.encoder.layer_vectors(
            self.encoder.block_maps(self.normalised_log_mel(piece)), self.pooling),
            waveforms, self.clips_per_pass)

    def prepare_inference(self, device: torch.device, all_layers: bool = False,
                          frozen: bool = False) -> None:
        """Fold each BatchNorm into its conv and pool before the ReLU (max-pooling and ReLU
        commute), so the ReLU touches a quarter of the values; on CPU, freeze the stack
        (with `all_layers`, one frozen graph that returns every block's map) and run `fc`,
        70 % of the model's FLOPs, through oneDNN (kernels.py)."""
        layers = list(self.encoder.features)
        blocks = [nn.Sequential(fold_batchnorm(conv, batchnorm), pool, relu)
                  for conv, batchnorm, relu, pool in zip(*[iter(layers)] * 4, strict=True)]
        stack = stack_for_inference(blocks if all_layers else
                                    [layer for block in blocks for layer in block],
                                    all_layers, frozen, torch.zeros(1, 1, N_MELS, 96))
        if all_layers:
            self.encoder.block_outputs = stack
        else:
            self.encoder.features = stack
        if device.type == "cpu":
            self.clips_per_pass = 1
        if frozen:
            use_onednn_linears(self.encoder.fc)


class ByolaExtractor(NeuralExtractor):
    """BYOL-A clip embeddings: 3072-d for v2 (the paper's), d for v1_d512/d1024/d2048.

    `normalisation` is "paper" (the authors' fixed log-mel mean and std), [mean, std], or
    "train": fitted by `fit` on training clips (the corrected choice for music, since the
    authors' statistics come from Speech Commands); such an extractor refuses to embed
    until it is fitted.
    """

    name = "byola"

    def __init__(self, weights: str | Path = "pretrained", variant: Variant = "v2",
                 normalisation: Literal["paper", "train"] | list[float] = "paper",
                 pooling: Pooling = "mean+max", layers: LayerMode = LAST,
                 precision: Precision = "fp32", device: str = "auto", seed: int = 0,
                 progress: bool = True) -> None:
        check_choice("variant", variant, get_args(Variant))
        check_choice("pooling", pooling, POOLINGS)
        self.variant = variant
        self.normalisation = None if normalisation == FITTED else _normalisation(normalisation)
        self.pooling = pooling
        self.official_weights = VARIANTS[variant][2]
        self.sample_rate = SAMPLE_RATE
        super().__init__(weights=weights, device=device, seed=seed, layers=layers,
                         precision=precision, progress=progress)
        self.dim = self.network.encoder.dim

    @classmethod
    def layer_specs(cls, options: Mapping[str, Any]) -> tuple[Layer, ...]:
        """conv1..convN (N = 2 in v2, 3 in v1; each block's map flattened mel-major,
        channel-minor, as the model flattens its last block: 64 ch x 64 / 2^n mels), `fc`
        (d) and, in v2, `stacked` (last conv block + fc = the 3072-d output). Flattened
        rather than averaged over mel bands because that is the model's own frame vector:
        v2's output holds the last block's flattened map verbatim."""
        variant = str(options.get("variant", "v2"))
        conv_blocks, d, _ = VARIANTS[variant]
        conv = tuple(Layer(f"conv{block}", 64 * (N_MELS // 2**block))
                     for block in range(1, conv_blocks + 1))
        if variant == "v2":
            return (*conv, Layer("fc", d), Layer("stacked", conv[-1].dim + d))
        return (*conv, Layer("fc", d))

    def build_network(self) -> nn.Module:
        conv_blocks, d, _ = VARIANTS[self.variant]
        encoder = AudioNTT(conv_blocks, d, stack_conv_features=self.variant == "v2")
        return ByolaModel(encoder, self.normalisation or (0.0, 1.0), self.pooling)

    def load_weights(self, network: nn.Module, path: Path) -> None:
        state = select_state_dict(load_checkpoint(path), ("features.", "fc."))
        load_into(network.encoder, state, str(path))

    @property
    def needs_fit(self) -> bool:
        return self.normalisation is None

    def fit(self, train_waveforms: Iterable[np.ndarray]) -> dict[str, Any]:
        """With `normalisation: train`, the log-mel mean and std of the training clips."""
        if not self.needs_fit:
            return {}
        self.normalisation = log_mel_statistics(train_waveforms)
        self.network.mean, self.network.std = self.normalisation
        return {"normalisation": list(self.normalisation)}

    def embed_batch(self, waveforms: np.ndarray) -> np.ndarray:
        if self.needs_fit:
            raise RuntimeError("byola with normalisation 'train' must be fitted on training "
                               "clips (fit) before it embeds")
        return super().embed_batch(waveforms)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "variant": self.variant,
                "normalisation": list(self.normalisation or ()) or FITTED,
                "pooling": self.pooling}


def _normalisation(value: str | list[float]) -> tuple[float, float]:
    if value == "paper":
        return PAPER_NORMALISATION
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and np.isfinite(value).all() and value[1] > 0):
        return float(value[0]), float(value[1])
    raise invalid("normalisation", value,
                  "expected 'paper', 'train' or [mean, std] with std > 0")


def log_mel_statistics(waveform_batches: Iterable[np.ndarray]) -> tuple[float, float]:
    """Mean and std of BYOL-A's log-mel values over every clip given, for `normalisation`.

    The authors' fixed statistics were computed on Speech Commands; music has another level
    and spread, so computing them on the training split is the corrected choice. Summed in
    float64 over all values (as the authors' own statistics script does over its files).
    """
    log_mel = byola_log_mel()
    total = total_squares = 0.0
    count = 0
    with torch.inference_mode():
        for batch in waveform_batches:
            values = (log_mel(torch.from_numpy(np.asarray(batch, dtype=np.float32)))
                      + LOG_OFFSET).log().double()
            total += values.sum().item()
            total_squares += values.square().sum().item()
            count += values.numel()
    if count == 0:
        raise ValueError("log_mel_statistics: no audio given")
    mean = total / count
    return mean, float(np.sqrt(max(total_squares / count - mean**2, 0.0)))
