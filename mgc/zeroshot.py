"""Zero-shot genre classification with CLAP: genre names become text prompts, and a clip
belongs to the genre whose prompt embedding is closest (cosine) to its audio embedding.

Nothing is trained, so it is the baseline the probes on frozen embeddings must beat, and
it labels a file with any set of genres a user names (`mgc predict --zero-shot`). Each
genre's text embedding is the normalised mean over the prompt templates (prompt
ensembling, as CLIP's zero-shot evaluation does); probabilities are the softmax of the
cosines times CLAP's learnt audio-text logit scale, as `ClapModel`'s `logits_per_audio`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

ZERO_SHOT = "zeroshot"
"""The classifier kind in `train.classifiers` and the metrics files."""

PROMPT_TEMPLATES = ("This is a {genre} song.", "This is a sound of {genre}.")
"""The issue's music prompt, and transformers' zero-shot-audio-classification default
(`hypothesis_template`, the form of the CLAP model cards' examples)."""


class TextAudioModel(Protocol):
    """What zero-shot needs from an extractor: text embeddings in its audio space."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def logit_scale(self) -> float: ...


def genre_text(label: str) -> str:
    """The words of a class label: `gtzan/hiphop` (a joint class) -> `hiphop`, `hip_hop` ->
    `hip hop`."""
    return label.rsplit("/", 1)[-1].replace("_", " ").strip()


def parse_genres(text: str) -> list[str]:
    """`--genres "jazz, blues,rock"` -> ["jazz", "blues", "rock"]; empty or repeated names are
    an error naming them."""
    genres = [name.strip() for name in text.split(",") if name.strip()]
    if len(genres) < 2:
        raise ValueError(f"--genres {text!r}: name at least two genres, comma-separated")
    repeated = sorted({g for g in genres if genres.count(g) > 1})
    if repeated:
        raise ValueError(f"--genres {text!r}: {', '.join(repeated)} named more than once")
    return genres


def supports_zero_shot(extractor: object) -> bool:
    """Whether `extractor` (an instance or its class) embeds text in its audio space (CLAP
    does; the others do not)."""
    return callable(getattr(extractor, "embed_texts", None))


class ZeroShotClassifier:
    """Class probabilities for audio embeddings from the prompts of `class_names`."""

    def __init__(self, model: TextAudioModel, class_names: Sequence[str],
                 templates: Sequence[str] = PROMPT_TEMPLATES) -> None:
        if not class_names:
            raise ValueError("zero-shot classification needs at least one class name")
        self.class_names = list(class_names)
        prompts = [template.format(genre=genre_text(name))
                   for name in self.class_names for template in templates]
        embedded = model.embed_texts(prompts).reshape(len(self.class_names), len(templates), -1)
        mean = embedded.mean(axis=1)
        self.text_embeddings = mean / np.linalg.norm(mean, axis=1, keepdims=True)
        self.scale = model.logit_scale()

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, classes) softmax of scaled cosine similarity."""
        audio = np.asarray(embeddings, dtype=np.float64)
        audio = audio / np.maximum(np.linalg.norm(audio, axis=1, keepdims=True), 1e-12)
        logits = self.scale * audio @ self.text_embeddings.T
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)
