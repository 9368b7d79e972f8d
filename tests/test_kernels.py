"""mgc/extractors/kernels.py: linear layers through oneDNN, and the switch back to plain
PyTorch that FLOP counting and these tests use."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mgc.extractors.kernels import ONEDNN_LINEAR, OneDnnLinear, fused, unfused, use_onednn_linears
from mgc.extractors.neural import in_pieces


class Scaled(nn.Linear):
    """A subclass with its own forward, which the swap must leave alone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def test_onednn_linears_compute_f_linear_and_unfused_is_f_linear_to_the_bit() -> None:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8, bias=False),
                            Scaled(8, 4))
    x = torch.randn(3, 5, 64)
    with torch.inference_mode():
        expected = network(x)
        names = list(network.state_dict())
        assert use_onednn_linears(network) is network
        assert [type(layer) for layer in network] == [OneDnnLinear, nn.ReLU, OneDnnLinear,
                                                      Scaled]
        assert list(network.state_dict()) == names
        fast = network(x)
        with unfused():
            assert not fused()
            plain = network(x)
        assert fused()
    assert torch.equal(plain, expected)
    assert (fast - expected).abs().max() < 1e-5 * expected.abs().max()


@pytest.mark.skipif(not ONEDNN_LINEAR, reason="this torch build has no oneDNN linear")
def test_the_fast_path_is_onednn_on_cpu_float32() -> None:
    layer = use_onednn_linears(nn.Sequential(nn.Linear(16, 4)))[0]
    with torch.inference_mode(), torch.profiler.profile() as profile:
        layer(torch.randn(2, 16))
    ops = {event.name for event in profile.events()}
    assert "mkldnn::_linear_pointwise" in ops and "aten::addmm" not in ops


def test_pieces_are_joined_as_the_whole() -> None:
    x = torch.arange(10.0).reshape(5, 2)
    assert torch.equal(in_pieces(lambda p: p * 2, x, 2), x * 2)
    assert torch.equal(in_pieces(lambda p: p * 2, x, None), x * 2)
    pair = in_pieces(lambda p: (p, p.sum(dim=1)), x, 3)
    assert torch.equal(pair[0], x) and torch.equal(pair[1], x.sum(dim=1))
    named = in_pieces(lambda p: {"a": p, "b": -p}, x, 1)
    assert list(named) == ["a", "b"] and torch.equal(named["b"], -x)
