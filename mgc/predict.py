"""Audio files -> genre probabilities with a trained model bundle (`mgc predict`).

A file is judged the way the classifier was trained: decoded at the extractor's rate, cut
into clips of the training clip length, each clip embedded and classified, and the clip
probabilities averaged, so a 4-minute song is judged on all of it rather than on its intro.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mgc import extractors
from mgc.audio import AUDIO_EXTENSIONS, AudioError, load_audio, split_into_clips
from mgc.bundle import load_bundle
from mgc.zeroshot import ZeroShotClassifier


@dataclass(frozen=True)
class Prediction:
    """One file's result: its top genres (best first), or why it could not be predicted.

    `n_clips` is how many training-length clips the file was judged on and `duration_s` its
    decoded length; both are 0 when `error` is set.
    """

    path: Path
    genres: tuple[tuple[str, float], ...] = ()
    n_clips: int = 0
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record (`--json` prints a list of these)."""
        return {
            "path": str(self.path),
            "genres": [{"genre": g, "probability": p} for g, p in self.genres],
            "clips": self.n_clips,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
        }


def prediction_clips(waveform: np.ndarray, clip_samples: int) -> np.ndarray:
    """Cut `waveform` into (n_clips, clip_samples) clips of the training length.

    A file shorter than one clip is zero-padded, as training clips were. In a longer file
    the final partial clip is kept only if it holds at least half a clip of audio: a tail
    that is mostly padding would count as much as a full clip in the average while
    carrying little music (and a lot of silence the classifier never saw as music).
    """
    if clip_samples <= 0:
        raise ValueError(f"clip_samples must be positive, got {clip_samples}")
    n_full, tail = divmod(waveform.shape[-1], clip_samples)
    if n_full >= 1 and tail < clip_samples / 2:
        waveform = waveform[..., : n_full * clip_samples]
    return split_into_clips(waveform, clip_samples)


def find_audio_files(path: Path) -> list[Path]:
    """Audio files under folder `path` (recursively, by extension, sorted), or `[path]`.

    A file named explicitly is always tried whatever its extension; only folder contents
    are filtered, so stray cover images and playlists are skipped silently.
    """
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*")
                  if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


class GenrePredictor:
    """A loaded bundle plus the extractor that feeds it, reusable across many files."""

    def __init__(self, model_dir: Path, batch_size: int = 8) -> None:
        """Load the bundle in `model_dir` and build its extractor with the bundle's options.

        Pretrained weights come from the extractor's cache; if they are missing or do not
        verify, the extractor's own error is raised unchanged.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.model, self.info = load_bundle(Path(model_dir))
        self.extractor = extractors.load(self.info.extractor, **self.info.extractor_options)
        if self.extractor.dim != self.info.input_dim:
            raise ValueError(
                f"{model_dir}: the classifier expects {self.info.input_dim}-d embeddings but "
                f"extractor {self.info.extractor!r} with options {self.info.extractor_options} "
                f"gives {self.extractor.dim}-d")
        self.batch_size = batch_size
        self.clip_samples = self.info.clip_samples

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    def predict_waveform(self, waveform: np.ndarray) -> tuple[np.ndarray, int]:
        """Mean class probabilities over the clips of a mono waveform at the extractor's rate,
        and the number of clips."""
        clips = prediction_clips(np.asarray(waveform, dtype=np.float32), self.clip_samples)
        embeddings = np.concatenate([self.extractor.embed(clips[i:i + self.batch_size])
                                     for i in range(0, len(clips), self.batch_size)])
        return self.model.predict_proba(embeddings).mean(axis=0), len(clips)

    def predict_file(self, path: Path, top_k: int | None = None) -> Prediction:
        """Predict one file; a file that cannot be decoded gives a Prediction with `error`."""
        try:
            waveform = load_audio(path, self.extractor.sample_rate)
        except AudioError as error:
            return Prediction(path=Path(path), error=f"{error.status}: {error.reason}")
        probabilities, n_clips = self.predict_waveform(waveform)
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return Prediction(
            path=Path(path),
            genres=tuple((self.class_names[i], float(probabilities[i])) for i in order),
            n_clips=n_clips,
            duration_s=len(waveform) / self.extractor.sample_rate,
        )

    def predict_paths(self, paths: Iterable[Path], top_k: int | None = None,
                      progress: bool | None = None) -> list[Prediction]:
        """Predict every audio file named in or found under `paths`, in order, once each.

        A folder without audio files and a file that cannot be read each give an error
        Prediction; the rest go on. `progress=None` shows the bar only on a terminal.
        """
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
        items = list(_expand(paths))
        results: list[Prediction] = []
        disable = None if progress is None else not progress
        for item in tqdm(items, desc="predict", unit="file", disable=disable):
            results.append(item if isinstance(item, Prediction)
                           else self.predict_file(item, top_k))
        return results


class ZeroShotPredictor(GenrePredictor):
    """CLAP with genre prompts instead of a trained bundle: any file, any label set.

    Files are judged in CLAP's 10 s windows (each a clip), probabilities averaged.
    """

    def __init__(self, genres: Sequence[str], weights: str = "pretrained",
                 variant: str = "music", batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.extractor = extractors.load("clap", weights=weights, variant=variant)
        self.model = ZeroShotClassifier(self.extractor, genres)
        self.info = None
        self.genres = list(genres)
        self.clip_samples = self.extractor.window_samples
        self.batch_size = batch_size

    @property
    def class_names(self) -> list[str]:
        return self.genres


def _expand(paths: Iterable[Path]) -> Iterator[Path | Prediction]:
    """Files to predict, de-duplicated; an empty folder becomes an error Prediction."""
    seen: set[Path] = set()
    for path in map(Path, paths):
        files = find_audio_files(path)
        if not files:
            yield Prediction(path=path, error=f"no audio files found (looked for "
                                              f"{', '.join(AUDIO_EXTENSIONS)})")
        for file in files:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def predict_files(paths: Sequence[Path | str], model_dir: Path | str, top_k: int | None = 3,
                  batch_size: int = 8, progress: bool | None = None) -> list[Prediction]:
    """Genre predictions for audio files and folders with the bundle in `model_dir`.

    `top_k=None` keeps every class (their probabilities then sum to 1 for each file).
    """
    predictor = GenrePredictor(Path(model_dir), batch_size=batch_size)
    return predictor.predict_paths([Path(p) for p in paths], top_k=top_k, progress=progress)
