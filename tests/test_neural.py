"""mgc/extractors/neural.py: what the three neural extractors share, `layers: all` included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from mgc import extractors
from mgc.config import ConfigError
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


LAYER_CASES = [("byola", 16000, {}), ("byola", 16000, {"variant": "v1_d512"}),
               ("panns", 32000, {}), ("vggish", 16000, {"postprocess": False})]
EXPECTED_LAYERS = {
    "byola": [("conv1", 2048), ("conv2", 1024), ("fc", 2048), ("stacked", 3072)],
    "byola_v1_d512": [("conv1", 2048), ("conv2", 1024), ("conv3", 512), ("fc", 512)],
    "panns": [("block1", 64), ("block2", 128), ("block3", 256), ("block4", 512),
              ("block5", 1024), ("block6", 2048), ("fc1", 2048)],
    "vggish": [("conv1", 64), ("conv2", 128), ("conv3", 256), ("conv4", 512), ("fc1", 4096),
               ("fc2", 4096), ("fc3", 128)],
}


def _noise(sample_rate: int, seconds: float = 2.5, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (0.1 * rng.standard_normal((batch, int(seconds * sample_rate)))).astype(np.float32)


@pytest.mark.parametrize(("model", "rate", "options"), LAYER_CASES)
def test_all_layers_keep_the_last_layer_byte_identical(model: str, rate: int,
                                                       options: dict[str, Any]) -> None:
    """`layers: all` runs another graph (every block's output kept), yet its last layer is
    the default extraction's output to the bit, and `embed` gives the same bytes too."""
    waves = _noise(rate)
    default = extractors.load(model, weights="random", device="cpu", **options)
    layered = extractors.load(model, weights="random", device="cpu", layers="all", **options)
    outputs = layered.embed_layers(waves)
    key = model + ("_" + options["variant"] if "variant" in options else "")
    assert [(name, v.shape[1]) for name, v in outputs.items()] == EXPECTED_LAYERS[key]
    assert [(layer.name, layer.dim) for layer in layered.layers] == EXPECTED_LAYERS[key]
    expected = default.embed(waves)
    assert list(outputs.values())[-1].tobytes() == expected.tobytes()
    assert layered.embed(waves).tobytes() == expected.tobytes()
    assert default.layers == () and "layers" not in default.describe()
    assert layered.describe()["layers"] == [{"name": n, "dim": d} for n, d in EXPECTED_LAYERS[key]]
    assert default.embed_layers(waves).keys() == {"last"}


def test_a_model_without_layers_refuses_layers_all_and_accepts_last() -> None:
    with pytest.raises(ConfigError, match=r"mfcc.layers='all'.*no named layers.*byola, "
                                          r"panns, vggish"):
        extractors.load("mfcc", layers="all")
    assert extractors.load("mfcc", layers="last").layers == ()
    with pytest.raises(ConfigError, match="layers"):
        extractors.load("panns", weights="random", device="cpu", layers="some")


@pytest.mark.parametrize("model", ["byola", "panns"])
def test_bf16_is_opt_in_and_close_to_fp32(model: str) -> None:
    """`precision: fp32` (the default) is the code path the default run always had: the
    same bytes, no `precision` in the metadata. bf16 moves the embeddings by at most 2 % of
    their largest value (measured 0.4-0.6 % on 30 s clips), cosine above 0.9995."""
    rate = 16000 if model == "byola" else 32000
    waves = _noise(rate)
    default = extractors.load(model, weights="random", device="cpu")
    explicit = extractors.load(model, weights="random", device="cpu", precision="fp32")
    reduced = extractors.load(model, weights="random", device="cpu", precision="bf16")
    expected = default.embed(waves)
    assert explicit.embed(waves).tobytes() == expected.tobytes()
    assert "precision" not in default.describe() and explicit.describe() == default.describe()
    assert reduced.describe() == {**default.describe(), "precision": "bf16"}
    approximate = reduced.embed(waves)
    assert approximate.dtype == np.float32
    assert np.abs(approximate - expected).max() <= 0.02 * np.abs(expected).max()
    cosine = (approximate * expected).sum(1) / np.linalg.norm(approximate, axis=1) \
        / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.9995


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"precision.*fp32.*bf16"):
        extractors.load("vggish", weights="random", device="cpu", precision="fp16")
