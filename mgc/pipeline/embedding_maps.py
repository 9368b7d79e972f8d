"""The map stage: one scatter-plot table per extractor and dataset, every usable track's
embedding mapped to 2-D (`mgc.embedding_map`) with its genre, split and id, for DVC's
scatter plot coloured by genre (`.dvc/plots/scatter_genre.json`)."""

from __future__ import annotations

import pandas as pd

from mgc.atomic import write_csv
from mgc.embedding_map import embedding_map
from mgc.embeddings import read_embeddings
from mgc.evaluate import align
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import Params


def write_embedding_maps(params: Params, model: str, layout: Layout) -> dict[str, int]:
    """`plots/embedding_map/<model>/<dataset>.csv` (x, y, genre, split, track_id) for every
    dataset of the run; returns the points per dataset. Every split is mapped, not only the
    test tracks: a few dozen test tracks are too few for t-SNE to show structure, no label is
    used to draw the map, and the `split` column picks the test tracks out."""
    points = {}
    for dataset in params.data.datasets:
        ids, vectors, _ = read_embeddings(layout.embeddings(model, dataset))
        split = pd.read_parquet(layout.split(dataset)).assign(dataset=dataset)
        tracks = align(split, {dataset: (ids, vectors)})
        xy = embedding_map(tracks.x)
        write_csv(layout.embedding_map(model, dataset), pd.DataFrame({
            "x": xy[:, 0].round(4), "y": xy[:, 1].round(4), "genre": tracks.label,
            "split": tracks.split, "track_id": tracks.track_id}))
        points[dataset] = len(tracks.x)
    return points
