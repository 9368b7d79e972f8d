"""A stand-in for the two torchaudio transforms MuQ's published code uses.

torchaudio has no release for torch 2.13, so `muq.muq.modules.features.MelSTFT` cannot
import the real one here. This package is put on `sys.path` only by the MuQ reference run
(benchmarks/muq_reference/reference.py, in its own process); nothing in `mgc` imports it.
"""

from torchaudio import transforms

__all__ = ["transforms"]
