"""The reference implementations our extractors are checked against and timed against,
importable offline: the parity tests (tests/test_extractor_parity.py) and the speed
benchmark (benchmarks/speed.py) both use them, so they live here, where the benchmark can
run without the tests.

`panns_inference` runs `wget` for AudioSet's label CSV when first imported and reads it from
`~/panns_data`; pointing HOME at a folder that already holds a 527-row CSV keeps that import
off the network.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from benchmarks.harness import SEED, load_ours

AUDIOSET_CLASSES = 527

REFERENCE_RECIPES = {
    "panns": "librosa.load(sr=32000, mono=True) + panns_inference Cnn14 forward on (1, samples) "
             "under torch.no_grad(), output['embedding']",
    "vggish": "torchvggish vggish_input.wavfile_to_examples (soundfile.read int16, resampy to "
              "16 kHz, numpy log-mel) + torchvggish VGG forward, mean over examples",
    "mert": "librosa.load(sr=24000) + transformers Wav2Vec2FeatureExtractor(do_normalize) on the "
            "whole clip + HubertModel(output_hidden_states) on (1, samples), last layer mean "
            "over time (MERT's model card; tiny random MERT-v1-shaped snapshot)",
    "clap": "librosa.load(sr=48000) + transformers ClapFeatureExtractor + "
            "ClapModel.get_audio_features on the clip (CLAP's model card; its processor "
            "crops a clip over 10 s at random, so identity is checked on 10 s clips; tiny "
            "random snapshot)",
    "muq": "librosa.load(sr=24000) + MuQ's published code (muq 0.1.0, transformers 4.57.6, "
           "torchaudio's two transforms stood in; benchmarks/muq_reference) MuQ.from_pretrained "
           "+ forward(output_hidden_states) on (1, samples), last hidden state mean over time, "
           "in a process of its own (its FLOPs are not counted); tiny random snapshot",
    "byola": "librosa.load(sr=16000) + librosa.feature.melspectrogram (n_fft 1024, hop 160, 64 "
             "Slaney mels 60-7800 Hz, power 2, centred) + log(x + eps) + paper normalisation + "
             "AudioNTT2022 encoder on (1, 1, 64, T), max + mean over time",
}
"""What each reference path runs, as recorded next to its timings."""


def panns_models() -> ModuleType:
    """`panns_inference.models`, imported with HOME at a temp folder holding the label CSV."""
    if "panns_inference.models" in sys.modules:
        return sys.modules["panns_inference.models"]
    home = Path(tempfile.mkdtemp(prefix="panns-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    labels = home / "panns_data" / "class_labels_indices.csv"
    labels.parent.mkdir(parents=True)
    rows = [f"{i},/m/{i:05d},label {i}" for i in range(AUDIOSET_CLASSES)]
    labels.write_text("index,mid,display_name\n" + "\n".join(rows) + "\n")
    previous = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        import panns_inference.models as models
    finally:
        if previous is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = previous
    return models


def _cnn14() -> torch.nn.Module:
    """panns_inference's Cnn14 configured as for the 32 kHz checkpoint, at its initial weights."""
    return panns_models().Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64,
                                fmin=50, fmax=14000, classes_num=AUDIOSET_CLASSES)


def _vggish() -> torch.nn.Module:
    """torchvggish's VGG without postprocessing (its constructor downloads nothing)."""
    from torchvggish.torchvggish import _vgg

    return _vgg(postprocess=False)


def reference_cnn14(seed: int) -> torch.nn.Module:
    """panns_inference's Cnn14 for the 32 kHz checkpoint, seeded, with non-trivial BatchNorm
    statistics so that a BatchNorm applied on the wrong axis shows up in the embeddings."""
    torch.manual_seed(seed)
    model = _cnn14()
    randomise_batchnorm(model)
    return model.eval()


def reference_vggish(seed: int) -> torch.nn.Module:
    """torchvggish's VGG without postprocessing, seeded."""
    torch.manual_seed(seed)
    return _vggish().eval()


def randomise_batchnorm(model: torch.nn.Module) -> None:
    """Give every BatchNorm layer (1d or 2d) random affine parameters and running statistics."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)


# --- the reference per-clip paths, as each model's README runs it ----------------------------

class PannsReference:
    """panns_inference's Cnn14 used as its README does (AudioTagging.inference is this forward
    under no_grad), fed by librosa.load at 32 kHz."""

    sample_rate = 32000

    def __init__(self, weights: Path) -> None:
        self.model = _cnn14()
        self.model.load_state_dict(torch.load(weights, weights_only=True)["model"])
        self.model.eval()

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(wave[None]))["embedding"][0].numpy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        audio, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(audio)


class VggishReference:
    """torchvggish: its own file reader and numpy front end (resampy), its VGG, examples
    mean-pooled into one clip vector as our extractor's default pooling does."""

    sample_rate = 16000

    def __init__(self, weights: Path) -> None:
        self.model = _vggish()
        self.model.load_state_dict(torch.load(weights, weights_only=True))
        self.model.eval()

    def _pooled(self, examples: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.model(examples).mean(dim=0).numpy()

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        from torchvggish.vggish_input import waveform_to_examples

        return self._pooled(waveform_to_examples(wave, self.sample_rate))

    def embed_file(self, path: Path) -> np.ndarray:
        from torchvggish.vggish_input import wavfile_to_examples

        return self._pooled(wavfile_to_examples(str(path)))


class ByolaReference:
    """BYOL-A has no package: the authors' recipe with librosa (front end, normalisation with
    their fixed statistics, written out here rather than taken from mgc) around the
    AudioNTT2022 encoder module, one clip at a time."""

    sample_rate = 16000
    normalisation = (-9.660292, 4.7219563)

    def __init__(self, weights: Path) -> None:
        extractor = load_ours("byola", str(weights))
        network = extractor.build_network()      # eager, in the published layer order
        extractor.load_weights(network, weights)
        self.encoder = network.encoder.eval()

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        mel = librosa.feature.melspectrogram(y=wave, sr=self.sample_rate, n_fft=1024,
                                             hop_length=160, n_mels=64, fmin=60, fmax=7800,
                                             htk=False, norm="slaney", power=2.0, center=True,
                                             pad_mode="reflect")
        mean, std = self.normalisation
        log_mel = (np.log(mel + np.finfo(np.float32).eps) - mean) / std
        with torch.no_grad():
            frames = self.encoder(torch.from_numpy(log_mel.astype(np.float32))[None, None])
            return (frames.amax(dim=1) + frames.mean(dim=1))[0].numpy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        wave, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(wave)


HUB_MODELS = ("mert", "clap", "muq")
"""Models whose weights are a snapshot folder (config + safetensors), not one file."""


def weights_path(model: str, weights_dir: Path) -> Path:
    """Where `save_weights` puts `model`'s weights: a file, or a hub snapshot folder."""
    return weights_dir / (model if model in HUB_MODELS else f"{model}.pth")


def save_weights(model: str, weights_dir: Path, hub_size: str = "tiny") -> Path:
    """Seeded random weights in the model's official layout; both paths load them.

    BatchNorm layers get random statistics, so a BatchNorm on the wrong axis would show.
    The hub models get random snapshots of `hub_size` (defined below)."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_path(model, weights_dir)
    if model == "mert":
        random_mert_snapshot(path, size=hub_size)
    elif model == "clap":
        random_clap_snapshot(path, size=hub_size)
    elif model == "muq":
        random_muq_snapshot(path, size=hub_size)
    elif model == "panns":
        torch.save({"model": reference_cnn14(SEED).state_dict()}, path)
    elif model == "vggish":
        torch.save(reference_vggish(SEED).state_dict(), path)
    else:
        encoder = load_ours("byola", "random").build_network().encoder
        torch.manual_seed(SEED)
        randomise_batchnorm(encoder)
        torch.save(encoder.state_dict(), path)
    return path


# --- the hub models: tiny random snapshots in the published layouts, and the model cards'
# --- own recipes (the library's processor and forward, one clip at a time)

TINY_MERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "conv_dim": [16] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
             "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_bias": False,
             "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
             "feat_extract_norm": "group", "do_stable_layer_norm": False}
"""MERT-v1-95M's architecture (7 convs of stride 320 in all, post-norm encoder) shrunk."""
MERT_ONLY_FIELDS = {"model_type": "mert_model", "architectures": ["MERTModel"],
                    "auto_map": {"AutoModel": "modeling_MERT.MERTModel"},
                    "attention_relax": -1.0, "deepnorm": False, "feature_extractor_cqt": False,
                    "feature_extractor_cqt_bins": 336, "sample_rate": 24000}
"""What MERT's config.json holds beyond HubertConfig's fields (configuration_MERT.py)."""
TINY_CLAP_TEXT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 64, "max_position_embeddings": 80, "projection_dim": 16}
TINY_CLAP_AUDIO = {"hidden_size": 128, "patch_embeds_hidden_size": 16, "depths": [1, 1, 1, 1],
                   "num_attention_heads": [1, 1, 2, 2], "window_size": 8, "projection_dim": 16,
                   "enable_fusion": False}
"""HTSAT's four Swin stages (64 mel bins, 256x256 spectrogram image) at width 16."""
HUB_SIZES = ("tiny", "full")
"""`full`: the published architectures' sizes (transformers' HubertConfig defaults are HuBERT
base, MERT-v1-95M's shape; ClapAudioConfig's are HTSAT-base, both CLAP checkpoints'), random
weights, for timings that mean something; `tiny` for tests."""


def _byte_level_alphabet() -> list[str]:
    """GPT-2/RoBERTa's printable stand-ins for the 256 byte values (its byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_tiny_tokenizer(folder: Path) -> int:
    """A RoBERTa tokenizer with no merges (every byte one token) in the hub's file layout;
    returns its vocabulary size."""
    import json

    from transformers import RobertaTokenizer

    vocab = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>",
                                                 *_byte_level_alphabet(), "<mask>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    return len(vocab)


def random_mert_snapshot(folder: Path, seed: int = SEED, size: str = "tiny") -> Path:
    """A random MERT-v1-shaped model (`size` from HUB_SIZES) saved as the hub repository
    lays it out: MERT's config.json, the Wav2Vec2 preprocessor config, model.safetensors
    with the published weight names (the positional conv's weight norm as `weight_g` and
    `weight_v`)."""
    import json

    from safetensors.torch import save_file
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = HubertConfig(**(TINY_MERT if size == "tiny" else {}))
    model = HubertModel(config).eval()
    state = {name.replace("parametrizations.weight.original0", "weight_g")
             .replace("parametrizations.weight.original1", "weight_v"): value.contiguous()
             for name, value in model.state_dict().items()}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({**config.to_dict(), **MERT_ONLY_FIELDS}))
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return folder


def spread_text_tower(model: torch.nn.Module, seed: int) -> None:
    """Redraw a random CLAP's text tower so that it tells prompts apart, as a trained one does.

    At transformers' initialisation (std 0.02, shared start-token, position and type
    embeddings) the first token, which CLAP's text tower pools, reads nearly the same state
    for every prompt: unrelated prompts embed at a mean pairwise cosine of 0.999, a collapsed
    tower, which zero-shot refuses. Here the word embeddings are at unit scale, the parts
    every prompt shares (start token, positions, token type) are zero, and every matrix is
    at fan-in scale, so the first token's state is a mixture of the prompt's own tokens.
    The audio tower is left as drawn."""
    generator = torch.Generator().manual_seed(seed)
    text = model.text_model
    with torch.no_grad():
        for name, parameter in [*text.named_parameters(),
                                *model.text_projection.named_parameters()]:
            if parameter.dim() != 2:
                continue
            if "embeddings" in name:
                scale = 1.0 if "word_embeddings" in name else 0.0
            else:
                scale = parameter.shape[1] ** -0.5
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
        text.embeddings.word_embeddings.weight[text.config.bos_token_id].zero_()


def collapse_text_tower(model: torch.nn.Module) -> None:
    """Make a CLAP's text tower map every prompt to nearly one vector, as the published
    laion/larger_clap_music's does: the pooler's input weights shrunk to a thousandth, so
    its output is all but its bias."""
    with torch.no_grad():
        model.text_model.pooler.dense.weight.mul_(1e-3)
        model.text_model.pooler.dense.bias.normal_(0.0, 1.0)


def random_clap_snapshot(folder: Path, seed: int = SEED, size: str = "tiny",
                         text_tower: str = "spread") -> Path:
    """A random CLAP (HTSAT audio of `size` from HUB_SIZES, a tiny RoBERTa text tower,
    `spread` by `spread_text_tower` or `collapsed` by `collapse_text_tower`) saved by
    save_pretrained with its preprocessor (the unfused checkpoints' rand_trunc + repeatpad)
    and a tiny tokenizer."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tiny_tokenizer(folder)
    torch.manual_seed(seed)
    projection = TINY_CLAP_AUDIO["projection_dim"] if size == "tiny" else 512
    config = ClapConfig(text_config={**TINY_CLAP_TEXT, "vocab_size": vocab_size,
                                     "projection_dim": projection},
                        audio_config={**(TINY_CLAP_AUDIO if size == "tiny" else {}),
                                      "projection_dim": projection},
                        projection_dim=projection)
    model = ClapModel(config).eval()
    spread_text_tower(model, seed)
    if text_tower == "collapsed":
        collapse_text_tower(model)
    elif text_tower != "spread":
        raise ValueError(f"text_tower={text_tower!r}: spread or collapsed")
    model.save_pretrained(folder)
    ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad").save_pretrained(folder)
    return folder


MUQ_LARGE_CONFIG = Path(__file__).with_name("muq-large-msd-iter.config.json")
"""MuQ-large-msd-iter's config.json: what the published `MuQConfig` writes with the pretraining
recipe's defaults, codebook_size 8192 and use_rvq_target true; its sha256 is the one public
projects pin for the hub file (mgc.extractors.muq.CONFIG_SHA256; tests/test_extractor_muq.py)."""
TINY_MUQ = {"conv_dim": 8, "encoder_dim": 32, "encoder_depth": 2, "codebook_size": 64,
            "use_rvq_target": False}
TINY_MUQ_ENCODER = {"num_attention_heads": 2, "intermediate_size": 64,
                    "conv_depthwise_kernel_size": 3, "num_conv_pos_embeddings": 16,
                    "num_conv_pos_embedding_groups": 2}
"""MuQ-large shrunk; the nested w2v2_config keeps its 24 layers and width 1024, which MuQ
overrides with encoder_depth and encoder_dim, as in the published config."""


def muq_config(size: str = "tiny") -> dict[str, Any]:
    """MuQ's config.json as a dict: the published large model's, or shrunk (`tiny`)."""
    import json

    config = json.loads(MUQ_LARGE_CONFIG.read_text())
    if size == "tiny":
        config.update(TINY_MUQ)
        config["w2v2_config"].update(TINY_MUQ_ENCODER)
    return config


def write_hub_config(folder: Path, config: dict[str, Any]) -> None:
    """config.json as huggingface_hub's `PyTorchModelHubMixin.save_pretrained` writes it."""
    import json

    (folder / "config.json").write_text(json.dumps(config, sort_keys=True, indent=2))


def random_muq_snapshot(folder: Path, seed: int = SEED, size: str = "tiny") -> Path:
    """A random MuQ (`size` from HUB_SIZES) in the hub repository's layout: the mixin's
    config.json and a model.safetensors with the published names (`model.` prefix), the
    training-only tensors included (random-projection quantiser, token classifier,
    cls_token), BatchNorm statistics random."""
    from safetensors.torch import save_file

    from mgc.extractors.muq import MuqNetwork, MuqSettings

    folder.mkdir(parents=True, exist_ok=True)
    # The training-only quantiser as a random projection (the published large model's is a
    # Mel-RVQ, `use_rvq_target`): both are dropped by inference, and the published code then
    # loads these tensors strictly. The inference path is the large model's.
    config = {**muq_config(size), "use_rvq_target": False}
    write_hub_config(folder, config)
    torch.manual_seed(seed)
    network = MuqNetwork(MuqSettings.from_config(config, folder)).eval()
    randomise_batchnorm(network)
    width, codes = config["encoder_dim"], config["codebook_size"]
    state = {f"model.{name}": value.contiguous() for name, value in network.state_dict().items()}
    state |= {"model.quantizer_melspec_2048.random_projection": torch.randn(4 * 128, 16),
              "model.quantizer_melspec_2048.codebook": torch.randn(codes, 16),
              "model.linear.weight": torch.randn(codes, width) * 0.02,
              "model.linear.bias": torch.zeros(codes), "model.cls_token": torch.randn(width)}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


MUQ_REFERENCE_DIR = Path(__file__).with_name("muq_reference")
MUQ_REFERENCE_SCRIPT = MUQ_REFERENCE_DIR / "reference.py"


def muq_reference_site() -> Path:
    """Where the Makefile installs MuQ's published code and transformers 4 (in the venv)."""
    return Path(sys.prefix) / "muq-reference"


def muq_reference_env() -> dict[str, str]:
    """The environment MuQ's published code runs in: its folder and the torchaudio stand-in
    ahead of the venv's packages, then this repository (for `benchmarks`), the hub offline."""
    paths = [str(muq_reference_site()), str(MUQ_REFERENCE_DIR),
             str(Path(__file__).resolve().parents[1])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1"}


class MuqReference:
    """MuQ's README: `MuQ.from_pretrained` and a forward with output_hidden_states, the last
    hidden state averaged over time, one clip at a time, run by MuQ's published code in a
    process of its own (it needs transformers 4; benchmarks/muq_reference)."""

    sample_rate = 24000

    def __init__(self, folder: Path) -> None:
        import subprocess

        self.process = subprocess.Popen(     # as many threads as this process has
            [sys.executable, str(MUQ_REFERENCE_SCRIPT), "--serve", str(folder),
             "--threads", str(torch.get_num_threads())],
            env=muq_reference_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        atexit.register(self.close)

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(wave, dtype=np.float32)
        self.process.stdin.write(len(samples).to_bytes(8, "little") + samples.tobytes())
        self.process.stdin.flush()
        header = self.process.stdout.read(8)
        if len(header) < 8:
            raise RuntimeError(f"MuQ's reference process ended (exit {self.process.wait()})")
        size = int.from_bytes(header, "little")
        return np.frombuffer(self.process.stdout.read(4 * size), np.float32).copy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        wave, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(wave)

    def server_peak_rss_mb(self) -> float:
        """The serving process's peak resident set (VmHWM), which holds the model: the
        reference path's memory is this process's and that one's together."""
        status = Path(f"/proc/{self.process.pid}/status")
        for line in status.read_text().splitlines() if status.exists() else ():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


class MertReference:
    """MERT's model card: Wav2Vec2FeatureExtractor (do_normalize) on the whole clip, the
    model with output_hidden_states, the chosen layer averaged over time; the model here is
    transformers' HubertModel, since MERT's own class is remote code."""

    sample_rate = 24000

    def __init__(self, folder: Path, layer: int = -1) -> None:
        import json

        from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

        self.processor = Wav2Vec2FeatureExtractor.from_pretrained(folder)
        fields = json.loads((folder / "config.json").read_text())
        config = HubertConfig(**{key: value for key, value in fields.items()
                                 if key not in MERT_ONLY_FIELDS})
        self.model = HubertModel.from_pretrained(folder, config=config)
        self.model.eval().requires_grad_(False)   # as under no_grad; lets FLOPs be counted
        self.layer = layer

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        inputs = self.processor(wave, sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.no_grad():
            states = self.model(inputs["input_values"], output_hidden_states=True).hidden_states
        return states[self.layer][0].mean(dim=0).numpy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        wave, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(wave)


class ClapReference:
    """CLAP's model card: ClapProcessor's feature extractor on the clip, get_audio_features."""

    sample_rate = 48000

    def __init__(self, folder: Path) -> None:
        from transformers import ClapFeatureExtractor, ClapModel

        self.processor = ClapFeatureExtractor.from_pretrained(folder)
        self.model = ClapModel.from_pretrained(folder).eval().requires_grad_(False)

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        from mgc.extractors.clap import projected

        inputs = self.processor(wave, sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.no_grad():
            return projected(self.model.get_audio_features(**inputs))[0].numpy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        wave, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(wave)


REFERENCES: dict[str, type[Any]] = {
    "panns": PannsReference, "vggish": VggishReference, "byola": ByolaReference,
    "mert": MertReference, "clap": ClapReference, "muq": MuqReference}
