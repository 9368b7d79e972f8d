"""Our extractors against the reference implementations, on the same random weights.

If a front end or a layer order differs from the one the pretrained weights were trained
with, the pipeline still runs and every number after it is wrong; these tests are what
stands between the two. Weights go through files in the official layouts, so loading is
checked on the way.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from benchmarks.references import (
    panns_models,
    randomise_batchnorm,
    reference_cnn14,
    reference_vggish,
)
from mgc import extractors
from mgc.extractors.byola import PAPER_NORMALISATION, byola_log_mel
from mgc.extractors.panns import panns_log_mel

TOLERANCE = 1e-4


def _music_like(seconds: float, sample_rate: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    """Tones, noise and a silent stretch: enough spectral range to exercise the log."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    waves = []
    for _ in range(batch):
        tones = sum(rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
                    for _ in range(4))
        wave = tones + 0.05 * rng.standard_normal(t.size)
        wave[: sample_rate // 4] = 0.0
        waves.append(wave)
    return np.stack(waves).astype(np.float32)


def test_panns_front_end_matches_torchlibrosa() -> None:
    reference = reference_cnn14(seed=0)
    waves = torch.from_numpy(_music_like(3.0, 32000))
    expected = reference.logmel_extractor(reference.spectrogram_extractor(waves))[:, 0]
    ours = 10 * torch.log10(panns_log_mel()(waves).clamp(min=1e-10))
    assert ours.shape == expected.shape == (2, 301, 64)
    assert (ours - expected).abs().max().item() < 1e-3   # dB; fp32 STFT conv vs FFT


def test_panns_embedding_matches_panns_inference(tmp_path: Path) -> None:
    reference = reference_cnn14(seed=1)
    checkpoint = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": reference.state_dict(), "iteration": 0}, checkpoint)
    ours = extractors.load("panns", weights=str(checkpoint), device="cpu")
    waves = _music_like(4.0, 32000)
    with torch.inference_mode():
        expected = reference(torch.from_numpy(waves))["embedding"].numpy()
    embedded = ours.embed(waves)
    assert embedded.shape == (2, 2048)
    assert np.abs(expected).max() > 1e-3      # not a trivially dead network
    assert np.abs(embedded - expected).max() < TOLERANCE


def test_vggish_examples_match_waveform_to_examples() -> None:
    from torchvggish.vggish_input import waveform_to_examples

    waves = _music_like(3.5, 16000, batch=1)
    expected = waveform_to_examples(waves[0], 16000, return_tensor=False)
    ours = extractors.load("vggish", weights="random", postprocess=False, device="cpu")
    examples = ours.network.examples(torch.from_numpy(waves))[0].numpy()
    assert examples.shape == expected.shape == (3, 96, 64)
    assert np.abs(examples - expected).max() < TOLERANCE


def _pca_file(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A PCA parameters file as torchvggish publishes it: numpy arrays in a dict."""
    rng = np.random.default_rng(seed)
    eigenvectors = np.linalg.qr(rng.standard_normal((128, 128)))[0] * 30.0
    means = rng.uniform(0.0, 0.05, size=128)
    torch.save({"pca_eigen_vectors": eigenvectors, "pca_means": means}, path)
    return eigenvectors, means


@pytest.mark.parametrize("final_relu", [True, False])
def test_vggish_embedding_matches_torchvggish(tmp_path: Path, final_relu: bool) -> None:
    from torchvggish.vggish_input import waveform_to_examples

    reference = reference_vggish(seed=2)
    weights = tmp_path / "vggish-10086976.pth"
    torch.save(reference.state_dict(), weights)
    ours = extractors.load("vggish", weights=str(weights), postprocess=False,
                           final_relu=final_relu, pooling="mean", device="cpu")
    waves = _music_like(5.0, 16000)
    with torch.inference_mode():
        per_example = [reference.embeddings[:len(reference.embeddings) - (not final_relu)](
            torch.flatten(reference.features(waveform_to_examples(w, 16000)).permute(0, 2, 3, 1),
                          1)) for w in waves]
        full_reference = [reference(waveform_to_examples(w, 16000)) for w in waves]
    if final_relu:
        for manual, full in zip(per_example, full_reference, strict=True):
            assert torch.equal(manual, full)
    expected = np.stack([e.mean(dim=0).numpy() for e in per_example])
    assert np.abs(expected).max() > 1e-4
    assert np.abs(ours.embed(waves) - expected).max() < TOLERANCE


def test_vggish_postprocessing_matches_torchvggish(tmp_path: Path) -> None:
    from torchvggish.torchvggish import Postprocessor
    from torchvggish.vggish_input import waveform_to_examples

    reference = reference_vggish(seed=3)
    weights, pca = tmp_path / "vggish.pth", tmp_path / "vggish_pca_params.pth"
    torch.save(reference.state_dict(), weights)
    eigenvectors, means = _pca_file(pca, seed=3)
    postprocessor = Postprocessor.__new__(Postprocessor)   # its __init__ downloads the file
    postprocessor._pca_matrix = torch.as_tensor(eigenvectors).float()
    postprocessor._pca_means = torch.as_tensor(means.reshape(-1, 1)).float()
    ours = extractors.load("vggish", weights=str(weights), pca=str(pca), postprocess=True,
                           pooling="mean", device="cpu")
    waves = _music_like(4.0, 16000)
    with torch.inference_mode():
        expected = [postprocessor.postprocess(reference(waveform_to_examples(w, 16000)))
                    for w in waves]
        examples = ours.network.examples(torch.from_numpy(waves))
        quantised = [ours.network.embed_examples(e) for e in examples]
    for mine, theirs in zip(quantised, expected, strict=True):
        assert mine.min() >= 0 and mine.max() <= 255 and len(torch.unique(theirs)) > 20
        # Both round the same float32 values; a value within float noise of .5 may round
        # either way, so a step of one quantum is allowed, and it must stay rare.
        assert (mine - theirs).abs().max().item() <= 1
        assert (mine != theirs).float().mean().item() < 0.01
    pooled = ours.embed(waves)
    assert np.abs(pooled - np.stack([q.mean(dim=0).numpy() for q in quantised])).max() < 1e-4


def test_byola_front_end_matches_librosa() -> None:
    waves = _music_like(3.0, 16000)
    mel = librosa.feature.melspectrogram(y=waves, sr=16000, n_fft=1024, hop_length=160,
                                         win_length=1024, window="hann", center=True,
                                         pad_mode="reflect", power=2.0, n_mels=64, fmin=60,
                                         fmax=7800, htk=False, norm="slaney")
    eps = np.finfo(np.float32).eps
    mean, std = PAPER_NORMALISATION
    expected = (np.log(mel + eps) - mean) / std                   # (batch, mels, frames)
    ours = extractors.load("byola", weights="random", device="cpu")
    normalised = ours.network.normalised_log_mel(torch.from_numpy(waves))[:, 0].numpy()
    assert normalised.shape == expected.shape == (2, 64, 301)
    assert np.abs(normalised - expected).max() < TOLERANCE * 10
    assert np.abs(byola_log_mel()(torch.from_numpy(waves)).numpy().transpose(0, 2, 1)
                  - mel).max() < 1e-4 * mel.max()


@pytest.mark.parametrize(("variant", "dim"), [("v2", 3072), ("v1_d512", 512),
                                              ("v1_d1024", 1024), ("v1_d2048", 2048)])
def test_byola_dims_and_30s_frame_count(variant: str, dim: int) -> None:
    extractor = extractors.load("byola", weights="random", variant=variant, device="cpu")
    waves = _music_like(30.0, 16000, batch=1)
    log_mel = extractor.network.normalised_log_mel(torch.from_numpy(waves))
    assert log_mel.shape == (1, 1, 64, 3001)
    assert extractor.dim == dim
    assert extractor.embed(waves).shape == (1, dim)


def test_byola_flattens_conv_features_mel_major_channel_minor() -> None:
    """Feature index = mel * 64 + channel, as the official code's permute + reshape gives."""
    extractor = extractors.load("byola", weights="random", variant="v2", device="cpu")
    encoder = extractor.network.encoder
    log_mel = torch.randn(1, 1, 64, 40)
    with torch.inference_mode():
        conv = encoder.features(log_mel)                          # (1, 64 ch, 16 mel, 10 time)
        frames = encoder(log_mel)                                 # (1, 10, 3072)
    mel, channel, time = 5, 17, 3
    assert frames[0, time, mel * 64 + channel] == conv[0, channel, mel, time]
    assert frames.shape == (1, 10, 3072)


def test_byola_v2_output_is_max_plus_mean_of_stacked_frames() -> None:
    extractor = extractors.load("byola", weights="random", device="cpu")
    waves = _music_like(2.0, 16000)
    with torch.inference_mode():
        frames = extractor.network.encoder(
            extractor.network.normalised_log_mel(torch.from_numpy(waves)))
    expected = (frames.amax(dim=1) + frames.mean(dim=1)).numpy()
    assert np.abs(extractor.embed(waves) - expected).max() < 1e-6


def test_panns_official_checkpoint_keys_load_and_front_end_is_checked(tmp_path: Path) -> None:
    reference = reference_cnn14(seed=4)
    state = reference.state_dict()
    assert "logmel_extractor.melW" in state and "spectrogram_extractor.stft.conv_real.weight" \
        in state
    other = panns_models().Cnn14(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64,
                                 fmin=50, fmax=8000, classes_num=527)
    randomise_batchnorm(other)
    wrong_front_end = tmp_path / "Cnn14_16k.pth"
    torch.save({"model": other.state_dict()}, wrong_front_end)
    with pytest.raises(ValueError, match="mel filterbank"):
        extractors.load("panns", weights=str(wrong_front_end), device="cpu")


@pytest.mark.parametrize("variant", ["v2", "v1_d512"])
def test_byola_inference_optimisations_keep_the_eager_network_output(tmp_path: Path,
                                                                     variant: str) -> None:
    """BatchNorm folded into the convs, max-pool moved before ReLU, the stack frozen: the
    same function as the network written out in the reference's order."""
    eager = extractors.load("byola", weights="random", variant=variant,
                            device="cpu").build_network()
    randomise_batchnorm(eager)
    weights = tmp_path / "byola.pth"
    torch.save({"model": eager.encoder.state_dict()}, weights)
    optimised = extractors.load("byola", weights=str(weights), variant=variant, device="cpu")
    assert not isinstance(optimised.network.encoder.features, torch.nn.Sequential)
    waves = _music_like(3.0, 16000)
    with torch.inference_mode():
        expected = eager.eval()(torch.from_numpy(waves)).numpy()
    assert np.abs(expected).max() > 1e-2
    assert np.abs(optimised.embed(waves) - expected).max() < TOLERANCE


def _hooked(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Record each module's output under its name, on every forward pass from now on."""
    seen: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        module.register_forward_hook(lambda _m, _i, out, key=name: seen.__setitem__(key, out))
    return seen


def _max_plus_mean(frames: torch.Tensor, dim: int) -> np.ndarray:
    return (frames.amax(dim=dim) + frames.mean(dim=dim)).numpy()


def _assert_layers_close(ours: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(ours) == list(expected)
    for name, values in expected.items():
        scale = max(1.0, float(np.abs(values).max()))
        assert np.abs(values).max() > 1e-4, name                 # not a dead layer
        assert np.abs(ours[name] - values).max() <= 1e-5 * scale, name


@pytest.mark.parametrize("variant", ["v2", "v1_d512"])
def test_byola_layers_match_hooks_on_the_eager_network(tmp_path: Path, variant: str) -> None:
    """Every BYOL-A layer from the frozen all-layers graph, against the block outputs of
    the unoptimised network in the reference's order (BatchNorm unfolded, ReLU before the
    pool), flattened mel-major and pooled max + mean over time by hand."""
    eager = extractors.load("byola", weights="random", variant=variant,
                            device="cpu").build_network()
    randomise_batchnorm(eager)
    weights = tmp_path / "byola.pth"
    torch.save({"model": eager.encoder.state_dict()}, weights)
    ours = extractors.load("byola", weights=str(weights), variant=variant, device="cpu",
                           layers="all")
    features = eager.eval().encoder.features
    blocks = len(features) // 4
    seen = _hooked({**{f"conv{b}": features[4 * b - 1] for b in range(1, blocks + 1)},
                    "fc": eager.encoder.fc})
    waves = _music_like(3.0, 16000)
    with torch.inference_mode():
        eager(torch.from_numpy(waves))
    frames = {name: seen[name].permute(0, 3, 2, 1).flatten(2) for name in seen if name != "fc"}
    frames["fc"] = seen["fc"]
    if variant == "v2":
        frames["stacked"] = torch.cat([frames[f"conv{blocks}"], seen["fc"]], dim=-1)
    _assert_layers_close(ours.embed_layers(waves),
                         {name: _max_plus_mean(x, 1) for name, x in frames.items()})


def test_panns_layers_match_hooks_on_the_eager_network(tmp_path: Path) -> None:
    """CNN14's blocks (BatchNorm unfolded, not frozen) averaged over frequency and pooled
    max + mean over time, and fc1 + ReLU, against the frozen all-layers graph."""
    reference = reference_cnn14(seed=5)
    checkpoint = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": reference.state_dict()}, checkpoint)
    ours = extractors.load("panns", weights=str(checkpoint), device="cpu", layers="all")
    eager = ours.build_network()
    ours.load_weights(eager, checkpoint)
    eager.eval()
    seen = _hooked({**{f"block{i}": getattr(eager, f"conv_block{i}") for i in range(1, 7)},
                    "fc1": eager.fc1})
    waves = _music_like(4.0, 32000)
    with torch.inference_mode():
        eager(torch.from_numpy(waves))
    expected = {name: _max_plus_mean(seen[name].mean(dim=3), 2) for name in seen
                if name != "fc1"}
    expected["fc1"] = torch.relu(seen["fc1"]).numpy()
    _assert_layers_close(ours.embed_layers(waves), expected)
    with torch.inference_mode():
        reference_embedding = reference(torch.from_numpy(waves))["embedding"].numpy()
    assert np.abs(ours.embed_layers(waves)["fc1"] - reference_embedding).max() < TOLERANCE


def test_vggish_layers_match_hooks_on_torchvggish(tmp_path: Path) -> None:
    """VGGish's conv blocks (torchvggish's own module, hooked at each pool) averaged over
    frequency and over every example's frames, and fc1/fc2 after their ReLUs averaged
    over examples, against ours; fc3 is the embedding."""
    from torchvggish.vggish_input import waveform_to_examples

    reference = reference_vggish(seed=6)
    weights = tmp_path / "vggish-10086976.pth"
    torch.save(reference.state_dict(), weights)
    ours = extractors.load("vggish", weights=str(weights), postprocess=False, device="cpu",
                           layers="all")
    pools = [i for i, layer in enumerate(reference.features)
             if isinstance(layer, torch.nn.MaxPool2d)]
    seen = _hooked({**{f"conv{n}": reference.features[i] for n, i in enumerate(pools, 1)},
                    "fc1": reference.embeddings[1], "fc2": reference.embeddings[3]})
    waves = _music_like(4.0, 16000)
    expected: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for wave in waves:
            fc3 = reference(waveform_to_examples(wave, 16000))
            for name, out in seen.items():
                pooled = out.mean(dim=(2, 3)) if name.startswith("conv") else out
                expected.setdefault(name, []).append(pooled.mean(dim=0).numpy())
            expected.setdefault("fc3", []).append(fc3.mean(dim=0).numpy())
    _assert_layers_close(ours.embed_layers(waves),
                         {name: np.stack(values) for name, values in expected.items()})
