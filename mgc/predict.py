"""Audio files -> genre probabilities with a trained model bundle (`mgc predict`).

A file is judged the way the classifier was trained: decoded at the extractor's rate, cut
into clips of the training clip length, each clip embedded and classified, and the clip
probabilities averaged, so a 4-minute song is judged on all of it rather than on its intro.
Decoding streams clip by clip, so a 10-hour file needs the memory of a 1-minute one, and
whatever goes wrong with one input (a corrupt file, a folder that cannot be read, a symlink
loop) becomes that input's error row while the others go on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mgc import extractors
from mgc.audio import AUDIO_EXTENSIONS, AudioError, fit_length, stream_audio
from mgc.bundle import INFO_FILE, BundleError, load_bundle, load_domain_map
from mgc.config import ConfigError
from mgc.layers import LAST, WEIGHTED, select_layer
from mgc.zeroshot import ZeroShotClassifier


@dataclass(frozen=True)
class Prediction:
    """One file's result: its top genres (best first), or why it could not be predicted.

    `n_clips` is how many training-length clips the file was judged on and `duration_s` its
    decoded length; both are 0 when `error` is set. `warning` says why a genre that was
    predicted means little: a near-silent file, or one under half a training clip long.
    """

    path: Path
    genres: tuple[tuple[str, float], ...] = ()
    n_clips: int = 0
    duration_s: float = 0.0
    error: str | None = None
    warning: str | None = None

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
            "warning": self.warning,
        }


MAX_CLIP_SECONDS = 600
"""The longest training clip a bundle may declare (what `mgc init-dataset` allows)."""
SILENCE_PEAK = 10 ** (-60 / 20)
"""A file whose loudest sample is below -60 dBFS is near-silent: its genre is a guess."""


def prediction_clips(waveform: np.ndarray, clip_samples: int) -> np.ndarray:
    """Cut `waveform` into (n_clips, clip_samples) clips of the training length
    (`stream_prediction_clips` on one block)."""
    return np.stack(list(stream_prediction_clips([np.asarray(waveform)], clip_samples)))


def stream_prediction_clips(blocks: Iterable[np.ndarray],
                            clip_samples: int) -> Iterator[np.ndarray]:
    """The training-length clips of a waveform that arrives in consecutive blocks.

    A file shorter than one clip is zero-padded, as training clips were. In a longer file
    the final partial clip is kept only if it holds at least half a clip of audio: a tail
    that is mostly padding would count as much as a full clip in the average while
    carrying little music (and a lot of silence the classifier never saw as music). Only
    one clip and one block are held at a time.
    """
    if clip_samples <= 0:
        raise ValueError(f"clip_samples must be positive, got {clip_samples}")
    pending: list[np.ndarray] = []
    held, emitted = 0, 0
    for block in blocks:
        while block.size:
            take = block[:clip_samples - held]
            pending.append(take)
            held += take.size
            block = block[take.size:]
            if held == clip_samples:
                yield np.concatenate(pending)
                pending, held, emitted = [], 0, emitted + 1
    if emitted == 0 or held >= clip_samples / 2:
        tail = np.concatenate(pending) if pending else np.zeros(0, np.float32)
        yield fit_length(tail, clip_samples)


def find_audio_files(path: Path) -> list[Path]:
    """Audio files under folder `path` (recursively, by extension, sorted), or `[path]`.

    A file named explicitly is always tried whatever its extension; only folder contents
    are filtered, so stray cover images and playlists are skipped silently. A subfolder
    that cannot be listed raises its OSError (`predict_paths` reports it instead).
    """
    files, failures = _walk_audio_files(path)
    if failures:
        raise failures[0]
    return files


def _walk_audio_files(path: Path) -> tuple[list[Path], list[OSError]]:
    """`find_audio_files`, with the folders that could not be listed returned, not raised.

    Symlinked folders are searched, each real folder once, so a link loop cannot recurse;
    a looping or dangling link with an audio name is listed, and its own error names it.
    """
    if not path.is_dir():
        return [path], []
    failures: list[OSError] = []
    files: list[Path] = []
    visited: set[tuple[int, int]] = set()
    for folder, subfolders, names in os.walk(path, onerror=failures.append, followlinks=True):
        here = os.stat(folder)
        if (here.st_dev, here.st_ino) in visited:
            subfolders.clear()
            continue
        visited.add((here.st_dev, here.st_ino))
        files.extend(Path(folder) / name for name in names
                     if Path(name).suffix.lower() in AUDIO_EXTENSIONS)
    return sorted(files), sorted(failures, key=lambda error: str(error.filename))


class GenrePredictor:
    """A loaded bundle plus the extractor that feeds it, reusable across many files."""

    def __init__(self, model_dir: Path, batch_size: int = 8, domain: str | None = None) -> None:
        """Load the bundle in `model_dir` and build its extractor with the bundle's options.

        A bundle trained with a domain map (`train.domain` standardise or coral) maps every
        embedding as training mapped the tracks of `domain` (default: the bundle's, the
        training dataset's, or for a joint model its first dataset's).

        Pretrained weights come from the extractor's cache; if they are missing or do not
        verify, the extractor's own error is raised unchanged.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.model, self.info = load_bundle(Path(model_dir))
        self.domain_map = load_domain_map(Path(model_dir), self.info, domain)
        info_path = Path(model_dir) / INFO_FILE
        try:
            self.extractor = extractors.load(self.info.extractor, **self.info.extractor_options)
        except ConfigError as error:
            raise BundleError(f"{info_path}: extractor_options: {error}") from None
        clip_seconds = self.info.clip_samples / self.extractor.sample_rate
        if clip_seconds > MAX_CLIP_SECONDS:
            raise BundleError(f"{info_path}: clip_samples={self.info.clip_samples}: "
                              f"{clip_seconds:g} s at {self.extractor.sample_rate} Hz, over "
                              f"the {MAX_CLIP_SECONDS} s a training clip can be")
        if self.info.layer != LAST and not self.extractor.layers:
            raise BundleError(f"{info_path}: layer {self.info.layer!r} needs the extractor's "
                              "every layer, but its extractor_options lack layers: all")
        dims = {layer.name: layer.dim for layer in self.extractor.layers}
        dim = (self.extractor.dim if self.info.layer == LAST else sum(dims.values())
               if self.info.layer == WEIGHTED else dims.get(self.info.layer, 0))
        if dim != self.info.input_dim:
            raise ValueError(
                f"{model_dir}: the classifier expects {self.info.input_dim}-d embeddings but "
                f"extractor {self.info.extractor!r} with options {self.info.extractor_options} "
                f"gives {dim}-d for layer {self.info.layer!r}")
        self.batch_size = batch_size
        self.clip_samples = self.info.clip_samples

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    def features(self, clips: np.ndarray) -> np.ndarray:
        """What the classifier was trained on for a batch of clips: the extractor's output,
        or (from the same single pass) the bundle's layer or every layer side by side."""
        if self.info.layer == LAST:
            return self.extractor.embed(clips)
        return select_layer(self.extractor.embed_layers(clips), self.info.layer)

    def predict_waveform(self, waveform: np.ndarray) -> tuple[np.ndarray, int]:
        """Mean class probabilities over the clips of a mono waveform at the extractor's rate,
        and the number of clips."""
        return self._predict_blocks([np.asarray(waveform, dtype=np.float32)], "waveform")

    def _predict_blocks(self, blocks: Iterable[np.ndarray],
                        path: Path | str) -> tuple[np.ndarray, int]:
        """`predict_waveform` on a waveform arriving in blocks; features that are not finite
        are an AudioError naming `path`."""
        clips = stream_prediction_clips(blocks, self.clip_samples)
        embeddings = []
        while batch := list(islice(clips, self.batch_size)):
            vectors = self.features(np.stack(batch))
            if not np.isfinite(vectors).all():
                raise AudioError(path, "unreadable", f"{self.extractor.name} features are not "
                                 "finite for this audio")
            embeddings.append(vectors)
        x = np.concatenate(embeddings)
        if self.domain_map is not None:
            x = self.domain_map.apply(x)
        return self.model.predict_proba(x).mean(axis=0), sum(len(e) for e in embeddings)

    def predict_file(self, path: Path, top_k: int | None = None) -> Prediction:
        """Predict one file, streamed clip by clip; whatever fails gives a Prediction with
        `error` (an AudioError's status and reason, or the exception's type and message)."""
        path = Path(path)
        rate = self.extractor.sample_rate
        samples, peak = 0, 0.0

        def measured(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
            nonlocal samples, peak
            for block in blocks:
                samples += block.size
                peak = max(peak, float(np.max(np.abs(block))))
                yield block

        try:
            probabilities, n_clips = self._predict_blocks(measured(stream_audio(path, rate)),
                                                          path)
        except AudioError as error:
            return Prediction(path=path, error=f"{error.status}: {error.reason}")
        except MemoryError:
            return Prediction(path=path, error="failed: out of memory")
        except Exception as error:  # one input's failure must not end the others' run
            return Prediction(path=path, error=f"failed: {type(error).__name__}: {error}")
        warnings = []
        if peak < SILENCE_PEAK:
            warnings.append(f"near-silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
        if samples < self.clip_samples / 2:
            warnings.append(f"short ({samples / rate:.2f} s, under half the "
                            f"{self.clip_samples / rate:g} s clip)")
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return Prediction(
            path=path,
            genres=tuple((self.class_names[i], float(probabilities[i])) for i in order),
            n_clips=n_clips,
            duration_s=samples / rate,
            warning="; ".join(warnings) or None,
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
                 variant: str = "larger_general", batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.extractor = extractors.load("clap", weights=weights, variant=variant)
        self.model = ZeroShotClassifier(self.extractor, genres)
        self.info = None
        self.domain_map = None
        self.genres = list(genres)
        self.clip_samples = self.extractor.window_samples
        self.batch_size = batch_size

    @property
    def class_names(self) -> list[str]:
        return self.genres

    def features(self, clips: np.ndarray) -> np.ndarray:
        """CLAP's audio embeddings: the text prompts are matched against its output."""
        return self.extractor.embed(clips)


def _expand(paths: Iterable[Path]) -> Iterator[Path | Prediction]:
    """Files to predict, de-duplicated; an input or subfolder that cannot be searched, and a
    folder without audio files, each become an error Prediction."""
    seen: set[Path] = set()
    for path in map(Path, paths):
        try:
            files, failures = _walk_audio_files(path)
        except (OSError, RuntimeError) as error:
            yield Prediction(path=path, error=f"unreadable: {_reason(error)}")
            continue
        for failure in failures:
            yield Prediction(path=Path(failure.filename or path),
                             error=f"unreadable folder: {_reason(failure)}")
        if not files and not failures:
            yield Prediction(path=path, error=f"no audio files found (looked for "
                                              f"{', '.join(AUDIO_EXTENSIONS)})")
        for file in files:
            try:
                key = file.resolve()
            except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
                yield Prediction(path=file, error=f"unreadable: {_reason(error)}")
                continue
            if key not in seen:
                seen.add(key)
                yield file


def _reason(error: BaseException) -> str:
    """An OSError's strerror (its path is the row's already), or the exception's text."""
    return getattr(error, "strerror", None) or f"{type(error).__name__}: {error}"


def predict_files(paths: Sequence[Path | str], model_dir: Path | str, top_k: int | None = 3,
                  batch_size: int = 8, progress: bool | None = None) -> list[Prediction]:
    """Genre predictions for audio files and folders with the bundle in `model_dir`.

    `top_k=None` keeps every class (their probabilities then sum to 1 for each file).
    """
    predictor = GenrePredictor(Path(model_dir), batch_size=batch_size)
    return predictor.predict_paths([Path(p) for p in paths], top_k=top_k, progress=progress)
