"""MuQ (Zhu et al. 2025, Tencent AI Lab): a music model pre-trained to predict Mel-RVQ
tokens, 24 kHz, one layer's 25 Hz frames averaged over time. Its weights are licensed
CC-BY-NC-4.0 (non-commercial); the code of its package is MIT.

The published package (`muq` 0.1.0 on PyPI) needs torchaudio, which has no release for
the pinned torch, and it calls transformers 4's encoder API (`output_hidden_states`, a
plain dict as config), which transformers 5 no longer has. So MuQ is rebuilt here from
what its code computes, checked against that code (tests/test_extractor_muq.py):

- front end (`MelSTFT`): torchaudio `MelSpectrogram(sample_rate=24000, n_fft=2048,
  hop_length=240, n_mels=128)` with torchaudio's defaults (periodic Hann window of n_fft,
  centred, reflect padding, power 2, HTK mel scale 0-12 kHz, no filter normalisation),
  then `AmplitudeToDB()` (10 log10 of max(x, 1e-10), no top_db); the last frame is dropped
  and the result normalised by the config's `stat` (`melspec_2048_mean`/`_std`). Written
  with torch.stft and librosa's filterbank (frontend.py);
- `Conv2dSubsampling`: two residual 3x3 conv blocks of stride 2 (time and mel), then a
  linear projection to the encoder width: 100 Hz mel frames become 25 Hz tokens. Written
  here with the published parameter names, so the checkpoint loads strictly;
- transformers' `Wav2Vec2ConformerEncoder`, built from the config's `w2v2_config` with
  `num_hidden_layers`/`hidden_size` set to `encoder_depth`/`encoder_dim`, as MuQ does.

Hidden states are MuQ's `output_hidden_states`: 13 for the large model, 0 being the
conformer's input (the subsampling's output), 1-11 each layer's output and 12 the last
layer's output after the encoder's final layer norm (`last_hidden_state`).

The checkpoint's training-only tensors are ignored by name: the random-projection
quantiser or Mel-RVQ (`model.quantizer_*`, `model.rvq.*`), the token classifier
(`model.linear.*`), `model.cls_token` and the reconstruction head (`model.recon_proj.*`);
anything else missing or unexpected is refused, naming the keys. The rotary encoder's
`inv_freq` is derived from the config, and loaded when the checkpoint has it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mgc.config import check_range
from mgc.extractors.foundation import (
    FoundationExtractor,
    frame_sums,
    hidden_state_index,
    import_transformers,
)
from mgc.extractors.frontend import MelSpectrogram
from mgc.extractors.hub import SAFETENSORS, HubModel, PinnedWeights, read_config
from mgc.extractors.kernels import fused
from mgc.extractors.neural import Precision, fold_batchnorm_into, freeze_for_cpu
from mgc.extractors.weights import WeightsError, load_into
from mgc.layers import LAST

SAMPLE_RATE = 24000
N_FFT = 2048
N_MELS = 128
FEATURE = "melspec_2048"
DB_FLOOR = 1e-10
WINDOW_SECONDS = 30.0
"""MARBLE v2 probes MuQ on whole 30 s GTZAN clips (configs/probe.MuQ.GTZANGenre.yaml,
clip_seconds 30.2); the pre-training crop length is not published in what was reachable
offline (README, "MuQ")."""
PUBLISHED = HubModel(
    "OpenMuQ/MuQ-large-msd-iter", "0562a57814f6f8bbd9fdea0a25921a2fce1a841a",
    PinnedWeights(SAFETENSORS, "273febab2be02872c37d2c37e48a9d6c52c1c9392f3eeeabd498efa281ccb7a6",
                  1_333_825_096), "CC-BY-NC-4.0")
CONFIG_SHA256 = "237335ee27d8fb951ce778701a12a79e06c51ae636dd786f97e45f51ce532543"
"""The pinned revision's files, as independent public projects that download them pin them
(README, "MuQ"); the config's digest is also that of the config.json the published
`MuQConfig` writes for the large model (tests/test_extractor_muq.py). The config is pinned
too because this module, not a library class, reads MuQ's architecture from it."""

CHECKPOINT_PREFIX = "model."
TRAINING_ONLY = ("quantizer_", "rvq.", "linear.", "cls_token", "recon_proj.")
"""Checkpoint names (after `model.`) that only pre-training uses."""
DERIVED = ("conformer.embed_positions.inv_freq",)
"""Buffers computed from the config; a checkpoint without them still loads."""
WEIGHT_NORM_NAMES = {"weight_g": "parametrizations.weight.original0",
                     "weight_v": "parametrizations.weight.original1"}
"""torch's old weight-norm names, as a checkpoint saved before its parametrizations has."""
STRIDES = {25: (2, 2), 50: (2, 1)}
"""Time strides of the two conv blocks by `label_rate` (MuQ's `strides_factory`)."""
NOT_ENCODER_FIELDS = ("architectures", "model_type", "transformers_version", "torch_dtype")


@dataclass(frozen=True)
class MuqSettings:
    """What MuQ's config.json (the `MuQConfig` of the published code) says about inference."""

    conv_dim: int
    encoder_dim: int
    encoder_depth: int
    hop_length: int
    label_rate: int
    mean: float
    std: float
    encoder: dict[str, Any]

    @classmethod
    def from_config(cls, config: dict[str, Any], source: Path) -> MuqSettings:
        """The settings, or a WeightsError naming what this rebuild does not compute."""
        def refuse(what: str) -> WeightsError:
            return WeightsError(f"{source}: {what}; only MuQ configs with MuQ's mel front "
                                "end and the transformers conformer are supported")

        stat = config.get("stat") or {}
        if config.get("features", [FEATURE]) != [FEATURE]:
            raise refuse(f"features={config.get('features')!r}, expected [{FEATURE!r}]")
        if config.get("n_mels", N_MELS) != N_MELS:
            raise refuse(f"n_mels={config.get('n_mels')!r}, but MuQ's front end always "
                         f"computes {N_MELS} mels")
        if config.get("is_flash"):
            raise refuse("is_flash is true (MuQ's flash-attention conformer)")
        if config.get("label_rate", 25) not in STRIDES:
            raise refuse(f"label_rate={config.get('label_rate')!r}, expected one of "
                         f"{sorted(STRIDES)}")
        if f"{FEATURE}_mean" not in stat or f"{FEATURE}_std" not in stat:
            raise refuse(f"stat lacks {FEATURE}_mean/_std, the front end's normalisation")
        try:
            return cls(conv_dim=int(config.get("conv_dim", 512)),
                       encoder_dim=int(config.get("encoder_dim", 1024)),
                       encoder_depth=int(config.get("encoder_depth", 12)),
                       hop_length=int(config.get("hop_length", 240)),
                       label_rate=int(config.get("label_rate", 25)),
                       mean=float(stat[f"{FEATURE}_mean"]), std=float(stat[f"{FEATURE}_std"]),
                       encoder=dict(config.get("w2v2_config") or {}))
        except (TypeError, ValueError) as error:
            raise refuse(f"unreadable value ({error})") from None

    def conformer_config(self) -> Any:
        """transformers' `Wav2Vec2ConformerConfig` for MuQ's encoder, eager attention (the
        published computation: softmax in the input dtype, no fused kernel)."""
        transformers = import_transformers()
        fields = {key: value for key, value in self.encoder.items()
                  if key not in NOT_ENCODER_FIELDS}
        config = transformers.Wav2Vec2ConformerConfig(
            **{**fields, "num_hidden_layers": self.encoder_depth,
               "hidden_size": self.encoder_dim})
        config._attn_implementation = "eager"
        return config


class MuqFrontEnd(nn.Module):
    """Waveforms (batch, samples) at 24 kHz -> normalised dB mels (batch, 128, samples // hop)."""

    def __init__(self, hop_length: int, mean: float, std: float) -> None:
        super().__init__()
        self.mel = MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=N_FFT,
                                  hop_length=hop_length, n_mels=N_MELS, fmin=0.0,
                                  fmax=SAMPLE_RATE // 2, mel_scale="htk", norm=None)
        self.mean = mean
        self.std = std

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        decibels = 10.0 * torch.log10(self.mel(waveforms.float()).clamp(min=DB_FLOOR))
        return (decibels.transpose(1, 2)[..., :-1] - self.mean) / self.std


class ResidualBlock(nn.Module):
    """MuQ's `Res2dModule`: conv-BN-ReLU-conv-BN plus a strided conv-BN shortcut, ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.relu = nn.ReLU()
        self.shortcut = channels_in != channels_out or stride[0] > 1
        if self.shortcut:
            self.conv3 = nn.Conv2d(channels_in, channels_out, 3, padding=1, stride=stride)
            self.bn3 = nn.BatchNorm2d(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        residual = self.bn3(self.conv3(x)) if self.shortcut else x
        return self.relu(residual + out)


class Conv2dSubsampling(nn.Module):
    """Mels (batch, n_mels, frames) -> tokens (batch, frames / 4, width): two residual blocks
    halving the mel axis each, the time axis by `strides`, then a linear projection of
    every token's channels x mel bands (channel-major, as MuQ's `b c f t -> b t (c f)`)."""

    def __init__(self, channels: int, width: int, strides: tuple[int, int],
                 n_mels: int = N_MELS) -> None:
        super().__init__()
        self.conv = nn.Sequential(ResidualBlock(1, channels, (2, strides[0])),
                                  ResidualBlock(channels, channels, (2, strides[1])))
        self.linear = nn.Linear(channels * (n_mels // 4), width)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        maps = self.conv(mels.unsqueeze(1))
        return self.linear(maps.permute(0, 3, 1, 2).flatten(2))


class MuqNetwork(nn.Module):
    """MuQ's inference path: front end, subsampling, conformer; module names as the
    checkpoint's (less its `model.` prefix)."""

    def __init__(self, settings: MuqSettings) -> None:
        super().__init__()
        conformer_config = settings.conformer_config()    # imports transformers, or says how
        from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import (
            Wav2Vec2ConformerEncoder,
        )

        self.front_end = MuqFrontEnd(settings.hop_length, settings.mean, settings.std)
        self.conv = Conv2dSubsampling(settings.conv_dim, settings.encoder_dim,
                                      STRIDES[settings.label_rate])
        self.conformer = Wav2Vec2ConformerEncoder(conformer_config)

    @property
    def depth(self) -> int:
        return len(self.conformer.layers)

    def prepare_inference(self) -> None:
        """For CPU inference, the same function faster: every BatchNorm folded into the
        conv before it (the subsampling's and each conformer layer's depthwise conv), and
        the subsampling's conv stack (62 % of MuQ-large's FLOPs) frozen with oneDNN's
        layouts kept between its layers (neural.freeze_for_cpu)."""
        for block in self.conv.conv:
            for index in (1, 2, 3) if block.shortcut else (1, 2):
                fold_batchnorm_into(getattr(block, f"conv{index}"), getattr(block, f"bn{index}"))
                setattr(block, f"bn{index}", nn.Identity())
        for layer in self.conformer.layers:
            convolution = layer.conv_module
            fold_batchnorm_into(convolution.depthwise_conv, convolution.batch_norm)
            convolution.batch_norm = nn.Identity()
        self.conv.conv = freeze_for_cpu(self.conv.conv, torch.zeros(1, 1, N_MELS, 64))

    def hidden_states(self, waveforms: torch.Tensor, upto: int | None = None
                      ) -> list[torch.Tensor]:
        """Hidden states 0..`upto` (default all), each (batch, tokens, width), as MuQ's
        `output_hidden_states` numbers them; only the layers needed run. The loop is the
        encoder's own forward for inference without a mask (its dropout is the identity in
        eval mode); the final layer norm applies to the last layer's output only."""
        upto = self.depth if upto is None else upto
        states = [self.conv(self.front_end(waveforms))]
        encoder = self.conformer
        positions = (encoder.embed_positions(states[0])
                     if encoder.embed_positions is not None else None)
        for layer in encoder.layers[:upto]:
            states.append(layer(states[-1], relative_position_embeddings=positions))
        if upto == self.depth:
            states[-1] = encoder.layer_norm(states[-1])
        return states


def checkpoint_state(raw: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """A MuQ checkpoint's tensors by `MuqNetwork` name: `model.` removed, training-only
    tensors left out, old weight-norm names renamed. A name outside `model.` is refused."""
    foreign = sorted(key for key in raw if not key.startswith(CHECKPOINT_PREFIX))
    if foreign:
        raise WeightsError(f"{source} does not fit the network: unexpected: "
                           f"{', '.join(foreign[:6])} (MuQ's tensors are all under "
                           f"'{CHECKPOINT_PREFIX}')")
    state = {}
    for key, value in raw.items():
        name = key.removeprefix(CHECKPOINT_PREFIX)
        if name.startswith(TRAINING_ONLY):
            continue
        head, _, last = name.rpartition(".")
        state[f"{head}.{WEIGHT_NORM_NAMES[last]}" if last in WEIGHT_NORM_NAMES else name] = value
    return state


def load_muq(folder: Path, settings: MuqSettings) -> MuqNetwork:
    """`MuqNetwork` with the folder's `model.safetensors`, loaded strictly."""
    from safetensors.torch import load_file

    path = folder / SAFETENSORS
    if not path.exists():
        found = ", ".join(sorted(p.name for p in folder.glob("*.safetensors")))
        raise WeightsError(f"{folder}: MuQ's weights are one {SAFETENSORS}; found {found}")
    network = MuqNetwork(settings).eval()
    state = checkpoint_state(load_file(path), str(path))
    own = network.state_dict()
    state.update({name: own[name] for name in DERIVED if name in own and name not in state})
    load_into(network, state, str(path))
    return network.requires_grad_(False)


class MuqExtractor(FoundationExtractor):
    """MuQ clip embeddings: 1024-d (MuQ-large-msd-iter), one hidden state averaged over time."""

    name = "muq"

    def __init__(self, weights: str | Path = "pretrained", revision: str | None = None,
                 layer: int | Literal["last"] = LAST, window_seconds: float = WINDOW_SECONDS,
                 precision: Precision = "fp32", device: str = "auto",
                 progress: bool = True) -> None:
        check_range("window_seconds", window_seconds, 1.0, 60.0)
        self.layer_option = layer
        self.sample_rate = SAMPLE_RATE
        self.window_samples = round(window_seconds * SAMPLE_RATE)
        super().__init__(weights=weights, device=device, precision=precision,
                         progress=progress,
                         model=PUBLISHED.at(revision), pinned=(PUBLISHED.weights,))

    def load_model(self, folder: Path) -> None:
        if self.snapshot.label == f"{PUBLISHED.repo_id}@{PUBLISHED.revision}":
            self._check_config(folder)
        settings = MuqSettings.from_config(read_config(folder), folder / "config.json")
        self.layer = hidden_state_index(self.layer_option, settings.encoder_depth)
        self.model = load_muq(folder, settings).to(self.device)
        self.dim = settings.encoder_dim
        if self.cpu_float32 and fused():
            self.model.prepare_inference()
        self.optimise_for_cpu(self.model)

    def attention_configs(self) -> tuple[Any, ...]:
        return (self.model.conformer.config,)

    def _check_config(self, folder: Path) -> None:
        """The pinned revision's config.json is the file others pin (hub.py has checked the
        weights file against its pin)."""
        config = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
        if config != CONFIG_SHA256:
            raise WeightsError(
                f"{folder}: config.json sha256 {config}, but {PUBLISHED.repo_id}@"
                f"{PUBLISHED.revision} is pinned at {CONFIG_SHA256}; delete "
                f"{(folder / 'config.json').resolve()} and run again to download it")

    def hidden_states(self, windows: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden state's frames (each (n, frames, dim)), 0 the conformer's input."""
        return self.model.hidden_states(windows)

    def embed_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return frame_sums(self.model.hidden_states(windows, self.layer)[-1])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "layer": self.layer, "pooling": "mean"}
