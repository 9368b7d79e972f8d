"""Weights for the pretrained extractors: official layouts load, anything else is refused.

Official files are served from 127.0.0.1 in their real layouts (this machine cannot reach
GitHub or Zenodo); the cache is the per-test MGC_CACHE.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mgc import extractors
from mgc.cache import cache_dir
from mgc.download import ChecksumError
from mgc.extractors import byola, panns, vggish
from mgc.extractors.weights import WeightsError
from tests.http_server import FileServer, unused_port


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def _byola_v1_state(seed: int) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = byola.AudioNTT(3, 512, stack_conv_features=False)
    return encoder.state_dict()


def _bytes_of(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _embedding(extractor: extractors.Extractor) -> np.ndarray:
    wave = np.random.default_rng(0).standard_normal((1, extractor.sample_rate)) * 0.1
    return extractor.embed(wave.astype(np.float32))


@pytest.mark.parametrize("layout", ["bare", "wrapped", "prefixed"])
def test_byola_official_layouts_load_the_same_weights(tmp_path: Path, layout: str) -> None:
    """A bare state dict, {'model': ...}, or 'model.'-prefixed keys with training-only parts
    (projector, predictor) beside them: all give the same network."""
    state = _byola_v1_state(seed=5)
    saved: Any = {
        "bare": state,
        "wrapped": {"model": state, "epoch": 100},
        "prefixed": {**{f"model.{k}": v for k, v in state.items()},
                     "projector.0.weight": torch.zeros(3, 3), "target.fc.0.bias": torch.ones(3)},
    }[layout]
    path = tmp_path / "AudioNTT2020-BYOLA-64x96d512.pth"
    torch.save(saved, path)
    extractor = extractors.load("byola", weights=str(path), variant="v1_d512", device="cpu")
    network = extractor.build_network()
    extractor.load_weights(network, path)
    for key, value in state.items():
        assert torch.equal(network.encoder.state_dict()[key], value)
    assert extractor.describe()["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    reference = extractors.load("byola", weights=str(path), variant="v1_d512", device="cpu")
    assert np.array_equal(_embedding(extractor), _embedding(reference))


def test_weights_for_another_variant_are_refused_with_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "d512.pth"
    torch.save(_byola_v1_state(seed=0), path)
    with pytest.raises(WeightsError, match=r"does not fit the network.*features\.8"):
        extractors.load("byola", weights=str(path), variant="v2", device="cpu")
    with pytest.raises(WeightsError, match=r"wrong shape: fc\.0\.weight"):
        extractors.load("byola", weights=str(path), variant="v1_d1024", device="cpu")


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_a_weights_file_carrying_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    state = _byola_v1_state(seed=0)
    state["fc.0.weight"] = _RunsCode(marker)
    path = tmp_path / "evil.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="not a loadable weights file"):
        extractors.load("byola", weights=str(path), variant="v1_d512", device="cpu")
    assert not marker.exists()


def test_a_missing_local_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"no such file.*'pretrained', 'random'"):
        extractors.load("panns", weights=str(tmp_path / "nope.pth"), device="cpu")


def _serve_official(monkeypatch: pytest.MonkeyPatch, http_server: FileServer, body: bytes,
                    *, sha256: str | None, size_bytes: int | None = None) -> None:
    """Point BYOL-A v1 d512's official file at the local server."""
    conv_blocks, d, official = byola.VARIANTS["v1_d512"]
    url = http_server.serve(f"/byol-a/{official.file_name}", body)
    served = dataclasses.replace(official, urls=(url,), sha256=sha256, size_bytes=size_bytes)
    monkeypatch.setitem(byola.VARIANTS, "v1_d512", (conv_blocks, d, served))


def test_pretrained_downloads_once_into_the_cache_and_verifies(
        monkeypatch: pytest.MonkeyPatch, http_server: FileServer) -> None:
    body = _bytes_of(_byola_v1_state(seed=1))
    _serve_official(monkeypatch, http_server, body, sha256=hashlib.sha256(body).hexdigest())
    first = extractors.load("byola", weights="pretrained", variant="v1_d512", device="cpu",
                            progress=False)
    cached = cache_dir("weights") / "AudioNTT2020-BYOLA-64x96d512.pth"
    assert cached.read_bytes() == body
    second = extractors.load("byola", weights="pretrained", variant="v1_d512", device="cpu",
                             progress=False)
    assert len(http_server.requests) == 1
    assert first.describe()["weights"] == "pretrained"
    assert np.array_equal(_embedding(first), _embedding(second))


def test_pretrained_with_the_wrong_sha256_is_refused_and_deleted(
        monkeypatch: pytest.MonkeyPatch, http_server: FileServer) -> None:
    _serve_official(monkeypatch, http_server, _bytes_of(_byola_v1_state(seed=1)),
                    sha256="0" * 64)
    with pytest.raises(WeightsError, match="expected 0000"):
        extractors.load("byola", weights="pretrained", variant="v1_d512", device="cpu",
                        progress=False)
    assert list(cache_dir("weights").iterdir()) == []


def test_published_sha256_of_byola_v1_d512_is_pinned() -> None:
    official = byola.VARIANTS["v1_d512"][2]
    assert official.sha256 == "6cc64226318494f06ef41d7e5810be7d37abfd6490da45abdab48f188c5332e2"
    assert official.size_bytes == 2_410_576
    assert vggish.OFFICIAL_WEIGHTS.sha256 == "10086976"
    assert vggish.OFFICIAL_PCA.sha256 == "970ea276"


def test_without_a_published_hash_the_first_download_is_recorded_and_enforced(
        monkeypatch: pytest.MonkeyPatch, http_server: FileServer) -> None:
    body = _bytes_of(_byola_v1_state(seed=2))
    _serve_official(monkeypatch, http_server, body, sha256=None, size_bytes=len(body))
    extractors.load("byola", weights="pretrained", variant="v1_d512", device="cpu",
                    progress=False)
    cached = cache_dir("weights") / "AudioNTT2020-BYOLA-64x96d512.pth"
    record = cached.with_name(cached.name + ".sha256")
    assert record.read_text().strip() == hashlib.sha256(body).hexdigest()
    tampered = _bytes_of(_byola_v1_state(seed=3))
    assert len(tampered) == len(body)
    cached.write_bytes(tampered)
    with pytest.raises(ChecksumError, match="was recorded when it was first downloaded"):
        extractors.load("byola", weights="pretrained", variant="v1_d512", device="cpu",
                        progress=False)


def test_without_a_published_hash_a_file_of_the_wrong_size_is_deleted(
        monkeypatch: pytest.MonkeyPatch, http_server: FileServer) -> None:
    body = _bytes_of(_byola_v1_state(seed=2))
    _serve_official(monkeypatch, http_server, body, sha256=None, size_bytes=len(body) + 1)
    with pytest.raises(WeightsError, match=f"{len(body)} bytes, expected {len(body) + 1}"):
        extractors.load("byola", weights="pretrained", variant="v1_d512", device="cpu",
                        progress=False)
    assert list(cache_dir("weights").iterdir()) == []


def test_offline_pretrained_names_the_url_and_the_cache_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{unused_port()}/Cnn14_mAP%3D0.431.pth"
    monkeypatch.setattr(panns.PannsExtractor, "official_weights",
                        dataclasses.replace(panns.OFFICIAL_WEIGHTS, urls=(url,)))
    with pytest.raises(WeightsError) as error:
        extractors.load("panns", weights="pretrained", device="cpu", progress=False)
    message = str(error.value)
    assert url in message
    assert f"place it at {cache_dir('weights') / 'Cnn14_mAP=0.431.pth'}" in message


def test_the_official_urls_are_the_published_locations() -> None:
    assert byola.VARIANTS["v2"][2].urls[0] == ("https://raw.githubusercontent.com/nttcslab/"
                                               "byol-a/master/v2/AudioNTT2022-BYOLA-64x96d2048.pth")
    assert all("zenodo.org/record" in url and "3987831" in url
               for url in panns.OFFICIAL_WEIGHTS.urls)
    assert vggish.OFFICIAL_PCA.urls == ("https://github.com/harritaylor/torchvggish/releases/"
                                        "download/v0.1/vggish_pca_params-970ea276.pth",)


def test_random_weights_are_seeded_and_labelled() -> None:
    same = [extractors.load("vggish", weights="random", postprocess=False, seed=3, device="cpu")
            for _ in range(2)]
    other = extractors.load("vggish", weights="random", postprocess=False, seed=4, device="cpu")
    assert np.array_equal(_embedding(same[0]), _embedding(same[1]))
    assert not np.array_equal(_embedding(same[0]), _embedding(other))
    described = same[0].describe()
    assert described["weights"] == "random" and described["seed"] == 3
    assert described["weights_sha256"] is None


def test_building_an_extractor_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    extractors.load("byola", weights="random", variant="v1_d512", device="cpu")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("name", "options", "message"), [
    ("byola", {"variant": "v3"}, r"^byola\.variant='v3'.*v2, v1_d512"),
    ("byola", {"normalisation": [1.0, 0.0]}, r"^byola\.normalisation.*std > 0"),
    ("byola", {"normalisation": "speech"}, r"^byola\.normalisation.*paper, train"),
    ("byola", {"pooling": "max", "variant": "v2"}, r"^byola\.pooling='max'.*mean\+max, mean"),
    ("panns", {"pooling": "max"}, r"^panns\.pooling='max'.*mean\+max, mean"),
    ("panns", {"poolin": "max"},
     r"^panns\.poolin: unknown.*device, layers, pooling, precision, seed, weights"),
    ("vggish", {"pca": "random"}, r"^vggish\.pca='random'"),
    ("vggish", {"postprocess": "yes"}, r"^vggish\.postprocess='yes'"),
    ("panns", {"device": "tpu"}, r"device='tpu'"),
])
def test_bad_options_name_the_key_and_the_allowed_values(name: str, options: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extractors.load(name, weights="random", **options)


def test_asking_for_cuda_without_it_is_an_error_not_a_fallback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert extractors.load("byola", weights="random", device="auto").device.type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        extractors.load("byola", weights="random", device="cuda")


def test_vggish_pca_file_with_numpy_arrays_loads_and_a_wrong_shape_is_refused(
        tmp_path: Path) -> None:
    good, bad = tmp_path / "pca.pth", tmp_path / "bad_pca.pth"
    torch.save({"pca_eigen_vectors": np.eye(128), "pca_means": np.zeros((128, 1))}, good)
    torch.save({"pca_eigen_vectors": np.eye(64), "pca_means": np.zeros(64)}, bad)
    extractor = extractors.load("vggish", weights="random", pca=str(good), device="cpu")
    assert extractor.describe()["pca_sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    vectors = _embedding(extractor)
    assert vectors.min() >= 0 and vectors.max() <= 255
    with pytest.raises(WeightsError, match=r"PCA shapes \(64, 64\)"):
        extractors.load("vggish", weights="random", pca=str(bad), device="cpu")


def test_vggish_refuses_clips_shorter_than_one_example() -> None:
    extractor = extractors.load("vggish", weights="random", postprocess=False, device="cpu")
    with pytest.raises(ValueError, match="at least 15600 samples"):
        extractor.embed(np.zeros((1, 15599), np.float32))
    assert extractor.embed(np.zeros((1, 15600), np.float32)).shape == (1, 128)
