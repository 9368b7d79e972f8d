"""LAION CLAP (Wu et al. 2023): audio and text in one embedding space, through transformers'
`ClapModel`, 48 kHz; its audio embedding is the extractor's output and its text embedding
makes zero-shot classification possible (mgc/zeroshot.py).

Preprocessing is the snapshot's own `ClapFeatureExtractor` (its `preprocessor_config.json`:
48 kHz, 64-band log-mel, hop 480, 10 s maximum, the checkpoint's filterbank and padding),
applied to windows of at most 10 s (foundation.py), so no window is ever cropped at
random. Two deviations from calling the processor on a whole clip, both for
determinism: the processor's random crop of a clip longer than 10 s is replaced by windows
averaged by their length; and `is_longer` is false for every window (each fits the model's
10 s), where the processor, in `fusion` mode, marks a random clip of a batch as longer.
Variants, by repository: `larger_general` (laion/larger_clap_general, HTSAT-base trained on
music, speech, AudioSet and LAION-Audio-630K), the default; `unfused` (laion/clap-htsat-unfused,
HTSAT-tiny); `larger_music` (laion/larger_clap_music). The default is the one the public
record puts first for music (MAEB: GTZAN genre probe 84.5 % against 74.9 % for unfused, ESC-50
zero-shot 90.5 % against 81.7 %) and whose text tower works; larger_clap_music's does not
(its unrelated prompts embed at a cosine of 0.999, and MAEB scores its GTZAN probe 25.8 %),
so zero-shot refuses it and it is kept only to reproduce work that used it. With
`enable_fusion` in a checkpoint's config, the model loads the same way and, every window
fitting 10 s, uses its global branch only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from mgc.extractors.foundation import FoundationExtractor, import_transformers
from mgc.extractors.hub import PICKLE, HubModel, PinnedWeights, load_pretrained
from mgc.extractors.kernels import fused, use_onednn_linears
from mgc.extractors.neural import Precision, check_choice
from mgc.extractors.weights import WeightsError

SAMPLE_RATE = 48000
WINDOW_SECONDS = 10.0

Variant = Literal["larger_general", "unfused", "larger_music"]
DEFAULT_VARIANT = "larger_general"
# The commits other projects pin (mteb's and MAEB's among them), and the one weights file
# each holds there: every one publishes only pytorch_model.bin, whose sha256 several public
# lockfiles agree on (README, "Pinned revisions", says where each fact comes from).
VARIANTS: dict[str, HubModel] = {
    "larger_general": HubModel(
        "laion/larger_clap_general", "ada0c23a36c4e8582805bb38fec3905903f18b41",
        PinnedWeights(PICKLE, "314eb00cce6ad68d25237b8446b659ccdb136ed4672c1bca470f142f72455026",
                      776_444_665), "Apache-2.0"),
    "unfused": HubModel(
        "laion/clap-htsat-unfused", "8fa0f1c6d0433df6e97c127f64b2a1d6c0dcda8a",
        PinnedWeights(PICKLE, "1cd3c601bc4afe0fa87be3de4c13dd2cfadd249fac1e29acf74a9b296c3219bb",
                      614_525_833), "Apache-2.0"),
    "larger_music": HubModel(
        "laion/larger_clap_music", "a0b4534a14f58e20944452dff00a22a06ce629d1",
        PinnedWeights(PICKLE, "5c289311f4a030d768af7ffbfdecd01b008aa64824211899a4e59f4f9d154fd1",
                      776_444_665), "Apache-2.0"),
}


def fused_window_attention(attention: Any, hidden_states: torch.Tensor,
                           attention_mask: torch.Tensor | None = None,
                           output_attentions: bool | None = False) -> tuple[torch.Tensor, ...]:
    """HTSAT's window attention (transformers' `ClapAudioSelfAttention.forward`, which is
    eager only) through PyTorch's fused `scaled_dot_product_attention`: the relative
    position bias and the shifted windows' mask become its additive mask. The same
    function (tests/test_extractor_hub.py); under `kernels.unfused()`, or when the
    attention weights are asked for, the eager original runs."""
    if not fused() or output_attentions:
        return type(attention).forward(attention, hidden_states, attention_mask,
                                       output_attentions)
    batch, tokens, _ = hidden_states.shape
    shape = (batch, tokens, -1, attention.attention_head_size)
    query, key, value = (layer(hidden_states).view(shape).transpose(1, 2)
                         for layer in (attention.query, attention.key, attention.value))
    bias = attention.relative_position_bias_table[attention.relative_position_index.view(-1)]
    bias = bias.view(tokens, tokens, -1).permute(2, 0, 1)            # (heads, tokens, tokens)
    if attention_mask is None:
        mask = bias.unsqueeze(0).expand(batch, -1, -1, -1)
    else:                     # windows of each image in turn, each with its own shift mask
        windows = attention_mask.shape[0]
        mask = (bias.unsqueeze(0) + attention_mask.unsqueeze(1)).repeat(batch // windows, 1, 1, 1)
    context = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=mask.to(query.dtype))
    return (context.transpose(1, 2).reshape(batch, tokens, attention.all_head_size),)


def use_fused_window_attention(model: torch.nn.Module) -> None:
    """Every HTSAT window attention of `model` through `fused_window_attention`."""
    from transformers.models.clap.modeling_clap import ClapAudioSelfAttention

    for module in model.modules():
        if isinstance(module, ClapAudioSelfAttention):
            module.forward = partial(fused_window_attention, module)


def projected(output: Any) -> torch.Tensor:
    """The projected embeddings from `get_audio_features`/`get_text_features`: a tensor in
    transformers 4, the `pooler_output` of a model output in transformers 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClapExtractor(FoundationExtractor):
    """CLAP audio embeddings (512-d for the published checkpoints), and text embeddings."""

    name = "clap"

    def __init__(self, weights: str | Path = "pretrained", variant: Variant = DEFAULT_VARIANT,
                 revision: str | None = None, precision: Precision = "fp32",
                 device: str = "auto", progress: bool = True) -> None:
        check_choice("variant", variant, get_args(Variant))
        self.variant = variant
        self.sample_rate = SAMPLE_RATE
        self.window_samples = round(WINDOW_SECONDS * SAMPLE_RATE)
        self._tokenizer: Any = None
        super().__init__(weights=weights, device=device, precision=precision,
                         progress=progress,
                         model=VARIANTS[variant].at(revision),
                         pinned=tuple(model.weights for model in VARIANTS.values()))

    def load_model(self, folder: Path) -> None:
        transformers = import_transformers()
        if not (folder / "preprocessor_config.json").exists():
            raise WeightsError(f"{folder}: no preprocessor_config.json (CLAP's front end "
                               "settings)")
        self.features = transformers.ClapFeatureExtractor.from_pretrained(
            folder, local_files_only=True)
        if self.features.sampling_rate != SAMPLE_RATE:
            raise WeightsError(f"{folder}: sampling_rate {self.features.sampling_rate}, "
                               f"expected {SAMPLE_RATE}")
        model = load_pretrained(transformers.ClapModel, self.snapshot)
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.dim = model.config.projection_dim
        use_fused_window_attention(self.model.audio_model)
        self.optimise_for_cpu(self.model.audio_model)
        if self.cpu_float32:
            use_onednn_linears(self.model.audio_projection)

    def input_features(self, windows: torch.Tensor) -> torch.Tensor:
        """The processor's log-mel input for windows of at most 10 s each."""
        batch = self.features(list(windows.cpu().numpy()), sampling_rate=SAMPLE_RATE,
                              return_tensors="pt")
        return batch["input_features"].to(self.device)

    def embed_windows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.input_features(windows)
        is_longer = torch.zeros(len(windows), 1, dtype=torch.bool, device=self.device)
        vectors = projected(self.model.get_audio_features(input_features=features,
                                                               is_longer=is_longer))
        samples = torch.full((len(windows),), windows.shape[1], dtype=torch.float64)
        return vectors * windows.shape[1], samples

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings (len(texts), dim), with the snapshot's tokenizer."""
        if self._tokenizer is None:
            self._tokenizer = import_transformers().AutoTokenizer.from_pretrained(
                self.snapshot.path, local_files_only=True)
        tokens = self._tokenizer(list(texts), padding=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            vectors = projected(self.model.get_text_features(**tokens))
        return torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()

    def logit_scale(self) -> float:
        """CLAP's learnt temperature for audio-to-text logits (`logit_scale_a`, as a log)."""
        return float(self.model.logit_scale_a.detach().exp())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "variant": self.variant}
