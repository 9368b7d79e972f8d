"""VGGish (Hershey et al.), as ported to PyTorch by torchvggish: 128-d per 0.96 s example.

The front end follows `vggish_input.waveform_to_examples`, which differs from librosa's in
ways that matter for pretrained weights: frames are not centred, the spectrum is a
magnitude (not power) of a 400-sample window in a 512-point FFT, and the HTK mel triangles
are drawn in mel space (not Hz) with the DC bin zeroed. The network and the optional PCA
postprocessing (whitening, clipping to [-2, 2], 8-bit quantisation) are torchvggish's, key
names included. Examples are pooled into one clip vector.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mgc.config import invalid
from mgc.extractors.neural import (
    POOLINGS,
    BlockOutputs,
    ExtractorNetwork,
    NeuralExtractor,
    Pooling,
    Precision,
    check_choice,
    in_pieces,
    pool_over_time,
    stack_for_inference,
)
from mgc.extractors.weights import (
    PRETRAINED,
    RANDOM,
    ResolvedWeights,
    WeightFile,
    WeightsError,
    load_checkpoint,
    load_into,
    resolve_weights,
    select_state_dict,
)
from mgc.layers import LAST, Layer, LayerMode

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400          # 25 ms
HOP_SAMPLES = 160             # 10 ms
FFT_LENGTH = 512
N_MELS = 64
MEL_MIN_HZ, MEL_MAX_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96           # 0.96 s, non-overlapping
EMBEDDING_DIM = 128
CLIPS_PER_PASS = 1
QUANTISE_RANGE = (-2.0, 2.0)
CONV_BLOCKS = ((64,), (128,), (256, 256), (512, 512))
"""The VGG stack [64 M 128 M 256 256 M 512 512 M] as its four blocks, each ending in a pool."""
LAYERS = (*(Layer(f"conv{index}", widths[-1]) for index, widths in enumerate(CONV_BLOCKS, 1)),
          Layer("fc1", 4096), Layer("fc2", 4096), Layer("fc3", EMBEDDING_DIM))
"""`layers: all`: each conv block's map averaged over frequency, its frames (every example's,
in order) pooled over the clip as the examples' embeddings are; each fc layer after its ReLU,
pooled over the examples. `fc3` is the model's output (with `final_relu` and `postprocess` as
set)."""

_RELEASE = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
# torch.hub names files by the first 8 hex digits of their sha256: that prefix is the pin.
OFFICIAL_WEIGHTS = WeightFile("vggish-10086976.pth", (_RELEASE + "vggish-10086976.pth",),
                              sha256="10086976")
OFFICIAL_PCA = WeightFile("vggish_pca_params-970ea276.pth",
                          (_RELEASE + "vggish_pca_params-970ea276.pth",), sha256="970ea276")


def min_samples() -> int:
    """The shortest input that yields one example (0.975 s at 16 kHz)."""
    return WINDOW_SAMPLES + HOP_SAMPLES * (EXAMPLE_FRAMES - 1)


def vggish_mel_matrix(n_spectrum_bins: int = FFT_LENGTH // 2 + 1) -> np.ndarray:
    """(spectrum bins, 64) HTK mel weights of the VGGish front end.

    Triangles over 64 bands 125-7500 Hz whose slopes are linear in mel (1127 ln(1 + f/700)),
    peak 1, no area normalisation, and nothing from the DC bin.
    """
    def to_mel(hertz: np.ndarray) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(hertz, dtype=np.float64) / 700.0)

    bin_mels = to_mel(np.linspace(0.0, SAMPLE_RATE / 2, n_spectrum_bins))
    edges = np.linspace(to_mel(MEL_MIN_HZ), to_mel(MEL_MAX_HZ), N_MELS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mels[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


class VggishExamples(nn.Module):
    """Waveforms (batch, samples) at 16 kHz -> log-mel examples (batch, examples, 96, 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WINDOW_SAMPLES, periodic=True,
                                                         dtype=torch.float64), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(vggish_mel_matrix()),
                             persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.shape[-1] < min_samples():
            raise ValueError(f"VGGish needs at least {min_samples()} samples (0.975 s at 16 kHz) "
                             f"per clip, got {waveforms.shape[-1]}")
        # float64 like the numpy reference: the log of small mel energies amplifies float32
        # rounding, and the front end is a small share of the cost.
        frames = waveforms.double().unfold(-1, WINDOW_SAMPLES, HOP_SAMPLES) * self.window
        magnitude = torch.fft.rfft(frames, n=FFT_LENGTH).abs()
        log_mel = torch.log(magnitude @ self.mel_basis + LOG_OFFSET).float()
        n_examples = log_mel.shape[1] // EXAMPLE_FRAMES
        examples = log_mel[:, :n_examples * EXAMPLE_FRAMES]
        return examples.reshape(log_mel.shape[0], n_examples, EXAMPLE_FRAMES, N_MELS)


class Vggish(ExtractorNetwork):
    """torchvggish's VGG: conv stack [64 M 128 M 256 256 M 512 512 M], NHWC flatten, 4096-4096-128.

    `final_relu` keeps the ReLU after the 128-d layer that the torchvggish port has and the
    current TensorFlow model does not. `pca` (eigenvectors, means) enables postprocessing.
    """

    def __init__(self, *, final_relu: bool, pooling: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 1
        for widths in CONV_BLOCKS:
            for width in widths:
                layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
                in_channels = width
            layers.append(nn.MaxPool2d(2, stride=2))
        self.features = nn.Sequential(*layers)
        self.block_outputs: nn.Module | None = None
        self.clips_per_pass: int | None = None
        """Set on CPU: clips at a time through the front end and the conv stack
        (neural.in_pieces). A 30 s clip's 31 examples have 49 MB of first conv maps; one
        clip at a time runs as fast as two (8 clips in 1.23-1.27 s against 1.29-1.34 s) and
        holds what torchvggish holds, one clip's examples: peak RSS 871-879 MB against
        938-1015 at two clips, torchvggish 840."""
        head: list[nn.Module] = [nn.Linear(512 * 4 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096),
                                 nn.ReLU(), nn.Linear(4096, EMBEDDING_DIM)]
        self.embeddings = nn.Sequential(*head, *([nn.ReLU()] if final_relu else []))
        self.examples = VggishExamples()
        self.pooling = pooling
        self.pca: tuple[torch.Tensor, torch.Tensor] | None = None

    def embed_examples(self, examples: torch.Tensor) -> torch.Tensor:
        """(n, 96, 64) log-mel examples -> (n, 128) embeddings, postprocessed if PCA is set."""
        return self.head(self.features(examples.unsqueeze(1)))

    def head(self, maps: torch.Tensor) -> torch.Tensor:
        """The conv stack's (n, 512, 6, 4) maps -> (n, 128) embeddings."""
        x = maps.permute(0, 2, 3, 1).reshape(maps.shape[0], -1)    # NHWC flatten, as TF did
        return self.postprocessed(self.embeddings(x))

    def example_maps(self, stack: nn.Module, waveforms: torch.Tensor,
                     reduce: Callable[[Any], Any] = lambda maps: maps) -> Any:
        """`stack` (conv layers) on every example of the clips, `clips_per_pass` clips at a
        time: (batch * examples, ch, time, mel) maps, or a tuple of them, each piece's
        through `reduce` before the pieces are joined."""
        def convolved(piece: torch.Tensor) -> Any:
            return reduce(stack(self.examples(piece).reshape(-1, 1, EXAMPLE_FRAMES, N_MELS)))
        return in_pieces(convolved, waveforms, self.clips_per_pass)

    def postprocessed(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d layer through the PCA postprocessing, where it is set."""
        if self.pca is None:
            return x
        eigenvectors, means = self.pca
        whitened = (x - means) @ eigenvectors.T
        low, high = QUANTISE_RANGE
        return torch.round((whitened.clamp(low, high) - low) * (255.0 / (high - low)))

    def conv_blocks(self) -> list[nn.Sequential]:
        """`features` cut after each pool: one module per conv block."""
        ends = [index + 1 for index, layer in enumerate(self.features)
                if isinstance(layer, nn.MaxPool2d)]
        return [self.features[start:end] for start, end in zip([0, *ends], ends, strict=False)]

    def prepare_inference(self, device: torch.device, all_layers: bool = False,
                          frozen: bool = False) -> None:
        """On CPU, freeze the conv stack (no BatchNorm to fold in VGGish); with `all_layers`,
        into one graph that returns every block's map."""
        self.clips_per_pass = CLIPS_PER_PASS if device.type == "cpu" else None
        if not frozen and not all_layers:
            return
        blocks = self.conv_blocks() if all_layers else list(self.features)
        stack = stack_for_inference(blocks, all_layers, frozen,
                                    torch.zeros(1, 1, EXAMPLE_FRAMES, N_MELS))
        if all_layers:
            self.block_outputs = stack
        else:
            self.features = stack

    def forward_layers(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        stack = (self.block_outputs if self.block_outputs is not None
                 else BlockOutputs(self.conv_blocks()))

        def block_frames(maps: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
            """Each block's (n, ch, time, mel) map averaged over mel bands, (n, time, ch),
            as soon as its clips are through, and the last map whole (for the head)."""
            return {**{f"conv{index}": conv_map.mean(dim=3).transpose(1, 2)
                       for index, conv_map in enumerate(maps, 1)}, "last": maps[-1]}

        frames = self.example_maps(stack, waveforms, block_frames)
        last_map = frames.pop("last")
        batch = len(waveforms)
        per_example = {name: conv_frames.reshape(batch, -1, conv_frames.shape[-1])
                       for name, conv_frames in frames.items()}
        x = last_map.permute(0, 2, 3, 1).reshape(len(last_map), -1)   # NHWC flatten
        linear = 0
        for layer in self.embeddings:
            x = layer(x)
            if isinstance(layer, nn.Linear):
                linear += 1
            if linear < 3 and isinstance(layer, nn.ReLU):
                per_example[f"fc{linear}"] = x.reshape(batch, -1, x.shape[-1])
        per_example["fc3"] = self.postprocessed(x).reshape(batch, -1, EMBEDDING_DIM)
        return {name: pool_over_time(vectors, self.pooling) for name, vectors
                in per_example.items()}

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        vectors = self.head(self.example_maps(self.features, waveforms))
        return pool_over_time(vectors.reshape(len(waveforms), -1, EMBEDDING_DIM), self.pooling)


class VggishExtractor(NeuralExtractor):
    """VGGish clip embeddings (128-d): examples' embeddings pooled over the clip.

    `postprocess` applies the released PCA + quantisation (torchvggish's default); its
    parameters come from `pca` ("pretrained" or a path). With random weights the PCA fitted
    to the real network means nothing, so the default run turns postprocessing off.
    """

    name = "vggish"
    official_weights = OFFICIAL_WEIGHTS

    def __init__(self, weights: str | Path = "pretrained", postprocess: bool = True,
                 pca: str | Path = PRETRAINED, final_relu: bool = True,
                 pooling: Pooling = "mean", layers: LayerMode = LAST,
                 precision: Precision = "fp32", device: str = "auto", seed: int = 0,
                 progress: bool = True) -> None:
        check_choice("pooling", pooling, POOLINGS)
        check_choice("postprocess", postprocess, (True, False))
        check_choice("final_relu", final_relu, (True, False))
        if str(pca) == RANDOM:
            raise invalid("pca", pca, "PCA parameters are fitted to the network; use "
                          "'pretrained', a file path, or postprocess: false")
        self.postprocess = postprocess
        self.final_relu = final_relu
        self.pooling = pooling
        self.sample_rate = SAMPLE_RATE
        self.dim = EMBEDDING_DIM
        self.pca: ResolvedWeights | None = (
            resolve_weights(pca, OFFICIAL_PCA, progress=progress) if postprocess else None)
        super().__init__(weights=weights, device=device, seed=seed, layers=layers,
                         precision=precision, progress=progress)
        if self.pca is not None and self.pca.path is not None:
            self.network.pca = tuple(t.to(self.device) for t in load_pca(self.pca.path))

    @classmethod
    def layer_specs(cls, options: Mapping[str, Any]) -> tuple[Layer, ...]:
        return LAYERS

    def build_network(self) -> nn.Module:
        return Vggish(final_relu=self.final_relu, pooling=self.pooling)

    def load_weights(self, network: nn.Module, path: Path) -> None:
        # The optional final ReLU has no weights: the keys are the same with or without it.
        state = select_state_dict(load_checkpoint(path), ("features.", "embeddings."))
        load_into(network, state, str(path))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "postprocess": self.postprocess,
                "pca_sha256": self.pca.sha256 if self.pca else None,
                "final_relu": self.final_relu, "pooling": self.pooling}


def load_pca(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvectors (128, 128), means (128,)) from a torchvggish PCA parameters file."""
    params = load_checkpoint(path)
    try:
        eigenvectors = torch.as_tensor(np.asarray(params["pca_eigen_vectors"]), dtype=torch.float32)
        means = torch.as_tensor(np.asarray(params["pca_means"]), dtype=torch.float32).reshape(-1)
    except (KeyError, TypeError, IndexError):
        raise WeightsError(
            f"{path}: expected a dict with pca_eigen_vectors and pca_means") from None
    if eigenvectors.shape != (EMBEDDING_DIM, EMBEDDING_DIM) or means.shape != (EMBEDDING_DIM,):
        raise WeightsError(f"{path}: PCA shapes {tuple(eigenvectors.shape)} and "
                           f"{tuple(means.shape)}, expected (128, 128) and (128,)")
    return eigenvectors, means
