"""The embedding file format: one Parquet file per dataset and extractor.

Columns `track_id` (string) and `embedding` (fixed_size_list<float32>[dim]); the schema
metadata holds, as JSON under the key `mgc`, everything that produced the vectors (model,
variant, weights and their sha256, sample rate, pooling, clip policy, mgc version), so a
file can always be traced back to its configuration. Rows are written in row groups, so
extraction streams and an interrupted run can resume after the last complete group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"mgc"


def embedding_schema(dim: int, metadata: dict[str, Any]) -> pa.Schema:
    """The Parquet schema for `dim`-dimensional embeddings with `metadata` attached."""
    return pa.schema(
        [pa.field("track_id", pa.string()),
         pa.field("embedding", pa.list_(pa.float32(), dim))],
        metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()},
    )


def embedding_batch(track_ids: list[str], vectors: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    """One row group's worth of rows, validated against `schema`."""
    dim = schema.field("embedding").type.list_size
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape != (len(track_ids), dim):
        raise ValueError(f"expected embeddings of shape ({len(track_ids)}, {dim}), "
                         f"got {vectors.shape}")
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return pa.RecordBatch.from_arrays(
        [pa.array(track_ids, type=pa.string()), pa.FixedSizeListArray.from_arrays(flat, dim)],
        schema=schema,
    )


def read_metadata(path: Path) -> dict[str, Any]:
    """The `mgc` metadata of an embedding file."""
    schema = pq.read_schema(path)
    return json.loads(schema.metadata[METADATA_KEY])


def read_embeddings(path: Path) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Return (track ids, float32 matrix (n, dim), metadata) of an embedding file."""
    table = pq.read_table(path)
    dim = table.schema.field("embedding").type.list_size
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = flat.astype(np.float32, copy=False).reshape(-1, dim)
    metadata = json.loads(table.schema.metadata[METADATA_KEY])
    return table.column("track_id").to_pylist(), vectors, metadata

