"""PANNs CNN14 (Kong et al.), 32 kHz AudioSet tagger: its 2048-d `embedding` output.

Same network and attribute names as panns_inference's `Cnn14`, so the official checkpoint
loads without renaming; the front end computes torchlibrosa's log-mel with an FFT instead of
torchlibrosa's STFT-as-convolution (same numbers, a fraction of the cost). The checkpoint's
own STFT kernels and mel matrix are not needed, but the mel matrix is compared with ours on
load, so a checkpoint trained on another front end is refused rather than silently misread.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgc.extractors.frontend import MelSpectrogram
from mgc.extractors.neural import (
    POOLINGS,
    ExtractorNetwork,
    NeuralExtractor,
    Pooling,
    Precision,
    check_choice,
    fold_batchnorm_into,
    freeze_in_segments,
    in_pieces,
    pool_over_time,
    run_blocks,
    stack_for_inference,
)
from mgc.extractors.weights import (
    WeightFile,
    WeightsError,
    load_checkpoint,
    load_into,
    select_state_dict,
)
from mgc.layers import LAST, Layer, LayerMode

SAMPLE_RATE = 32000
EMBEDDING_DIM = 2048
AUDIOSET_CLASSES = 527
AMIN = 1e-10
EARLY_BLOCKS = 4
"""On CPU, blocks 1-4 (6 % of the weights, nearly all of the activation memory: 49 MB per
map of a 30 s clip in block 1) run one clip at a time, with the front end, and blocks 5-6
(94 % of the weights, maps a few frames wide) on the whole batch, where one clip alone
would make them 1.6-2.3x slower (measured per block; neural.in_pieces). `layers: all`
splits the same way, each early map pooled as soon as its clip is through: with all six
blocks two clips at a time it cost 1.10x `last` (benchmarks/extract.py)."""
FROZEN_SEGMENT_BYTES = 100 * 2**20
"""Blocks 5-6 are frozen as block 5, block 6's first conv and its second apart
(neural.freeze_in_segments): loading peaks 300 MB lower than with one graph."""
CHANNELS = (1, 64, 128, 256, 512, 1024, 2048)
LAYERS = (*(Layer(f"block{index}", CHANNELS[index]) for index in range(1, 7)),
          Layer("fc1", EMBEDDING_DIM))
"""`layers: all`: each conv block's map averaged over frequency and pooled over time as the
last block's is on its way into `fc1`, then `fc1` itself (the `embedding` output)."""
FRONT_END_KEYS = ("spectrogram_extractor.stft.conv_real.weight",
                  "spectrogram_extractor.stft.conv_imag.weight", "logmel_extractor.melW")

# Zenodo record 3987831. The authors publish no hash; the size is the one reported by
# third parties, and the sha256 is recorded on first download (see weights.py).
OFFICIAL_WEIGHTS = WeightFile(
    "Cnn14_mAP=0.431.pth",
    ("https://zenodo.org/records/3987831/files/Cnn14_mAP%3D0.431.pth?download=1",
     "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"),
    sha256=None, size_bytes=327_428_481)


def panns_log_mel() -> MelSpectrogram:
    """torchlibrosa's front end as Cnn14 configures it: n_fft = window 1024, hop 320, periodic
    Hann, centred with reflect padding, power 2, 64 Slaney bands 50-14000 Hz."""
    return MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=1024, win_length=1024, hop_length=320,
                          n_mels=64, fmin=50, fmax=14000, mel_scale="slaney", norm="slaney")


class ConvBlock(nn.Module):
    """Two 3x3 convolutions without bias, each with BatchNorm and ReLU, then average pooling."""

    def __init__(self, in_channels: int, out_channels: int, pool: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, self.pool) if self.pool > 1 else x

    def fold_batchnorm(self) -> None:
        fold_batchnorm_into(self.conv1, self.bn1)
        fold_batchnorm_into(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()

    def layers(self) -> list[nn.Module]:
        """The block (BatchNorm folded) as a sequence of layers, the same function."""
        return [self.conv1, nn.ReLU(), self.conv2, nn.ReLU(),
                *([nn.AvgPool2d(self.pool)] if self.pool > 1 else [])]


class Cnn14(ExtractorNetwork):
    """Waveforms at 32 kHz -> log-mel -> CNN14 -> the 2048-d `embedding` (inference only:
    the training-time dropout and SpecAugment of the reference are not part of it)."""

    def __init__(self, pooling: Pooling = "mean+max") -> None:
        super().__init__()
        self.log_mel = panns_log_mel()
        self.bn0 = nn.BatchNorm2d(64)
        for index in range(1, 7):
            self.add_module(f"conv_block{index}", ConvBlock(
                CHANNELS[index - 1], CHANNELS[index], pool=2 if index < 6 else 1))
        self.fc1 = nn.Linear(2048, EMBEDDING_DIM)
        self.fc_audioset = nn.Linear(2048, AUDIOSET_CLASSES)
        self.pooling = pooling
        self.frozen_blocks: tuple[nn.Module, nn.Module] | None = None
        """On CPU: (blocks 1-4, blocks 5-6), frozen (EARLY_BLOCKS)."""
        self.block_outputs: tuple[nn.Module, nn.Module] | None = None
        """`layers: all`: (blocks 1-4, blocks 5-6), each returning every block's map."""
        self.frozen_layers = False

    def blocks(self) -> list[ConvBlock]:
        return [getattr(self, f"conv_block{index}") for index in range(1, 7)]

    def convolutions(self, waveforms: torch.Tensor) -> torch.Tensor:
        """The last conv block's map of every clip, from waveforms."""
        if self.frozen_blocks is None:
            return nn.Sequential(*self.blocks())(self.network_input(waveforms))
        early, late = self.frozen_blocks
        return late(in_pieces(lambda piece: early(self.network_input(piece)), waveforms, 1))

    def pooled_maps(self, maps: tuple[torch.Tensor, ...], first: int = 1
                    ) -> dict[str, torch.Tensor]:
        """Block maps (numbered from `first`) averaged over frequency and pooled over time,
        as the last block's is on its way into `fc1`."""
        return {f"block{index}": pool_over_time(conv_map.mean(dim=3), self.pooling, dim=2)
                for index, conv_map in enumerate(maps, first)}

    def network_input(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel in dB through `bn0`, as (batch, 1, frames, mels)."""
        log_mel = 10.0 * torch.log10(self.log_mel(waveforms).clamp(min=AMIN))
        x = self.bn0(log_mel.unsqueeze(-1).transpose(1, 2))      # mel bins as channels
        return x.transpose(1, 3)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = self.convolutions(waveforms).mean(dim=3)          # over frequency
        return F.relu(self.fc1(pool_over_time(x, self.pooling, dim=2)))

    def forward_layers(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.block_outputs is None:
            pooled = self.pooled_maps(run_blocks(self.blocks(), self.network_input(waveforms)))
        else:
            early, late = self.block_outputs

            def early_layers(piece: torch.Tensor) -> dict[str, torch.Tensor]:
                maps = early(self.network_input(piece))
                return {**self.pooled_maps(maps), "map": maps[-1]}

            pooled = in_pieces(early_layers, waveforms, 1 if self.frozen_layers else None)
            pooled.update(self.pooled_maps(late(pooled.pop("map")), EARLY_BLOCKS + 1))
        return {**pooled, "fc1": F.relu(self.fc1(pooled["block6"]))}

    def prepare_inference(self, device: torch.device, all_layers: bool = False,
                          frozen: bool = False) -> None:
        """Fold every BatchNorm of the conv blocks into its conv; on CPU, freeze the blocks
        (blocks 1-4 and 5-6 apart, EARLY_BLOCKS; with `all_layers`, two graphs that return
        every block's map) and drop the eager blocks, whose 300 MB of weights the frozen
        graphs hold in their own layout."""
        blocks = self.blocks()
        for block in blocks:
            block.fold_batchnorm()
        self.frozen_layers = frozen
        if not frozen and not all_layers:
            return
        example = torch.zeros(1, 1, 64, 64)
        early = [layer for block in blocks[:EARLY_BLOCKS] for layer in block.layers()]
        with torch.no_grad():
            late_example = nn.Sequential(*early)(example)
        if all_layers:
            self.block_outputs = (
                stack_for_inference(blocks[:EARLY_BLOCKS], all_layers, frozen, example),
                stack_for_inference(blocks[EARLY_BLOCKS:], all_layers, frozen, late_example))
        else:
            self.frozen_blocks = (
                freeze_in_segments(early, example, FROZEN_SEGMENT_BYTES),
                freeze_in_segments([layer for block in blocks[EARLY_BLOCKS:]
                                    for layer in block.layers()], late_example,
                                   FROZEN_SEGMENT_BYTES))
        for index in range(1, 7):
            delattr(self, f"conv_block{index}")


class PannsExtractor(NeuralExtractor):
    """CNN14 `embedding` output, 2048-d, from 32 kHz audio."""

    name = "panns"
    official_weights = OFFICIAL_WEIGHTS

    def __init__(self, weights: str | Path = "pretrained", pooling: Pooling = "mean+max",
                 layers: LayerMode = LAST, precision: Precision = "fp32",
                 device: str = "auto", seed: int = 0, progress: bool = True) -> None:
        check_choice("pooling", pooling, POOLINGS)
        self.pooling = pooling
        self.sample_rate = SAMPLE_RATE
        self.dim = EMBEDDING_DIM
        super().__init__(weights=weights, device=device, seed=seed, layers=layers,
                         precision=precision, progress=progress)

    @classmethod
    def layer_specs(cls, options: Mapping[str, Any]) -> tuple[Layer, ...]:
        return LAYERS

    def build_network(self) -> nn.Module:
        return Cnn14(self.pooling)

    def load_weights(self, network: nn.Module, path: Path) -> None:
        checkpoint = load_checkpoint(path)
        state = select_state_dict(checkpoint, ("bn0.", "conv_block", "fc1.", "fc_audioset.",
                                               *FRONT_END_KEYS))
        mel = state.pop("logmel_extractor.melW", None)
        if mel is not None:
            ours = network.log_mel.mel_basis
            if mel.shape != ours.shape or not torch.allclose(mel.float(), ours, atol=1e-6):
                raise WeightsError(f"{path}: its mel filterbank (logmel_extractor.melW, "
                                   f"{tuple(mel.shape)}) differs from CNN14's 32 kHz front end; "
                                   "this is a checkpoint for another configuration")
        for key in FRONT_END_KEYS:
            state.pop(key, None)
        load_into(network, state, str(path))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pooling": self.pooling}
