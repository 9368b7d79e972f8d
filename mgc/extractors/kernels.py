"""The CPU kernels the extractors run their matrix products on, and a switch back to plain
PyTorch for counting and checking.

PyTorch's CPU `nn.Linear` calls MKL's sgemm, which takes its AVX2 code path on AMD
processors; oneDNN (the library PyTorch's convolutions already use) runs the same fp32
product with AVX-512. On this project's 2-core AMD EPYC (Zen 5) that is 2.2-2.4x the rate
for every linear layer shape the extractors have (benchmarks/extract.py measures both in
every run), for results within float32 rounding of MKL's (max abs difference 5e-6 on unit-
scale products of depth 1024). `OneDnnLinear` is `nn.Linear` with its forward through
oneDNN on CPU float32 tensors and the plain one everywhere else.

`unfused()` makes every layer built here run as plain PyTorch ops (F.linear, attention as
matmul-softmax-matmul): what torch's FlopCounterMode can count, and what the tests compare
the fast paths with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

_fused = True


def fused() -> bool:
    """Whether the fast kernels are on (they are, outside `unfused()`)."""
    return _fused


@contextmanager
def unfused() -> Iterator[None]:
    """Within this block, every layer of this module runs as plain PyTorch ops."""
    global _fused
    previous, _fused = _fused, False
    try:
        yield
    finally:
        _fused = previous


def _onednn_linear_works() -> bool:
    """Whether this torch build has oneDNN's fused linear operator (x86 builds do)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        probe = torch.ones(1, 2)
        return bool(torch.ops.mkldnn._linear_pointwise(probe, probe, None, "none", [], "")
                    .eq(2).all())
    except (AttributeError, RuntimeError):
        return False


ONEDNN_LINEAR = _onednn_linear_works()


class OneDnnLinear(nn.Linear):
    """`nn.Linear` (same parameters, same state dict) computed by oneDNN on CPU float32
    and bfloat16 inputs; anywhere else, or under `unfused()`, by `F.linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_fused and ONEDNN_LINEAR and x.device.type == "cpu"
                and x.dtype == self.weight.dtype and x.dtype in (torch.float32, torch.bfloat16)):
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


def use_onednn_linears(module: nn.Module) -> nn.Module:
    """Every `nn.Linear` in `module` (exactly that class, not subclasses) computed through
    oneDNN from now on; parameters and names unchanged. Returns `module`."""
    for layer in module.modules():
        if type(layer) is nn.Linear:
            layer.__class__ = OneDnnLinear
    return module
