"""MuQ: its mel front end against librosa, the whole extractor against MuQ's published code
on tiny random snapshots in the hub's layout (both directions: the published code's
`save_pretrained` output loads here, and ours loads there), windows, the checkpoint checks
and the pinned facts.

The published code runs in its own process (benchmarks/muq_reference/reference.py says how
and why); the Makefile installs it. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from benchmarks.references import (
    MUQ_LARGE_CONFIG,
    MUQ_REFERENCE_DIR,
    MUQ_REFERENCE_SCRIPT,
    MuqReference,
    muq_config,
    muq_reference_env,
    muq_reference_site,
    random_muq_snapshot,
)
from mgc import extractors
from mgc.extractors import muq
from mgc.extractors.foundation import window_spans
from mgc.extractors.hub import snapshot_folder
from mgc.extractors.weights import WeightsError

TOLERANCE = 1e-4
WINDOW_SECONDS = 4.0
LONG_SECONDS = 10.0


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))


def _music_like(seconds: float, batch: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * muq.SAMPLE_RATE)) / muq.SAMPLE_RATE
    waves = np.stack([0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
                      * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
                      + 0.05 * rng.standard_normal(t.size) for _ in range(batch)])
    waves[:, : muq.SAMPLE_RATE // 4] = 0.0          # silence: the dB floor shows
    return waves.astype(np.float32)


def _shim(module: str) -> Any:
    """The test's torchaudio stand-in, imported from its file (never as `torchaudio`)."""
    path = MUQ_REFERENCE_DIR / "torchaudio" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"muq_reference_torchaudio_{module}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _librosa_features(wave: np.ndarray, mean: float, std: float) -> np.ndarray:
    """MuQ's front end written with librosa: torchaudio's MelSpectrogram defaults (centred,
    reflect padding, HTK mels without normalisation, power 2), AmplitudeToDB, the last frame
    dropped, the config's stat."""
    mel = librosa.feature.melspectrogram(y=wave, sr=24000, n_fft=2048, hop_length=240,
                                         n_mels=128, fmin=0.0, fmax=12000.0, htk=True,
                                         norm=None, power=2.0, center=True, pad_mode="reflect")
    decibels = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    return (decibels[:, :-1] - mean) / std


def test_front_end_matches_librosa() -> None:
    settings = muq.MuqSettings.from_config(muq_config("full"), MUQ_LARGE_CONFIG)
    front_end = muq.MuqFrontEnd(settings.hop_length, settings.mean, settings.std)
    waves = _music_like(3.0)
    with torch.inference_mode():
        ours = front_end(torch.from_numpy(waves)).numpy()
    expected = np.stack([_librosa_features(w.astype(np.float64), settings.mean, settings.std)
                         for w in waves])
    assert ours.shape == expected.shape == (2, 128, 300)     # 100 Hz, the last frame dropped
    assert np.abs(ours - expected).max() < TOLERANCE
    assert ours.min() == pytest.approx((-100 - settings.mean) / settings.std, abs=1e-5)


def test_torchaudio_stand_in_matches_librosa() -> None:
    """The stand-in the published code runs with computes torchaudio's documented transforms."""
    transforms = _shim("transforms")
    mel = transforms.MelSpectrogram(sample_rate=24000, n_fft=2048, hop_length=240, n_mels=128)
    to_db = transforms.AmplitudeToDB()
    waves = _music_like(3.0, batch=1)
    with torch.inference_mode():
        ours = to_db(mel(torch.from_numpy(waves)))[0].numpy()
    expected = _librosa_features(waves[0].astype(np.float64), 0.0, 1.0)
    assert np.abs(ours[:, :-1] - expected).max() < 1e-3       # dB, not normalised
    filterbank = librosa.filters.mel(sr=24000, n_fft=2048, n_mels=128, htk=True, norm=None)
    assert float(np.abs(mel.fb.numpy() - filterbank.T).max()) < TOLERANCE   # float32 vs 64


def test_published_config_is_the_pinned_file() -> None:
    """benchmarks' copy of MuQ-large-msd-iter's config.json hashes to the sha256 public
    projects pin for the hub file, and builds the 12-layer, 1024-wide model: 324,733,056
    parameters, which with the training-only ones (token classifier 8,396,800, Mel-RVQ
    270,592, cls_token 1,024) are the 333,401,472 recorded for the checkpoint."""
    assert hashlib.sha256(MUQ_LARGE_CONFIG.read_bytes()).hexdigest() == muq.CONFIG_SHA256
    config = json.loads(MUQ_LARGE_CONFIG.read_text())
    settings = muq.MuqSettings.from_config(config, MUQ_LARGE_CONFIG)
    assert (settings.encoder_depth, settings.encoder_dim, settings.label_rate) == (12, 1024, 25)
    assert (settings.mean, settings.std) == (6.768444971712967, 18.417922652295623)
    encoder = settings.conformer_config()
    assert (encoder.num_hidden_layers, encoder.hidden_size, encoder.num_attention_heads,
            encoder.position_embeddings_type) == (12, 1024, 16, "rotary")
    with torch.device("meta"):
        network = muq.MuqNetwork(settings)
    assert sum(p.numel() for p in network.parameters()) == 324_733_056


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the published code: it writes a tiny snapshot, loads that one and ours,
    and embeds 4 s clips and the windows of a 10 s clip with output_hidden_states."""
    site = muq_reference_site()
    if not (site / "muq").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{site} is missing: `make test` installs MuQ's code there")
        pytest.skip(f"MuQ's published code is not installed in {site} (make test)")
    root = tmp_path_factory.mktemp("muq")
    config = root / "tiny-config.json"
    config.write_text(json.dumps(muq_config("tiny")))
    long_clip = _music_like(LONG_SECONDS, batch=1, seed=1)
    spans = window_spans(long_clip.shape[1], round(WINDOW_SECONDS * muq.SAMPLE_RATE),
                         muq.SAMPLE_RATE)
    waves = {"clips": _music_like(4.0) * 3.0 + 0.1,
             **{f"window{i}": long_clip[:, a:b] for i, (a, b) in enumerate(spans)}}
    np.savez(root / "waves.npz", **waves)
    ours = random_muq_snapshot(root / "ours", seed=1)
    result = subprocess.run(
        [sys.executable, str(MUQ_REFERENCE_SCRIPT), "--write", str(root / "published"),
         "--config", str(config), "--load", str(root / "published"), "--load", str(ours),
         "--waves", str(root / "waves.npz"), "--out", str(root / "states.npz")],
        env=muq_reference_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"published": root / "published", "ours": ours, "waves": waves,
            "long_clip": long_clip, "spans": spans,
            "states": dict(np.load(root / "states.npz"))}


@pytest.mark.parametrize("layer", ["last", 0, 1])
@pytest.mark.parametrize("snapshot", ["published", "ours"])
def test_matches_published_muq(published: dict[str, Any], snapshot: str,
                               layer: str | int) -> None:
    """Same snapshot, same clips: our embedding is the published model's hidden state
    `layer` averaged over time; every hidden state matches too."""
    index = ["published", "ours"].index(snapshot)
    states = published["states"][f"{index}/clips"]               # (3, batch, frames, dim)
    waves = published["waves"]["clips"]
    extractor = extractors.load("muq", weights=str(published[snapshot]), layer=layer,
                                device="cpu")
    expected = states[-1 if layer == "last" else int(layer)].mean(axis=1)
    embedded = extractor.embed(waves)
    assert embedded.shape == (2, 32) and extractor.sample_rate == 24000
    assert np.abs(expected).max() > 1e-2
    assert np.abs(embedded - expected).max() < TOLERANCE
    with torch.inference_mode():
        ours = torch.stack(extractor.hidden_states(torch.from_numpy(waves))).numpy()
    assert ours.shape == states.shape == (3, 2, 100, 32)        # 25 Hz, input + 2 layers
    assert np.abs(ours - states).max() < TOLERANCE


def test_the_benchmark_reference_serves_the_readme_recipe(published: dict[str, Any]) -> None:
    """benchmarks' MuqReference (the published code in a process it keeps) gives the last
    hidden state's time mean, as our default layer does."""
    reference = MuqReference(published["published"])
    try:
        waves = published["waves"]["clips"]
        expected = np.stack([reference.embed_wave(wave) for wave in waves])
    finally:
        reference.close()
    ours = extractors.load("muq", weights=str(published["published"]), device="cpu")
    assert np.abs(ours.embed(waves) - expected).max() < TOLERANCE


def test_the_last_state_is_transformers_encoder_output(published: dict[str, Any]) -> None:
    extractor = extractors.load("muq", weights=str(published["ours"]), device="cpu")
    network = extractor.model
    waves = torch.from_numpy(published["waves"]["clips"])
    with torch.inference_mode():
        tokens = network.conv(network.front_end(waves))
        expected = network.conformer(tokens).last_hidden_state
        assert torch.equal(network.hidden_states(waves)[-1], expected)


def test_long_clip_is_the_frame_mean_of_the_published_windows(
        published: dict[str, Any]) -> None:
    """A 10 s clip in 4 s windows (4 + 4 + 2 s): the clip vector is the mean over every
    window's frames, each window computed by the published code."""
    extractor = extractors.load("muq", weights=str(published["published"]),
                                window_seconds=WINDOW_SECONDS, device="cpu")
    frames = np.concatenate([published["states"][f"0/window{i}"][-1]
                             for i in range(len(published["spans"]))], axis=1)
    assert [b - a for a, b in published["spans"]] == [96000, 96000, 48000]
    embedded = extractor.embed(published["long_clip"])
    assert np.abs(embedded - frames.mean(axis=1)).max() < TOLERANCE


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_muq_snapshot(tmp_path_factory.mktemp("muq-tiny"))


def _copy(folder: Path, dest: Path, config: dict[str, Any] | None = None) -> Path:
    shutil.copytree(folder, dest)
    if config is not None:
        (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_checkpoints_that_do_not_fit_are_refused_with_the_keys(tiny: Path,
                                                               tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(tiny / "model.safetensors")
    assert "model.cls_token" in state and "model.linear.weight" in state   # ignored by name
    for name, change, message in [
            ("missing", lambda s: s.pop("model.conformer.layers.1.final_layer_norm.weight"),
             r"missing: conformer\.layers\.1\.final_layer_norm\.weight"),
            ("unexpected", lambda s: s.update({"model.head.weight": torch.zeros(2)}),
             r"unexpected: head\.weight"),
            ("unprefixed", lambda s: s.update({"conv.linear.bias": torch.zeros(32)}),
             r"unexpected: conv\.linear\.bias"),
            ("shape", lambda s: s.update({"model.conv.linear.bias": torch.zeros(3)}),
             r"wrong shape: conv\.linear\.bias")]:
        folder = _copy(tiny, tmp_path / name)
        changed = dict(state)
        change(changed)
        save_file(changed, folder / "model.safetensors")
        with pytest.raises(WeightsError, match=message):
            extractors.load("muq", weights=str(folder), device="cpu")


def test_old_weight_norm_names_and_a_missing_inv_freq_load(tiny: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(tiny / "model.safetensors")
    prefix = "model.conformer.pos_conv_embed.conv."
    state[prefix + "weight_g"] = state.pop(prefix + "parametrizations.weight.original0")
    state[prefix + "weight_v"] = state.pop(prefix + "parametrizations.weight.original1")
    del state["model.conformer.embed_positions.inv_freq"]
    folder = _copy(tiny, tmp_path / "old")
    save_file(state, folder / "model.safetensors")
    waves = _music_like(2.0)
    expected = extractors.load("muq", weights=str(tiny), device="cpu").embed(waves)
    assert np.array_equal(extractors.load("muq", weights=str(folder), device="cpu").embed(waves),
                          expected)


@pytest.mark.parametrize(("change", "message"), [
    ({"n_mels": 64}, "n_mels=64"), ({"features": ["cqt"]}, "features="),
    ({"is_flash": True}, "is_flash"), ({"label_rate": 75}, "label_rate=75"),
    ({"stat": {}}, "stat lacks")])
def test_configs_this_rebuild_does_not_compute_are_refused(
        tiny: Path, tmp_path: Path, change: dict[str, Any], message: str) -> None:
    config = {**json.loads((tiny / "config.json").read_text()), **change}
    folder = _copy(tiny, tmp_path / "config", config)
    with pytest.raises(WeightsError, match=message):
        extractors.load("muq", weights=str(folder), device="cpu")


def test_cpu_optimisations_compute_the_eager_function(tiny: Path) -> None:
    """Fused attention, oneDNN linear layers, folded BatchNorms and the frozen subsampling
    against MuQ loaded and run as plain PyTorch (kernels.unfused()): within 1e-5."""
    from mgc.extractors.kernels import unfused

    waves = _music_like(6.0)
    fast = extractors.load("muq", weights=str(tiny), device="cpu").embed(waves)
    with unfused():
        eager = extractors.load("muq", weights=str(tiny), device="cpu").embed(waves)
    assert np.abs(fast - eager).max() < 1e-5 * np.abs(eager).max()


def test_options_are_checked(tiny: Path) -> None:
    with pytest.raises(ValueError, match=r"layer=3.*0-2"):
        extractors.load("muq", weights=str(tiny), layer=3, device="cpu")
    with pytest.raises(ValueError, match="window_seconds"):
        extractors.load("muq", weights=str(tiny), window_seconds=0.5, device="cpu")
    with pytest.raises(ValueError, match="no random baseline"):
        extractors.load("muq", weights="random", device="cpu")


def test_description_records_the_licence_and_the_pins(tiny: Path) -> None:
    described = extractors.load("muq", weights=str(tiny), layer=1, device="cpu").describe()
    assert described["licence"] == "CC-BY-NC-4.0"
    assert (described["repo_id"], described["revision"]) == (muq.PUBLISHED.repo_id,
                                                              muq.PUBLISHED.revision)
    assert (described["layer"], described["pooling"], described["window_samples"]) == (
        1, "mean", 30 * 24000)


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_offline_and_not_cached_names_repo_revision_and_folder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch)
    with pytest.raises(WeightsError) as error:
        extractors.load("muq", weights="pretrained", device="cpu", progress=False)
    message = str(error.value)
    assert muq.PUBLISHED.repo_id in message and muq.PUBLISHED.revision in message
    assert str(snapshot_folder(muq.PUBLISHED)) in message


def test_files_at_the_pinned_revision_must_be_the_pinned_files(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Other files put where the pinned snapshot goes are refused: weights of another size,
    then (with the weights pin moved to them) a config.json that is not the pinned one."""
    import hashlib

    from mgc.extractors.hub import SAFETENSORS, HubModel, PinnedWeights

    _offline(monkeypatch)
    folder = random_muq_snapshot(snapshot_folder(muq.PUBLISHED))
    with pytest.raises(WeightsError, match=f"bytes, but model.safetensors of "
                                           f"{muq.PUBLISHED.repo_id}@{muq.PUBLISHED.revision} "
                                           f"has {muq.PUBLISHED.weights.size}"):
        extractors.load("muq", weights="pretrained", device="cpu", progress=False)
    weights = folder / SAFETENSORS
    monkeypatch.setattr(muq, "PUBLISHED", HubModel(
        muq.PUBLISHED.repo_id, muq.PUBLISHED.revision,
        PinnedWeights(SAFETENSORS, hashlib.sha256(weights.read_bytes()).hexdigest(),
                      weights.stat().st_size), muq.PUBLISHED.licence))
    with pytest.raises(WeightsError, match=f"config.json sha256 .* is pinned at "
                                           f"{muq.CONFIG_SHA256}"):
        extractors.load("muq", weights="pretrained", device="cpu", progress=False)
