"""What the three pretrained extractors share: weights, seeding, device and inference mode.

Each model module supplies one `nn.Module` that maps waveforms (batch, samples) to clip
vectors (batch, dim), front end included, and says how an official weights file loads into
it. This class does the rest the same way for all of them.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mgc.extractors.base import Extractor
from mgc.extractors.weights import WeightFile, resolve_weights

POOLINGS = ("mean+max", "mean")


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when present, else CPU; an unavailable device is an error, not a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r}: expected auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine; "
                         "use device: auto or cpu")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: expected auto, cpu, cuda or cuda:N")
    return resolved


def pool_over_time(frames: torch.Tensor, pooling: str, dim: int = 1) -> torch.Tensor:
    """Clip vector from per-frame features: max + mean summed (as BYOL-A and PANNs do), or mean."""
    mean = frames.mean(dim=dim)
    if pooling == "mean":
        return mean
    return frames.amax(dim=dim) + mean


def check_choice(model: str, key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"embed.{model}.{key}={value!r}: allowed values are "
                         f"{', '.join(map(str, allowed))}")


class NeuralExtractor(Extractor):
    """An extractor backed by a torch network with pretrained, random or local weights."""

    official_weights: WeightFile

    def __init__(self, *, weights: str | Path, device: str, seed: int, progress: bool = True
                 ) -> None:
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.weights = resolve_weights(weights, self.official_weights, progress=progress)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network = self.build_network()
        if self.weights.path is not None:
            self.load_weights(network, self.weights.path)
        self.network = network.eval().to(self.device)

    @abstractmethod
    def build_network(self) -> nn.Module:
        """The whole model, waveforms (batch, samples) -> clip vectors (batch, dim)."""

    @abstractmethod
    def load_weights(self, network: nn.Module, path: Path) -> None:
        """Load an official-layout weights file into `network`, or raise WeightsError."""

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2:
            raise ValueError(f"waveforms must be (batch, samples), got shape {waveforms.shape}")
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(waveforms)).to(self.device)
            return self.network(batch).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights": self.weights.label,
                "weights_sha256": self.weights.sha256,
                "seed": self.seed if self.weights.path is None else None}
