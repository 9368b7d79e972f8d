"""The hub extractors (MERT, CLAP) on tiny random snapshots in the published layouts:
parity with the library's own processor and forward, the model cards' preprocessing,
windowed long audio, safetensors only, and the offline error.

Nothing is downloaded: each snapshot is built here and loaded through `weights: /path`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from benchmarks.references import (
    ClapReference,
    MertReference,
    random_clap_snapshot,
    random_mert_snapshot,
)
from mgc import extractors
from mgc.extractors import clap, mert
from mgc.extractors.foundation import window_spans
from mgc.extractors.hub import snapshot_folder
from mgc.extractors.weights import WeightsError

TOLERANCE = 1e-4
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_mert_snapshot(tmp_path_factory.mktemp("mert"))


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_clap_snapshot(tmp_path_factory.mktemp("clap"))


def _music_like(seconds: float, sample_rate: int, batch: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return np.stack([0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
                     + 0.05 * rng.standard_normal(t.size) for _ in range(batch)]
                    ).astype(np.float32)


def test_window_spans_cover_the_clip_and_drop_only_a_short_tail() -> None:
    assert window_spans(10, 4, 3) == [(0, 4), (4, 8)]
    assert window_spans(11, 4, 3) == [(0, 4), (4, 8), (8, 11)]
    assert window_spans(3, 4, 3) == [(0, 3)]
    assert window_spans(8, 4, 3) == [(0, 4), (4, 8)]


@pytest.mark.parametrize("layer", ["last", 0, 1])
def test_mert_matches_the_model_card_recipe(mert_folder: Path, layer: str | int) -> None:
    """A clip within one 5 s window: our extractor equals Wav2Vec2FeatureExtractor +
    HubertModel(output_hidden_states) + mean over time on the same published-layout file."""
    ours = extractors.load("mert", weights=str(mert_folder), layer=layer, device="cpu")
    reference = MertReference(mert_folder, layer=-1 if layer == "last" else int(layer))
    waves = _music_like(4.0, 24000) * 3.0 + 0.1      # scale and offset: normalisation shows
    expected = np.stack([reference.embed_wave(w) for w in waves])
    embedded = ours.embed(waves)
    assert embedded.shape == (2, 32) and ours.sample_rate == 24000
    assert np.abs(expected).max() > 1e-3
    assert np.abs(embedded - expected).max() < TOLERANCE
    described = ours.describe()
    assert described["repo_id"] == "m-a-p/MERT-v1-95M" and described["window_samples"] == 120000


def test_mert_preprocessing_is_the_model_cards(mert_folder: Path) -> None:
    settings = json.loads((mert_folder / "preprocessor_config.json").read_text())
    assert settings["sampling_rate"] == mert.SAMPLE_RATE == 24000 and settings["do_normalize"]
    ours = extractors.load("mert", weights=str(mert_folder), device="cpu")
    normalised = ours.prepare(torch.from_numpy(_music_like(1.0, 24000) * 5 + 1)).numpy()
    assert np.allclose(normalised.mean(axis=1), 0, atol=1e-5)
    assert np.allclose(normalised.std(axis=1), 1, atol=1e-4)
    frames = ours.hidden_states(torch.zeros(1, 24000))[-1].shape[1]
    assert frames == 74                       # 75 Hz (the model card), less the conv edges
    assert len(ours.hidden_states(torch.zeros(1, 24000))) == 3   # input + 2 layers


def test_mert_refuses_what_hubert_cannot_compute(mert_folder: Path, tmp_path: Path) -> None:
    config = json.loads((mert_folder / "config.json").read_text())
    broken = tmp_path / "cqt"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes((mert_folder / "model.safetensors").read_bytes())
    (broken / "config.json").write_text(json.dumps({**config, "feature_extractor_cqt": True}))
    with pytest.raises(WeightsError, match="feature_extractor_cqt"):
        extractors.load("mert", weights=str(broken), device="cpu")
    with pytest.raises(ValueError, match=r"layer=7.*0-2"):
        extractors.load("mert", weights=str(mert_folder), layer=7, device="cpu")


def test_long_audio_is_embedded_in_windows_of_the_trained_length(
        mert_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 62 s clip reaches the model as 5 s windows (and a 2 s tail), never longer, at most
    30 s of them at a time: memory depends on the window, not on the clip. The result is
    the mean over all windows' frames."""
    ours = extractors.load("mert", weights=str(mert_folder), device="cpu")
    shapes: list[tuple[int, ...]] = []
    forward = ours.model.forward

    def recording(values: torch.Tensor, **kwargs: object) -> object:
        shapes.append(tuple(values.shape))
        return forward(values, **kwargs)

    monkeypatch.setattr(ours.model, "forward", recording)
    waves = _music_like(62.0, 24000, batch=1)
    embedded = ours.embed(waves)
    assert ours.window_samples == 5 * 24000 and ours.windows_per_pass == 6
    assert shapes == [(6, 120000), (6, 120000), (1, 48000)]
    assert np.isfinite(embedded).all()
    normalised = ours.prepare(torch.from_numpy(waves))
    with torch.inference_mode():
        frames = torch.cat([forward(normalised[:, a:b], output_hidden_states=True)
                            .hidden_states[-1] for a, b in window_spans(62 * 24000, 120000,
                                                                        24000)], dim=1)
    assert np.abs(embedded - frames.mean(dim=1).numpy()).max() < TOLERANCE


def test_clap_matches_clap_model_on_the_same_weights(clap_folder: Path) -> None:
    ours = extractors.load("clap", weights=str(clap_folder), device="cpu")
    reference = ClapReference(clap_folder)
    waves = _music_like(7.0, 48000)
    expected = np.stack([reference.embed_wave(w) for w in waves])
    embedded = ours.embed(waves)
    assert embedded.shape == (2, 16) and ours.sample_rate == 48000
    assert np.abs(embedded - expected).max() < TOLERANCE
    settings = json.loads((clap_folder / "preprocessor_config.json").read_text())
    assert (settings["sampling_rate"], settings["max_length_s"], settings["hop_length"],
            settings["feature_size"]) == (48000, 10, 480, 64)   # the model card's front end
    assert ours.window_samples == 10 * 48000


def test_clap_long_clip_is_the_length_weighted_mean_of_its_windows(clap_folder: Path) -> None:
    ours = extractors.load("clap", weights=str(clap_folder), device="cpu")
    reference = ClapReference(clap_folder)
    wave = _music_like(25.0, 48000, batch=1)[0]
    parts = [(reference.embed_wave(wave[a:b]), b - a)
             for a, b in window_spans(len(wave), ours.window_samples, 48000)]
    expected = sum(v * n for v, n in parts) / sum(n for _, n in parts)
    assert [n for _, n in parts] == [480000, 480000, 240000]
    assert np.abs(ours.embed(wave[None]) - expected).max() < TOLERANCE


def test_clap_text_embeddings_are_unit_vectors(clap_folder: Path) -> None:
    ours = extractors.load("clap", weights=str(clap_folder), device="cpu")
    texts = ours.embed_texts(["This is a jazz song.", "This is a blues song."])
    assert texts.shape == (2, 16)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    assert not np.allclose(texts[0], texts[1])


def test_weights_that_do_not_fit_are_refused_with_the_keys(clap_folder: Path,
                                                           mert_folder: Path,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "config.json").write_text((mert_folder / "config.json").read_text())
    (folder / "model.safetensors").write_bytes((clap_folder / "model.safetensors").read_bytes())
    with pytest.raises(WeightsError, match="does not fit the network"):
        extractors.load("mert", weights=str(folder), device="cpu")


@pytest.mark.parametrize(("model", "repo", "revision"), [
    ("mert", "m-a-p/MERT-v1-95M", mert.VARIANTS["95M"].revision),
    ("clap", "laion/larger_clap_general", clap.VARIANTS["larger_general"].revision),
])
def test_offline_and_not_cached_names_repo_revision_and_folder(
        model: str, repo: str, revision: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    published = (mert.VARIANTS["95M"] if model == "mert" else clap.VARIANTS["larger_general"])
    with pytest.raises(WeightsError) as error:
        extractors.load(model, weights="pretrained", device="cpu", progress=False)
    message = str(error.value)
    assert repo in message and revision in message
    assert str(snapshot_folder(published)) in message


def test_random_weights_are_refused_for_hub_models() -> None:
    with pytest.raises(ValueError, match="no random baseline"):
        extractors.load("clap", weights="random", device="cpu")


def test_importing_mgc_and_the_extractors_does_not_import_transformers() -> None:
    probe = ("import sys, mgc, mgc.extractors, mgc.predict, mgc.pipeline.params\n"
             "print([m for m in ('transformers', 'huggingface_hub') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_files_put_where_the_offline_error_says_load_as_pretrained_once_pinned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    import huggingface_hub.constants
    from safetensors.torch import load_file

    from mgc.extractors.hub import PICKLE, HubModel, PinnedWeights

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    published = mert.VARIANTS["95M"]
    folder = random_mert_snapshot(snapshot_folder(published))
    torch.save(load_file(folder / "model.safetensors"), folder / PICKLE)
    size = (folder / PICKLE).stat().st_size
    with pytest.raises(WeightsError, match=f"{size} bytes, but pytorch_model.bin of "
                                           f"m-a-p/MERT-v1-95M@{published.revision} has "
                                           f"{published.weights.size}"):
        extractors.load("mert", weights="pretrained", device="cpu", progress=False)

    digest = hashlib.sha256((folder / PICKLE).read_bytes()).hexdigest()
    monkeypatch.setitem(mert.VARIANTS, "95M", HubModel(
        published.repo_id, published.revision, PinnedWeights(PICKLE, digest, size),
        published.licence))
    described = extractors.load("mert", weights="pretrained", device="cpu",
                                progress=False).describe()
    assert described["weights"] == f"m-a-p/MERT-v1-95M@{published.revision}"
    assert (described["weights_file"], described["weights_sha256"]) == (PICKLE, digest)
    assert described["licence"] == "CC-BY-NC-4.0"


@pytest.mark.parametrize("model", ["mert", "clap"])
def test_fused_kernels_compute_the_eager_function(model: str, mert_folder: Path,
                                                  clap_folder: Path) -> None:
    """oneDNN's linear layers and fused attention (CLAP's window attention with its
    relative position bias and shift masks) against plain PyTorch (kernels.unfused()):
    the same embeddings within 1e-5 of their largest value."""
    from mgc.extractors.kernels import unfused

    folder = mert_folder if model == "mert" else clap_folder
    ours = extractors.load(model, weights=str(folder), device="cpu")
    waves = _music_like(12.0, ours.sample_rate)
    fast = ours.embed(waves)
    with unfused():
        eager = ours.embed(waves)
    assert np.abs(fast - eager).max() < 1e-5 * np.abs(eager).max()
