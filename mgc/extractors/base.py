"""The one interface every embedding model sits behind: waveforms in, one vector per clip out.

Keeping every model behind the same small surface (as EVAR and hear-eval-kit do) lets the
extraction loop, the Parquet writer and `mgc predict` treat all models alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


class Extractor(ABC):
    """A clip-level embedding model.

    Subclasses set `name` (the registry key), and in `__init__` the `sample_rate` the model
    expects and the output `dim`.
    """

    name: ClassVar[str]
    sample_rate: int
    dim: int

    @abstractmethod
    def embed(self, waveforms: np.ndarray) -> np.ndarray:
        """Embed a batch of equal-length mono clips.

        `waveforms` is float32 (batch, samples) in [-1, 1] at `self.sample_rate`; the result is
        float32 (batch, self.dim).
        """

    def describe(self) -> dict[str, Any]:
        """Everything that determines the embeddings, recorded in the Parquet metadata."""
        return {"model": self.name, "sample_rate": self.sample_rate, "dim": self.dim}
