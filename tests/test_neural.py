"""mgc/extractors/neural.py: what the three neural extractors share."""

from __future__ import annotations

import pytest
import torch

from mgc.extractors.neural import full_float32, pool_over_time, resolve_device


def test_cuda_extraction_runs_without_tf32_and_restores_the_flags() -> None:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with full_float32(torch.device("cuda")):
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with full_float32(torch.device("cpu")):
            assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_pooling_is_max_plus_mean_or_mean() -> None:
    frames = torch.tensor([[[1.0, 4.0], [3.0, 0.0]]])              # (batch, time, features)
    assert pool_over_time(frames, "mean+max").tolist() == [[5.0, 6.0]]
    assert pool_over_time(frames, "mean").tolist() == [[2.0, 2.0]]


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "meta"])
def test_unknown_devices_are_refused(device: str) -> None:
    with pytest.raises(ValueError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device(device)
