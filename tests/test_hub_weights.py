"""mgc.extractors.hub on first contact: `weights: pretrained` fetched from a hub (a local one
on 127.0.0.1 speaking the hub's HTTP API, reached through `HF_ENDPOINT` as a mirror would
be) takes the configs and the one pinned weights file, and reads it only once its size and
sha256 are the pinned ones; a pickled `pytorch_model.bin` loads only when pinned, through
the restricted unpickler, and gives the same model as safetensors."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from benchmarks.references import random_mert_snapshot
from mgc import extractors
from mgc.extractors import mert
from mgc.extractors.hub import PICKLE, SAFETENSORS, HubModel, PinnedWeights, snapshot_folder
from mgc.extractors.weights import WeightsError
from tests.hub_server import HubServer

REPO = Path(__file__).resolve().parents[1]
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MERT-shaped repository as the hub holds it: configs, model.safetensors, and the
    same tensors pickled as pytorch_model.bin."""
    folder = random_mert_snapshot(tmp_path_factory.mktemp("hub") / "repo")
    from safetensors.torch import load_file

    torch.save(load_file(folder / SAFETENSORS), folder / PICKLE)
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pickle_only(published: Path, target: Path) -> Path:
    target.mkdir()
    for path in published.iterdir():
        if path.name != SAFETENSORS:
            shutil.copy(path, target / path.name)
    return target


class _Marker:
    """A pickle that touches a file when unpickled by the unrestricted unpickler."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.path}",)


def _pin(monkeypatch: pytest.MonkeyPatch, weights: PinnedWeights,
         revision: str = REVISION) -> HubModel:
    model = HubModel("m-a-p/MERT-v1-95M", revision, weights, "CC-BY-NC-4.0")
    monkeypatch.setitem(mert.VARIANTS, "95M", model)
    return model


def _embed(extractor: extractors.Extractor) -> np.ndarray:
    wave = np.random.default_rng(0).standard_normal((1, 24000)).astype(np.float32)
    return extractor.embed(0.1 * wave)


def test_a_pinned_pickle_loads_as_the_same_model(published: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _pickle_only(published, tmp_path / "bin")
    _pin(monkeypatch, PinnedWeights(PICKLE, _sha256(folder / PICKLE)))
    pickled = extractors.load("mert", weights=str(folder), device="cpu")
    reference = extractors.load("mert", weights=str(published), device="cpu")
    assert pickled.describe()["weights_file"] == PICKLE
    assert reference.describe()["weights_file"] == SAFETENSORS
    assert np.array_equal(_embed(pickled), _embed(reference))


def test_an_unpinned_pickle_is_refused_unread(published: Path, tmp_path: Path) -> None:
    folder = _pickle_only(published, tmp_path / "bin")
    marker = tmp_path / "unpickled"
    with (folder / PICKLE).open("wb") as file:
        pickle.dump({"weight": _Marker(marker)}, file, protocol=2)
    with pytest.raises(WeightsError, match=r"only pytorch_model\.bin .* reads a pickle only "
                                           r"when its sha256 is one it pins"):
        extractors.load("mert", weights=str(folder), device="cpu")
    assert not marker.exists()


def test_a_pinned_pickle_with_code_is_stopped_by_the_restricted_unpickler(
        published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _pickle_only(published, tmp_path / "bin")
    marker = tmp_path / "unpickled"
    with (folder / PICKLE).open("wb") as file:
        pickle.dump({"weight": _Marker(marker)}, file, protocol=2)
    _pin(monkeypatch, PinnedWeights(PICKLE, _sha256(folder / PICKLE)))
    with pytest.raises(WeightsError, match="the restricted unpickler refused it"):
        extractors.load("mert", weights=str(folder), device="cpu")
    assert not marker.exists()


def _load_pretrained_from(hub: HubServer, cache: Path) -> subprocess.CompletedProcess[str]:
    """`weights: pretrained` in a fresh interpreter whose hub is `hub` (HF_ENDPOINT), with
    the pins the test process has patched in passed along."""
    pin = mert.VARIANTS["95M"]
    statement = (
        "from mgc import extractors\n"
        "from mgc.extractors import mert\n"
        "from mgc.extractors.hub import HubModel, PinnedWeights\n"
        f"mert.VARIANTS['95M'] = HubModel({pin.repo_id!r}, {pin.revision!r}, "
        f"PinnedWeights({pin.weights.file!r}, {pin.weights.sha256!r}, {pin.weights.size!r}), "
        f"{pin.licence!r})\n"
        "described = extractors.load('mert', weights='pretrained', device='cpu', "
        "progress=False).describe()\n"
        "print(described['weights'], described['weights_file'], described['weights_sha256'])\n")
    return subprocess.run([sys.executable, "-c", statement], cwd=REPO, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "HF_ENDPOINT": hub.endpoint,
                               "MGC_CACHE": str(cache), "HF_HUB_DISABLE_TELEMETRY": "1"})


def test_pretrained_takes_the_configs_and_the_pinned_file_from_the_hub(
        published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = _sha256(published / PICKLE)
    _pin(monkeypatch, PinnedWeights(PICKLE, digest, (published / PICKLE).stat().st_size))
    with HubServer() as hub:
        hub.publish("m-a-p/MERT-v1-95M", REVISION, published)
        result = _load_pretrained_from(hub, tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [f"m-a-p/MERT-v1-95M@{REVISION}", PICKLE, digest]
    assert sorted(hub.fetched) == sorted(p.name for p in published.iterdir()
                                         if p.name != SAFETENSORS)


def test_a_served_file_that_is_not_the_pinned_one_is_refused(
        published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = _pickle_only(published, tmp_path / "tampered")
    tensors = torch.load(served / PICKLE, weights_only=True)
    tensors["masked_spec_embed"] = tensors["masked_spec_embed"] + 1
    torch.save(tensors, served / PICKLE)
    pinned = _sha256(published / PICKLE)
    _pin(monkeypatch, PinnedWeights(PICKLE, pinned))
    with HubServer() as hub:
        hub.publish("m-a-p/MERT-v1-95M", REVISION, served)
        result = _load_pretrained_from(hub, tmp_path / "cache")
    assert result.returncode != 0
    assert (f"sha256 {_sha256(served / PICKLE)}, but pytorch_model.bin of "
            f"m-a-p/MERT-v1-95M@{REVISION} is pinned at {pinned}") in result.stderr


def test_a_file_of_the_wrong_size_is_refused_before_it_is_hashed(
        published: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    size = (published / SAFETENSORS).stat().st_size
    model = _pin(monkeypatch, PinnedWeights(SAFETENSORS, "0" * 64, size + 1))
    shutil.copytree(published, snapshot_folder(model))
    with pytest.raises(WeightsError, match=f"{size} bytes, but model.safetensors of "
                                           f"m-a-p/MERT-v1-95M@{REVISION} has {size + 1}"):
        extractors.load("mert", weights="pretrained", device="cpu", progress=False)


def test_a_pickle_nothing_pins_is_not_even_downloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from mgc.extractors import hub

    fetched: list[HubModel] = []
    monkeypatch.setattr(hub, "_fetch", lambda model, progress: fetched.append(model))
    assert mert.VARIANTS["330M"].weights.sha256 is None     # in no public record (README)
    with pytest.raises(WeightsError, match=r"m-a-p/MERT-v1-330M@5240c27\w+ publishes its "
                                           r"weights only as pytorch_model\.bin, a pickle "
                                           r"whose sha256 is in no public record"):
        extractors.load("mert", weights="pretrained", variant="330M", device="cpu")
    assert fetched == []


def test_another_revision_reads_its_safetensors_only() -> None:
    pinned = HubModel("laion/clap-htsat-unfused", "a" * 40, PinnedWeights(PICKLE, "b" * 64),
                      "Apache-2.0")
    other = pinned.at("c" * 40)
    assert (other.revision, other.weights.file, other.weights.sha256) == ("c" * 40, SAFETENSORS,
                                                                          None)
    assert pinned.at(None) is pinned and pinned.at("a" * 40) is pinned
