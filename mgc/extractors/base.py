"""The one interface every embedding model sits behind: waveforms in, one vector per clip out.

Keeping every model behind the same small surface (as EVAR and hear-eval-kit do) lets the
extraction loop, the Parquet writer and `mgc predict` treat all models alike. A subclass
that sets `name` registers itself, so adding a model is adding one module to this package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from mgc.config import check_options, invalid, option_parameters
from mgc.layers import LAST, Layer
from mgc.registry import Registry

REGISTRY: Registry[type[Extractor]] = Registry("extractor")
"""Every extractor class by its `name`, filled as the modules of this package are imported."""

NOT_OPTIONS = ("progress",)
"""Constructor arguments that callers set themselves, never configuration."""

class Extractor(ABC):
    """A clip-level embedding model.

    Subclasses set `name` (the registry key), and in `__init__` the `sample_rate` the model
    expects and the output `dim`; the constructor's keyword parameters, with their type
    hints, are the model's options (`embed.<name>.*` in the pipeline).

    A model whose options include something learnt from the training data (EVAR's
    `precompute`, e.g. BYOL-A's input statistics) says so with `needs_fit` and computes it
    in `fit`; every other model inherits the no-op.
    """

    name: ClassVar[str]
    sample_rate: int
    dim: int
    layers: tuple[Layer, ...] = ()
    """With `layers: all`, every layer `embed_layers` returns, in depth order; the last is
    the model's output (`embed`, `dim`-d). Empty: the extractor emits its output only."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        REGISTRY.add(cls)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options this extractor declares (its constructor's keyword parameters)."""
        return tuple(option_parameters(cls.__init__, NOT_OPTIONS))

    @classmethod
    def check_options(cls, options: Mapping[str, Any], key: str) -> dict[str, Any]:
        """`options` typed, or a ConfigError naming `key.<option>` and the valid options.

        A model without named layers accepts `layers: last` (what it does anyway) and
        refuses `layers: all` with a message that says so."""
        if "layers" in options and "layers" not in cls.option_names():
            if options["layers"] != LAST:
                raise invalid(f"{key}.layers", options["layers"],
                              f"{cls.name} emits one vector and has no named layers; only "
                              f"'{LAST}' is allowed (layers: all is for extractors with named "
                              "layers: " + ", ".join(sorted(
                                  n for n, c in REGISTRY.items() if c.layer_specs({}))) + ")")
            options = {k: v for k, v in options.items() if k != "layers"}
        return check_options(cls.__init__, options, key, exclude=NOT_OPTIONS)

    @classmethod
    def layer_specs(cls, options: Mapping[str, Any]) -> tuple[Layer, ...]:
        """Every layer this model emits with `layers: all` under `options`, in depth order
        (none for a model without named layers), known before anything is built so that
        params can be checked in seconds."""
        return ()

    @property
    def needs_fit(self) -> bool:
        """Whether `fit` must run on training clips before this extractor can embed."""
        return False

    def fit(self, train_waveforms: Iterable[np.ndarray]) -> dict[str, Any]:
        """Learn what the options leave to the training data, from batches of training clips
        (float32 (batch, samples) at `sample_rate`); return the options that rebuild the
        fitted extractor (merged over the configured ones). Nothing to learn by default."""
        return {}

    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Embed a batch of equal-length mono clips.

        `waveforms` is float32 (batch, samples) in [-1, 1] at `self.sample_rate`; the result is
        float32 (batch, self.dim).
        """
        waveforms = _checked_waveforms(waveforms)
        vectors = np.asarray(self.embed_batch(waveforms), dtype=np.float32)
        if vectors.shape != (len(waveforms), self.dim):
            raise RuntimeError(f"extractor {self.name!r} returned shape {vectors.shape}, "
                               f"expected ({len(waveforms)}, {self.dim})")
        return vectors

    def embed_layers(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer of `self.layers` from one forward pass, by name in depth order, each
        float32 (batch, layer dim); the last is what `embed` returns. An extractor without
        `layers: all` returns its output alone, under the name `last`."""
        waveforms = _checked_waveforms(waveforms)
        if not self.layers:
            return {LAST: self.embed(waveforms)}
        outputs = {name: np.asarray(vectors, dtype=np.float32)
                   for name, vectors in self.embed_layers_batch(waveforms).items()}
        expected = {layer.name: (len(waveforms), layer.dim) for layer in self.layers}
        shapes = {name: vectors.shape for name, vectors in outputs.items()}
        if shapes != expected or list(shapes) != list(expected):
            raise RuntimeError(f"extractor {self.name!r} returned layers {shapes}, "
                               f"expected {expected}")
        return outputs

    def embed_layers_batch(self, waveforms: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer of `self.layers` on a validated batch (models with named layers)."""
        raise NotImplementedError(f"extractor {self.name!r} has no named layers")

    @abstractmethod
    def embed_batch(self, waveforms: np.ndarray) -> np.ndarray:
        """The model itself, on a validated float32 (batch, samples) array."""

    def describe(self) -> dict[str, Any]:
        """Everything that determines the embeddings, recorded in the Parquet metadata (the
        layers only when there are several, so a `layers: last` file is as it always was)."""
        described: dict[str, Any] = {"model": self.name, "sample_rate": self.sample_rate,
                                     "dim": self.dim}
        if self.layers:
            described["layers"] = [{"name": layer.name, "dim": layer.dim}
                                   for layer in self.layers]
        return described


def _checked_waveforms(waveforms: np.ndarray) -> np.ndarray:
    waveforms = np.asarray(waveforms, dtype=np.float32)
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be (batch, samples), got shape {waveforms.shape}")
    return waveforms
