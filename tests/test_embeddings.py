"""mgc.embeddings: the Parquet format (schema, metadata, row groups) round-trips exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mgc.embeddings import embedding_batch, embedding_schema, read_embeddings, read_metadata

METADATA = {"model": "mfcc", "dim": 6, "sample_rate": 22050, "pooling": "mean",
            "clip": "full", "weights_sha256": None, "mgc_version": "0.1.0"}


def _write(path: Path, groups: list[tuple[list[str], np.ndarray]], dim: int) -> None:
    schema = embedding_schema(dim, METADATA)
    with pq.ParquetWriter(path, schema) as writer:
        for ids, vectors in groups:
            writer.write_batch(embedding_batch(ids, vectors, schema))


def test_round_trip_over_several_row_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((10, 6)).astype(np.float32)
    ids = [f"{i:06d}" for i in range(10)]
    path = tmp_path / "emb.parquet"
    _write(path, [(ids[:4], vectors[:4]), (ids[4:9], vectors[4:9]), (ids[9:], vectors[9:])], 6)
    assert pq.ParquetFile(path).num_row_groups == 3
    read_ids, read_vectors, metadata = read_embeddings(path)
    assert read_ids == ids
    assert read_vectors.dtype == np.float32 and read_vectors.shape == (10, 6)
    np.testing.assert_array_equal(read_vectors, vectors)
    assert metadata == METADATA
    assert read_metadata(path) == METADATA


def test_schema_types_are_the_documented_format() -> None:
    schema = embedding_schema(128, METADATA)
    assert schema.field("track_id").type == pa.string()
    assert schema.field("embedding").type == pa.list_(pa.float32(), 128)


def test_float64_vectors_are_stored_as_float32(tmp_path: Path) -> None:
    vectors = np.linspace(0, 1, 12, dtype=np.float64).reshape(2, 6)
    path = tmp_path / "emb.parquet"
    _write(path, [(["a", "b"], vectors)], 6)
    _, read_vectors, _ = read_embeddings(path)
    np.testing.assert_array_equal(read_vectors, vectors.astype(np.float32))


@pytest.mark.parametrize("shape", [(3, 5), (2, 6), (3,), (3, 6, 1)])
def test_batch_shape_is_validated(shape: tuple[int, ...]) -> None:
    schema = embedding_schema(6, METADATA)
    with pytest.raises(ValueError, match=r"expected embeddings of shape \(3, 6\)"):
        embedding_batch(["a", "b", "c"], np.zeros(shape, np.float32), schema)


def test_empty_file_reads_as_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(embedding_schema(6, METADATA).empty_table(), path)
    ids, vectors, metadata = read_embeddings(path)
    assert ids == [] and vectors.shape == (0, 6) and metadata["model"] == "mfcc"
