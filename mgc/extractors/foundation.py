"""What the hub's transformer extractors (MERT, CLAP) share: a pinned snapshot, a device,
and long audio cut into windows of the model's trained length.

A transformer's attention is quadratic in its input: MERT's issue tracker reports a
10-minute clip asking for 90 GB. Each clip is therefore cut into windows of the length the
model was trained on (the last, shorter one kept if it holds at least a second), and the
model sees at most one batch of windows at a time, so memory depends on the batch size and
the window, never on the clip length. Each window gives a sum of vectors and a weight (MERT:
frame sum and frame count; CLAP: the window embedding times its samples), and the clip
vector is their weighted mean: for a clip that fits one window it is exactly the model
card's recipe. The windows of all clips of a batch go through the model together, at most
`SECONDS_PER_PASS` of audio at a time.
"""

from __future__ import annotations

from abc import abstractmethod
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgc.config import invalid
from mgc.extractors.base import Extractor
from mgc.extractors.hub import HubModel, PinnedWeights, Snapshot, resolve_snapshot
from mgc.extractors.kernels import fused, use_onednn_linears
from mgc.extractors.neural import (
    FP32,
    PRECISIONS,
    check_choice,
    full_float32,
    precision_metadata,
    reduced_precision,
    resolve_device,
    return_freed_memory,
)
from mgc.extractors.weights import PRETRAINED
from mgc.layers import LAST

HF_IMPORT_HINT = "the hub extractors need transformers: pip install 'mgc[hf]'"
SECONDS_PER_PASS = 30.0
"""Audio per forward pass, in windows of the model's length, from every clip of the batch
in turn. Batching windows gives the matrix products rows enough (a 5 s MERT window is 374
frames), and a bound in seconds keeps the activations at those of the reference paths,
which run one 30 s clip (MERT, MuQ) or one 10 s window (CLAP) at a time, whatever the batch."""


def window_spans(n_samples: int, window_samples: int, min_tail_samples: int
                 ) -> list[tuple[int, int]]:
    """(start, stop) of the windows a clip of `n_samples` is cut into: full windows, then
    the remainder if it is the whole clip or at least `min_tail_samples` long."""
    spans = [(start, start + window_samples)
             for start in range(0, n_samples - window_samples + 1, window_samples)]
    done = spans[-1][1] if spans else 0
    if n_samples > done and (not spans or n_samples - done >= min_tail_samples):
        spans.append((done, n_samples))
    return spans


def hidden_state_index(layer: int | str, n_layers: int) -> int:
    """`layer` ("last" or an index) as an index into a transformer's `n_layers` + 1 hidden
    states (0 its input), or a ConfigError naming the valid range."""
    if layer == LAST:
        return n_layers
    if isinstance(layer, int) and not isinstance(layer, bool) and 0 <= layer <= n_layers:
        return layer
    raise invalid("layer", layer, f"expected '{LAST}' or a hidden-state index 0-{n_layers}")


def frame_sums(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over time (n, dim), frame count (n,)) of frames (n, time, dim): a window's share
    of the clip's mean over all its frames."""
    count = torch.full((len(frames),), frames.shape[1], dtype=torch.float64)
    return frames.sum(dim=1), count


def import_transformers() -> Any:
    """The transformers package, imported only when a hub model is built (`mgc[hf]`)."""
    try:
        import transformers
    except ImportError:
        raise ImportError(HF_IMPORT_HINT) from None
    return transformers


class FoundationExtractor(Extractor):
    """A hub transformer applied window by window; subclasses set `window_samples` and
    `sample_rate` and implement `load_model` and `embed_windows`."""

    window_samples: int

    def __init__(self, *, weights: str | Path, model: HubModel, device: str,
                 precision: str = FP32, progress: bool = True,
                 pinned: tuple[PinnedWeights, ...] = ()) -> None:
        """`model`: the repository at the commit to load; `pinned`: every weights file the
        extractor pins, which a folder's pickled weights must be one of."""
        if str(weights) == "random":
            raise invalid("weights", weights, f"use '{PRETRAINED}' or a snapshot folder: a hub "
                          "model's architecture comes from its config.json, so there is no "
                          "random baseline")
        check_choice("precision", precision, PRECISIONS)
        self.precision = precision
        self.hub_model = model
        self.device = resolve_device(device)
        self.snapshot: Snapshot = resolve_snapshot(weights, model, progress=progress,
                                                   pinned=pinned)
        self.load_model(self.snapshot.path)

    @abstractmethod
    def load_model(self, folder: Path) -> None:
        """Build the network from the snapshot's config and load its safetensors weights."""

    @abstractmethod
    def embed_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(vector sums (n, dim), weights (n,)) for a batch of equal-length windows."""

    def prepare(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Whole-clip preprocessing before windowing (none by default)."""
        return waveforms

    def attention_configs(self) -> tuple[Any, ...]:
        """The transformers configs whose attention implementation the extractor sets:
        PyTorch's fused `scaled_dot_product_attention` ("sdpa"), or the eager
        matmul-softmax-matmul under `kernels.unfused()` (what FLOPs are counted on)."""
        return ()

    @property
    def cpu_float32(self) -> bool:
        """Whether the extractor runs the CPU float32 path (its own kernels; bf16 runs
        through torch.autocast instead)."""
        return self.device.type == "cpu" and self.precision == FP32

    def optimise_for_cpu(self, model: torch.nn.Module) -> None:
        """Once loaded: on the CPU float32 path, every linear layer through oneDNN
        (kernels.py)."""
        if self.cpu_float32:
            use_onednn_linears(model)
        return_freed_memory()

    @property
    def windows_per_pass(self) -> int:
        """Windows the model sees at once: `SECONDS_PER_PASS` of audio (6 MERT windows,
        3 CLAP windows, 1 MuQ window), whatever the batch size."""
        return max(1, round(SECONDS_PER_PASS * self.sample_rate / self.window_samples))

    def embed_batch(self, waveforms: np.ndarray) -> np.ndarray:
        for config in self.attention_configs():
            config._attn_implementation = "sdpa" if fused() else "eager"
        with torch.inference_mode(), full_float32(self.device):
            clips = self.prepare(torch.from_numpy(np.ascontiguousarray(waveforms)))
            batch, n_samples = clips.shape
            spans = window_spans(n_samples, self.window_samples, self.sample_rate)
            sums = torch.zeros(batch, self.dim, dtype=torch.float64)
            weights = torch.zeros(batch, dtype=torch.float64)
            for length, group in groupby(spans, key=lambda span: span[1] - span[0]):
                starts = [start for start, _ in group]
                # clip by clip, each clip's windows in order: (batch * windows, length). A
                # group's windows are back to back, so when they cover the whole clip (30 s
                # clips, for every model) this is a view of the batch, not a copy of it.
                windows = clips[:, starts[0]:starts[0] + len(starts) * length].reshape(
                    -1, length)
                owners = torch.arange(batch).repeat_interleave(len(starts))
                for first in range(0, len(windows), self.windows_per_pass):
                    piece = slice(first, first + self.windows_per_pass)
                    with reduced_precision(self.device, self.precision):
                        window_sums, window_weights = self.embed_windows(
                            windows[piece].to(self.device))
                    sums.index_add_(0, owners[piece], window_sums.double().cpu())
                    weights.index_add_(0, owners[piece], window_weights.double().cpu())
            return (sums / weights[:, None]).float().numpy()

    @property
    def checkpoint(self) -> str:
        """The snapshot's name in errors and reports: `repo@revision`, or its folder."""
        return self.snapshot.label

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "weights": self.snapshot.label,
                "weights_file": self.snapshot.weights_file,
                "weights_sha256": self.snapshot.sha256, "repo_id": self.hub_model.repo_id,
                "revision": self.hub_model.revision, "licence": self.hub_model.licence,
                "window_samples": self.window_samples, **precision_metadata(self.precision)}
