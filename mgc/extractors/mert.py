"""MERT-v1 (Li et al. 2023, m-a-p): a HuBERT-style music model, 24 kHz, one layer's frames
averaged over time.

MERT's official code is remote (`trust_remote_code`), which mgc never runs. Its
`MERTModel` (modeling_MERT.py in the hub repositories) subclasses transformers'
`HubertModel` and keeps its attribute names: the same `HubertFeatureEncoder`, a feature
projection with HuBERT's `feat_proj_layer_norm` option, and `HubertEncoder` (or
`HubertEncoderStableLayerNorm`, the 330M model). Two additions never change inference of
the v1 checkpoints: the CQT branch is built only with `feature_extractor_cqt: true`, and
`attention_relax` subtracts each attention row's maximum before the softmax, which the
softmax ignores (and it only applies in its `deepnorm` encoder). So `HubertModel`, built
from the snapshot's own config.json, loads the published weight names unchanged; a config
that turns on the CQT branch or deepnorm is refused rather than misread.

Preprocessing, from the model card and its `preprocessor_config.json`
(`Wav2Vec2FeatureExtractor`, `do_normalize: true`): 24 kHz mono, each clip normalised to
zero mean and unit variance (variance + 1e-7) as a whole; 75 frames per second. Pre-trained
on 5 s excerpts (the model card's table), so clips are embedded in 5 s windows
(foundation.py). `layer` picks one of the 13 (95M) or 25 (330M) hidden states, 0 being the
transformer's input; "last" is the final layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from mgc.config import invalid
from mgc.extractors.foundation import (
    FoundationExtractor,
    frame_sums,
    hidden_state_index,
    import_transformers,
)
from mgc.extractors.hub import PICKLE, HubModel, PinnedWeights, load_pretrained, read_config
from mgc.extractors.kernels import use_channels_last_convolutions
from mgc.extractors.neural import Precision, check_choice
from mgc.extractors.weights import WeightsError
from mgc.layers import LAST

SAMPLE_RATE = 24000
WINDOW_SECONDS = 5.0
NORMALISATION_EPS = 1e-7

Variant = Literal["95M", "330M"]
# The commits other projects pin, and the one weights file each holds (README, "Pinned
# revisions", says where each fact comes from). MERT-v1 publishes no safetensors; the 95M
# pickle's sha256 agrees across six public lockfiles, the 330M's is in none, so the 330M
# pickle is not read until someone pins it.
VARIANTS: dict[str, HubModel] = {
    "95M": HubModel("m-a-p/MERT-v1-95M", "12af15fef9d0ac838c3f475bfbbf26d2060dd4f5",
                    PinnedWeights(PICKLE, "a2b8b747f72c06e0595aeae41ae5473f"
                                          "4364938c6b39b2c58be38c48e6bd3fcd", 377_552_987),
                    "CC-BY-NC-4.0"),
    "330M": HubModel("m-a-p/MERT-v1-330M", "5240c2708a5acaee1007f43fb9735c7dcd0b78c9",
                     PinnedWeights(PICKLE), "CC-BY-NC-4.0"),
}
UNSUPPORTED = {"feature_extractor_cqt": "the CQT input branch",
               "deepnorm": "deepnorm residual scaling"}


def hubert_config(mert_config: dict[str, Any]) -> Any:
    """A transformers `HubertConfig` with the MERT config's architecture fields."""
    transformers = import_transformers()
    for key, what in UNSUPPORTED.items():
        if mert_config.get(key):
            raise WeightsError(f"config.json sets {key}: {what} is not part of HubertModel; "
                               "only MERT-v1 configs without it are supported")
    known = set(transformers.HubertConfig().to_dict())
    fields = {key: value for key, value in mert_config.items()
              if key in known and key not in ("architectures", "model_type", "auto_map",
                                              "transformers_version")}
    return transformers.HubertConfig(**fields)


class MertExtractor(FoundationExtractor):
    """MERT-v1 clip embeddings: 768-d (95M) or 1024-d (330M), one layer averaged over time."""

    name = "mert"

    def __init__(self, weights: str | Path = "pretrained", variant: Variant = "95M",
                 revision: str | None = None, layer: int | Literal["last"] = LAST,
                 window_seconds: float = WINDOW_SECONDS, precision: Precision = "fp32",
                 device: str = "auto", progress: bool = True) -> None:
        check_choice("variant", variant, get_args(Variant))
        if not 0.5 <= window_seconds <= 30.0:
            raise invalid("window_seconds", window_seconds, "must be between 0.5 and 30 "
                          f"(MERT-v1 was trained on {WINDOW_SECONDS:g} s)")
        self.variant = variant
        self.layer_option = layer
        self.sample_rate = SAMPLE_RATE
        self.window_samples = round(window_seconds * SAMPLE_RATE)
        super().__init__(weights=weights, device=device, precision=precision,
                         progress=progress,
                         model=VARIANTS[variant].at(revision),
                         pinned=tuple(model.weights for model in VARIANTS.values()))

    def load_model(self, folder: Path) -> None:
        transformers = import_transformers()
        config = hubert_config(read_config(folder))
        self._check_preprocessor(folder)
        self.layer = hidden_state_index(self.layer_option, config.num_hidden_layers)
        model = load_pretrained(transformers.HubertModel, self.snapshot, config=config)
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.dim = config.hidden_size
        if self.cpu_float32:     # the conv feature encoder: 35 % of MERT's FLOPs
            use_channels_last_convolutions(self.model.feature_extractor)
        self.optimise_for_cpu(self.model)

    def attention_configs(self) -> tuple[Any, ...]:
        return (self.model.config,)

    def _check_preprocessor(self, folder: Path) -> None:
        """The snapshot's preprocessor must be the model card's: 24 kHz, normalised."""
        path = folder / "preprocessor_config.json"
        if not path.exists():
            return
        settings = json.loads(path.read_text())
        if (settings.get("sampling_rate", SAMPLE_RATE) != SAMPLE_RATE
                or not settings.get("do_normalize", True)):
            raise WeightsError(f"{path}: expected sampling_rate {SAMPLE_RATE} and "
                               f"do_normalize true (MERT-v1), found {settings}")

    def prepare(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Wav2Vec2FeatureExtractor's normalisation, over each whole clip."""
        mean = waveforms.mean(dim=1, keepdim=True)
        variance = waveforms.var(dim=1, unbiased=False, keepdim=True)
        return (waveforms - mean) / torch.sqrt(variance + NORMALISATION_EPS)

    def hidden_states(self, windows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every layer's frames (each (n, frames, dim)): what a later all-layers mode reads."""
        return self.model(windows, output_hidden_states=True).hidden_states

    def embed_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return frame_sums(self.hidden_states(windows)[self.layer])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "variant": self.variant, "layer": self.layer,
                "pooling": "mean"}
