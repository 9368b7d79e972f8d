"""Untrusted inputs that could run code or reach the network: refused, never acted on.

A model bundle may come from anyone (`dvc artifacts get`, a colleague's folder), and
dataset URLs come from params that `-S` can change. Pickles carrying code are refused by
`weights_only=True` before any of it runs; no library or stage code unpickles anything
else; only http(s) URLs are fetched, only the ones params name (or the pinned defaults,
each with its checksum), and the synthetic default run opens no connection at all.
Archive members escaping their folder, links out of it and decompression bombs are
refused in tests/test_archive.py; redirects to other schemes in tests/test_download.py.
"""

from __future__ import annotations

import ast
import os
import pickle
import shlex
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import stages.download
from mgc.archive import ArchiveError
from mgc.bundle import STATE_FILE, BundleInfo, load_bundle, save_bundle
from mgc.datasets import fma, get_dataset, gtzan
from mgc.download import fetch_file
from mgc.model import ClassifierConfig, GenreClassifier
from mgc.pipeline.corpus import build_dataset
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import parse_params

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("mgc", "stages")


class RunsCode:
    """Unpickling this runs a shell command: the classic malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture
def malicious_bundle(tmp_path: Path) -> tuple[Path, Path]:
    """A real bundle whose classifier.pt was swapped for a pickle that creates `marker`."""
    config = ClassifierConfig(hidden_layers=1)
    model = GenreClassifier(4, 2, config)
    info = BundleInfo(class_names=["a", "b"], input_dim=4, classifier=config.to_dict(),
                      kind="dnn", heads=["anchor"], extractor="mfcc",
                      extractor_options={}, clip_samples=100, train_set="synth_gtzan",
                      protocol="paper")
    bundle = tmp_path / "bundle"
    save_bundle(model, info, bundle)
    marker = tmp_path / "code-ran"
    state = model.state_dict()
    state["trunk.0.weight"] = RunsCode(marker)
    torch.save(state, bundle / STATE_FILE)
    return bundle, marker


def test_checkpoint_carrying_code_is_refused_and_never_run(
        malicious_bundle: tuple[Path, Path]) -> None:
    bundle, marker = malicious_bundle
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_bundle(bundle)
    assert not marker.exists()


def test_the_malicious_checkpoint_would_run_code_if_fully_unpickled(
        malicious_bundle: tuple[Path, Path]) -> None:
    """The control for the test above: the payload is live, so refusing it is what saved us."""
    bundle, marker = malicious_bundle
    torch.load(bundle / STATE_FILE, weights_only=False)
    assert marker.exists()


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """(dotted callee, call) for every call spelt `a.b(...)` or `a.b.c(...)`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                found.append((".".join([func.id, *reversed(parts)]), node))
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_library_and_stages_never_unpickle_untrusted_files() -> None:
    """torch.load always with weights_only=True; no pickle, joblib, pandas pickle, numpy
    object arrays, or YAML loader that can build Python objects."""
    import importlib

    problems, torch_loads = [], 0
    for path in sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for name, call in _calls(tree):
            where = f"{path.relative_to(REPO)}:{call.lineno}: {name}"
            weights_only = _keyword(call, "weights_only")
            if name == "torch.load":
                torch_loads += 1
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    problems.append(f"{where} without weights_only=True")
            elif name.split(".")[0] in ("pickle", "cPickle", "dill", "joblib") or name in (
                    "pd.read_pickle", "pandas.read_pickle"):
                problems.append(f"{where} unpickles")
            elif name in ("np.load", "numpy.load"):
                allow = _keyword(call, "allow_pickle")
                if allow is not None and not (isinstance(allow, ast.Constant) and not allow.value):
                    problems.append(f"{where} may allow pickles")
            elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load"):
                loader = _keyword(call, "Loader")
                module = importlib.import_module(
                    ".".join(path.relative_to(REPO).with_suffix("").parts))
                safe = isinstance(loader, ast.Name) and issubclass(
                    getattr(module, loader.id, object), yaml.SafeLoader)
                if not safe:
                    problems.append(f"{where} without a SafeLoader")
    assert torch_loads >= 1, "the scan found no torch.load at all: is it still looking?"
    assert problems == []


def _params_with(dataset: str, source: dict[str, Any]) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["datasets"] = [dataset]
    raw["data"]["sources"][dataset] = source
    raw["train"]["sets"] = [dataset]
    parse_params(raw)
    return raw


GTZAN_MIRRORS = {"urls": ["https://mirror-a.invalid/genres.tar.gz",
                          "http://mirror-b.invalid/genres.tar.gz"], "archive": None}
FMA_MIRRORS = {"urls": ["https://mirror.invalid/fma_small.zip"],
               "metadata_urls": ["https://mirror.invalid/fma_metadata.zip"],
               "archive": None, "metadata_archive": None}


@pytest.mark.parametrize(("dataset", "source", "module", "expected"), [
    ("gtzan", GTZAN_MIRRORS, gtzan, [tuple(GTZAN_MIRRORS["urls"])]),
    ("fma_small", FMA_MIRRORS, fma,
     [tuple(FMA_MIRRORS["urls"]), tuple(FMA_MIRRORS["metadata_urls"])]),
    ("gtzan", {}, gtzan, [gtzan.ARCHIVE_URLS]),
    ("fma_small", {}, fma, [fma.AUDIO_URLS, fma.METADATA_URLS]),
    ("fma_medium", {}, fma, [fma.SUBSETS["medium"].urls, fma.METADATA_URLS]),
    ("fma_large", {}, fma, [fma.SUBSETS["large"].urls, fma.METADATA_URLS]),
], ids=["gtzan-params", "fma-params", "gtzan-pinned-defaults", "fma-pinned-defaults",
        "fma-medium-pinned-defaults", "fma-large-pinned-defaults"])
def test_download_stage_fetches_only_the_urls_in_params(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str,
        source: dict[str, Any], module: Any, expected: list[tuple[str, ...]]) -> None:
    """URLs named in params are the ones fetched; with none, the defaults pinned in the
    dataset's module are. Either way every file is checked against a pinned checksum."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_params_with(dataset, source)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))
    _forbid_connections(monkeypatch)
    fetched: list[tuple[str, ...]] = []

    def record(urls: Any, dest: Path, checksum: Any, **options: Any) -> Path:
        fetched.append(tuple(urls))
        assert checksum is not None, f"{dest.name} would be fetched unverified"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"not an archive")
        return dest

    monkeypatch.setattr(module, "fetch_file", record)
    with pytest.raises(ArchiveError, match="neither a zip nor a tar"):
        stages.download.main(["--dataset", dataset])
    assert fetched == expected


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://mirror.invalid/genres.tar.gz",
                                 "/etc/passwd"])
def test_a_params_url_that_is_not_http_is_refused_before_any_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    params = _params_with("gtzan", {"urls": [url], "archive": None})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))
    _forbid_connections(monkeypatch)
    with pytest.raises(ValueError, match="only http/https URLs are fetched"):
        stages.download.main(["--dataset", "gtzan"])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [tmp_path / "params.yaml"]


def _forbid_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_synthetic_default_corpus_opens_no_connection(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_connections(monkeypatch)
    with pytest.raises(AssertionError, match="network connection attempted"):
        fetch_file(["https://example.invalid/x"], tmp_path / "x", None, progress=False,
                   retries=0)
    tracks = build_dataset(get_dataset("synth_gtzan", clips_per_genre=5, clip_seconds=2.0),
                           Layout(data_dir=tmp_path / "data"), progress=False)
    assert (tracks["status"] == "ok").sum() == 49
