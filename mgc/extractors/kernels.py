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


class ChannelsLastConv1d(nn.Conv1d):
    """`nn.Conv1d` computed as a 2-d convolution on channels-last (batch, 1, time, channels)
    data on CPU, where oneDNN runs it 1.6x faster than torch's 1-d convolution (512 -> 512
    channels, kernel 3, stride 2: 195 against 121 GFLOP/s on one core); its output keeps
    that layout (time-major strides), which the next such layer takes without a copy.
    Anywhere else, or under `unfused()`, the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fused or x.device.type != "cpu" or self.padding_mode != "zeros" \
                or isinstance(self.padding, str):
            return super().forward(x)
        planar = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return F.conv2d(planar, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]),
                        (0, self.padding[0]), (1, self.dilation[0]), self.groups).squeeze(2)


def use_channels_last_convolutions(module: nn.Module) -> nn.Module:
    """Every `nn.Conv1d` in `module` (exactly that class) computed by `ChannelsLastConv1d`
    from now on; parameters and names unchanged. Returns `module`."""
    for layer in module.modules():
        if type(layer) is nn.Conv1d:
            layer.__class__ = ChannelsLastConv1d
    return module
