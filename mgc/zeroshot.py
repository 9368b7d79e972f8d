"""Zero-shot genre classification with CLAP: genre names become text prompts, and a clip
belongs to the genre whose prompt embedding is closest (cosine) to its audio embedding.

Nothing is trained, so it is the baseline the probes on frozen embeddings must beat, and
it labels a file with any set of genres a user names (`mgc predict --zero-shot`). Each
genre's text embedding is the normalised mean over the prompt templates (prompt
ensembling, as CLIP's zero-shot evaluation does); probabilities are the softmax of the
cosines times CLAP's learnt audio-text logit scale, as `ClapModel`'s `logits_per_audio`.

A text tower that maps every prompt to nearly the same vector makes every choice noise,
and nothing in the probabilities shows it: such a checkpoint is published (the text tower
of laion/larger_clap_music embeds unrelated prompts at a mean pairwise cosine of 0.9993,
README "Zero-shot"). So a classifier is built only on a text tower that tells a fixed set
of unrelated prompts apart (`check_text_tower`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mgc.errors import UserError
from mgc.evaluate import ScoringSet, score_probabilities, summarise_test_set

ZERO_SHOT = "zeroshot"
"""The classifier kind in `train.classifiers` and the metrics files."""

PROBE_PROMPTS = ("a dog barking", "rain falling on a tin roof",
                 "a man reading the news on the radio", "a jazz saxophone solo",
                 "a baby crying", "heavy traffic on a motorway", "church bells ringing",
                 "an electronic dance track with a heavy bass drop")
"""Eight descriptions of unrelated sounds, which a working text tower embeds apart."""

COLLAPSED_MEAN_COSINE = 0.95
"""The probe prompts' mean pairwise cosine above which a text tower counts as collapsed.
Published measurements on four unrelated prompts (README "Zero-shot with CLAP"): 0.9993 for
the collapsed laion/larger_clap_music (every pair 0.9990-0.9995), 0.18 for
clap-htsat-unfused and 0.29 for larger_clap_general (single pairs up to 0.50). On the
distance from 1, a collapsed tower (0.0007) is seventy times closer than the threshold
(0.05) and a working one (0.7) fourteen times further, so neither a noisier collapse nor a
tighter working tower is misjudged."""


class TextTowerError(UserError, ValueError):
    """A checkpoint whose text tower cannot tell prompts apart: zero-shot with it is noise."""


PROMPT_TEMPLATES = ("This audio is a {genre} song.", "This is a {genre} song.",
                    "This is a sound of {genre}.")
"""LAION's prompt for its published zero-shot GTZAN numbers (the LAION-AI/CLAP README), a
plain variant of it, and transformers' zero-shot-audio-classification default
(`hypothesis_template`, the form of the CLAP model cards' examples)."""


class TextAudioModel(Protocol):
    """What zero-shot needs from an extractor: text embeddings in its audio space, and the
    name of its checkpoint for errors and reports."""

    checkpoint: str

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def logit_scale(self) -> float: ...


@dataclass(frozen=True)
class TextTowerCheck:
    """How far apart a checkpoint's text tower puts the probe prompts."""

    checkpoint: str
    probe_mean_cosine: float


def check_text_tower(model: TextAudioModel) -> TextTowerCheck:
    """The probe prompts' mean pairwise cosine; a TextTowerError naming the checkpoint if
    it is above `COLLAPSED_MEAN_COSINE`."""
    vectors = np.asarray(model.embed_texts(PROBE_PROMPTS), dtype=np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    pairs = np.triu_indices(len(PROBE_PROMPTS), k=1)
    mean_cosine = float((vectors @ vectors.T)[pairs].mean())
    if not mean_cosine <= COLLAPSED_MEAN_COSINE:
        raise TextTowerError(
            f"{model.checkpoint}: its text tower is collapsed, so zero-shot genres would be "
            f"noise: {len(PROBE_PROMPTS)} unrelated prompts embed at a mean pairwise cosine of "
            f"{mean_cosine:.4f} (a working CLAP: about 0.2-0.3; refused above "
            f"{COLLAPSED_MEAN_COSINE}). Use a checkpoint whose text tower works, e.g. the "
            "default clap variant, for zero-shot; its audio embeddings can still be probed")
    return TextTowerCheck(model.checkpoint, mean_cosine)


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
    """Class probabilities for audio embeddings from the prompts of `class_names`, on a
    text tower that passed `check_text_tower` (refused otherwise)."""

    def __init__(self, model: TextAudioModel, class_names: Sequence[str],
                 templates: Sequence[str] = PROMPT_TEMPLATES) -> None:
        if not class_names:
            raise ValueError("zero-shot classification needs at least one class name")
        self.text_tower = check_text_tower(model)
        self.class_names = list(class_names)
        prompts = [template.format(genre=genre_text(name))
                   for name in self.class_names for template in templates]
        embedded = model.embed_texts(prompts).reshape(len(self.class_names), len(templates), -1)
        mean = embedded.mean(axis=1)
        self.text_embeddings = mean / np.linalg.norm(mean, axis=1, keepdims=True)
        self.scale = model.logit_scale()
        self.templates = list(templates)

    def describe(self) -> dict[str, object]:
        """What the scores depend on besides the audio: the checkpoint, how its text tower
        passed the check, and the prompt templates averaged per genre."""
        return {"checkpoint": self.text_tower.checkpoint,
                "text_tower_probe_mean_cosine": self.text_tower.probe_mean_cosine,
                "collapsed_above": COLLAPSED_MEAN_COSINE, "prompt_templates": self.templates}

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, classes) softmax of scaled cosine similarity."""
        audio = np.asarray(embeddings, dtype=np.float64)
        audio = audio / np.maximum(np.linalg.norm(audio, axis=1, keepdims=True), 1e-12)
        logits = self.scale * audio @ self.text_embeddings.T
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)


def zero_shot_scores(evaluation: dict[str, ScoringSet], classifier: ZeroShotClassifier,
                     class_names: list[str]) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """Zero-shot scores on every test set, summarised as one run (nothing is trained, so
    seeds change nothing), and each set's predicted class indices."""
    if classifier.class_names != list(class_names):
        raise ValueError(f"the zero-shot classifier was built for {classifier.class_names}, "
                         f"not the run's classes {list(class_names)}")
    scores: dict[str, object] = {}
    predicted: dict[str, np.ndarray] = {}
    for name, test in evaluation.items():
        proba = classifier.predict_proba(test.tracks.x)
        predicted[name] = proba.argmax(axis=1)
        scores[name] = summarise_test_set(test, [score_probabilities(test, proba, class_names)],
                                          predicted[name][None, :])
    return scores, predicted
