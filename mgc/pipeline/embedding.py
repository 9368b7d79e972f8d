"""The embedding stages: fit each extractor on the training split, then extract every dataset.

Fitting is generic (`Extractor.fit`): a model with nothing to learn writes a constant record,
so its extractions, which depend on that record, stay cached when `data.protocol` changes
the split; one that learns (BYOL-A's `normalisation: train`) fits once on the training
tracks of every dataset, so joint models and `mgc predict` see one consistent input scale.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mgc import __version__, extractors
from mgc.config import ConfigError
from mgc.datasets import usable_tracks
from mgc.embeddings import ExtractionReport, clip_samples, decode_batches, extract_embeddings
from mgc.extractors import Extractor
from mgc.pipeline.corpus import source_dataset
from mgc.pipeline.fitted import extractor_options, write_fitted
from mgc.pipeline.layout import Layout
from mgc.ray_extraction import RayEngine
from mgc.split_roles import training_tracks

if TYPE_CHECKING:
    from mgc.pipeline.params import Params


def load_extractor(model: str, options: dict[str, Any]) -> Extractor:
    """Extractor `model` with `options`; a bad option names its `embed.` key."""
    try:
        return extractors.load(model, **options)
    except ConfigError as error:
        raise error.within("embed") from None


def _training_clips(params: Params, model: str, extractor: Extractor,
                    layout: Layout) -> tuple[Iterator[np.ndarray], int]:
    """Batches of every dataset's training clips at the extractor's rate, and their count."""
    sources, n_tracks = [], 0
    for name in params.data.datasets:
        tracks = usable_tracks(pd.read_parquet(layout.tracks(name)))
        split = pd.read_parquet(layout.split(name))
        train = tracks[tracks["track_id"].isin(
            split.loc[training_tracks(split["split"]), "track_id"])]
        dataset = source_dataset(params, name)
        n_samples = clip_samples(params.embed[model].clip, dataset.nominal_clip_seconds,
                                 extractor.sample_rate)
        root = dataset.audio_root(layout.raw(name))
        sources.append(decode_batches([root / p for p in train["path"]],
                                      list(train["track_id"]), extractor.sample_rate,
                                      n_samples, batch_size=8, workers=2))
        n_tracks += len(train)
    batches = (waves for source in sources for _, waves, _ in source if len(waves))
    return batches, n_tracks


def fit_extractor(params: Params, model: str, layout: Layout) -> dict[str, Any]:
    """Fit `model` on the training split where it needs to; write and return the record."""
    extractor = load_extractor(model, params.embed[model].options)
    if not extractor.needs_fit:
        return write_fitted(layout, model, {})
    batches, n_tracks = _training_clips(params, model, extractor, layout)
    return write_fitted(layout, model, extractor.fit(batches), n_tracks=n_tracks)


def extract_dataset(params: Params, dataset: str, model: str,
                    layout: Layout) -> ExtractionReport:
    """Embed every usable track of `dataset` with `model` into its Parquet file, here or
    on Ray (`embed.engine`): the same bytes either way."""
    settings = params.embed[model]
    source = source_dataset(params, dataset)
    tracks = usable_tracks(pd.read_parquet(layout.tracks(dataset)))
    options = extractor_options(params, model, layout)
    extractor = load_extractor(model, options)
    engine = (RayEngine(params.embed.ray, functools.partial(extractors.load, model, **options))
              if params.embed.engine == "ray" else None)
    n_samples = clip_samples(settings.clip, source.nominal_clip_seconds, extractor.sample_rate)
    metadata = {**extractor.describe(), "clip": settings.clip, "clip_samples": n_samples,
                "dataset": dataset, "source": params.data.source(dataset),
                "mgc_version": __version__}
    return extract_embeddings(tracks, source.audio_root(layout.raw(dataset)), extractor,
                              layout.embeddings(model, dataset), n_samples=n_samples,
                              metadata=metadata, batch_size=settings.batch_size,
                              engine=engine)
