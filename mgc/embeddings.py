"""Embeddings on disk: the Parquet format, and the streaming extraction loop that writes it.

One Parquet file per dataset and extractor: columns `track_id` (string) and `embedding`
(fixed_size_list<float32>[dim]); the schema metadata holds, as JSON under the key `mgc`,
everything that produced the vectors (model, variant, weights and their sha256, sample rate,
pooling, clip policy, mgc version), so a file can always be traced back to its configuration.
An extractor with `layers: all` adds one column `layer.<name>` (fixed_size_list<float32>
[dim]) per layer before its last, whose vectors stay in `embedding`; the metadata's
`layers` lists every layer's name and dim in depth order.

Extraction streams: at most a few batches of audio are alive at once, and every
`rows_per_group` tracks are written to their own small Parquet part as soon as they are
embedded. A run that is killed keeps its complete parts; the next run with the same
configuration skips those tracks, and the final file (parts joined in order, in row groups
of a fixed size, written atomically) is identical to an uninterrupted run's.

Batches are windows of the whole sorted track list (`batch_size` positions each), not runs
of whatever clips come next: a model's floats depend on the batch a clip shares (BLAS and
oneDNN pick kernels by shape; measured up to 2e-6 for mfcc, 7e-9 for vggish), so a file
is byte for byte the same only if every clip meets the same neighbours. Windows make that
hold whoever embeds them (this process or a Ray worker, `Engine`), wherever a resumed run
starts (a window that a killed run left half done is embedded whole again and its done rows
dropped), and whatever fails to decode (a failure shrinks its own window, never shifts the
next).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from mgc.atomic import atomic_path, write_parquet
from mgc.audio import AudioError, fit_length, load_audio, prepare_for_threads
from mgc.layers import LAST, WEIGHTED, select_layer

if TYPE_CHECKING:
    from mgc.extractors import Extractor

METADATA_KEY = b"mgc"
EMBEDDING = "embedding"
LAYER_PREFIX = "layer."


def layer_column(layers: list[dict[str, Any]], name: str) -> str:
    """The column of layer `name` among the metadata's `layers`: the last is `embedding`."""
    return EMBEDDING if name == layers[-1]["name"] else LAYER_PREFIX + name


def embedding_schema(dim: int, metadata: dict[str, Any]) -> pa.Schema:
    """The Parquet schema for `dim`-dimensional embeddings with `metadata` attached, with a
    column per layer before the last where the metadata lists `layers`."""
    layers = metadata.get("layers") or [{"name": EMBEDDING, "dim": dim}]
    if layers[-1]["dim"] != dim:
        raise ValueError(f"the last layer {layers[-1]['name']!r} is {layers[-1]['dim']}-d, "
                         f"the embeddings {dim}-d")
    return pa.schema(
        [pa.field("track_id", pa.string()),
         *(pa.field(LAYER_PREFIX + layer["name"], pa.list_(pa.float32(), layer["dim"]))
           for layer in layers[:-1]),
         pa.field(EMBEDDING, pa.list_(pa.float32(), dim))],
        metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()},
    )


def embedding_batch(track_ids: list[str], vectors: np.ndarray, schema: pa.Schema,
                    layers: dict[str, np.ndarray] | None = None) -> pa.RecordBatch:
    """One row group's worth of rows, validated against `schema`; `layers` holds the
    vectors of the `layer.<name>` columns by column name."""
    columns = {EMBEDDING: vectors, **(layers or {})}
    arrays = [pa.array(track_ids, type=pa.string())]
    for field_ in list(schema)[1:]:
        dim = field_.type.list_size
        if field_.name not in columns:
            raise ValueError(f"no vectors for column {field_.name!r}")
        values = np.ascontiguousarray(columns[field_.name], dtype=np.float32)
        if values.shape != (len(track_ids), dim):
            raise ValueError(f"expected {field_.name}s of shape ({len(track_ids)}, {dim}), "
                             f"got {values.shape}")
        flat = pa.array(values.reshape(-1), type=pa.float32())
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, dim))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def read_metadata(path: Path) -> dict[str, Any]:
    """The `mgc` metadata of an embedding file."""
    schema = pq.read_schema(path)
    return json.loads(schema.metadata[METADATA_KEY])


def _matrix(table: pa.Table, column: str) -> np.ndarray:
    dim = table.schema.field(column).type.list_size
    flat = table.column(column).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, dim)


def read_embeddings(path: Path, layer: str = LAST) -> tuple[list[str], np.ndarray,
                                                            dict[str, Any]]:
    """Return (track ids, float32 matrix (n, dim), metadata) of an embedding file.

    `layer` is `last` (the `embedding` column), a layer's name, or `weighted`: every
    layer side by side in depth order (`select_layer`). Anything but `last` needs a file
    extracted with `layers: all`; the error says so.
    """
    metadata = read_metadata(path)
    layers = metadata.get("layers")
    if layer == LAST:
        table = pq.read_table(path, columns=["track_id", EMBEDDING])
        return table.column("track_id").to_pylist(), _matrix(table, EMBEDDING), metadata
    model = metadata.get("model", "<model>")
    if not layers:
        raise ValueError(f"{path} holds the last layer of {model} only, and layer {layer!r} "
                         f"was asked for: set embed.{model}.layers: all to extract every layer")
    names = [entry["name"] for entry in layers]
    if layer not in (*names, WEIGHTED):
        raise ValueError(f"{path}: layer {layer!r} is not a layer of {model}; its layers: "
                         f"{', '.join(names)} (or {LAST}, {WEIGHTED})")
    wanted = names if layer == WEIGHTED else [layer]
    table = pq.read_table(path, columns=["track_id", *(layer_column(layers, name)
                                                      for name in wanted)])
    outputs = {name: _matrix(table, layer_column(layers, name)) for name in wanted}
    return table.column("track_id").to_pylist(), select_layer(outputs, layer), metadata


CLIP_POLICIES = ("full", "first_10s")
ROW_GROUP_ROWS = 256


@dataclass
class ExtractionReport:
    """What an extraction run did: counts, and every track it had to skip with the reason."""

    n_embedded: int = 0
    n_resumed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


def clip_samples(policy: str, nominal_clip_seconds: float, sample_rate: int) -> int:
    """Length every clip is cropped or padded to, so clips batch together.

    `full` keeps the dataset's nominal clip length (30 s for GTZAN and FMA); `first_10s` is
    what the authors fed BYOL-A on GTZAN.
    """
    if policy == "full":
        return round(nominal_clip_seconds * sample_rate)
    if policy == "first_10s":
        return 10 * sample_rate
    raise ValueError(f"clip policy {policy!r}: allowed values are {', '.join(CLIP_POLICIES)}")


def _parts_dir(out_path: Path) -> Path:
    """Where a run's complete parts wait: beside `out_path` (same filesystem) under a `.tmp`
    name, which .gitignore and .dvcignore exclude (`.*.tmp`), so parts left by a killed run
    never enter the hash of the folder a training stage depends on."""
    return out_path.with_name(f".{out_path.name}.parts.tmp")


def _resumable_parts(parts_dir: Path, metadata: dict[str, Any],
                     tracks: pd.DataFrame) -> list[Path]:
    """Complete parts written by an earlier run with the same configuration and track
    list, in order; a re-indexed corpus (tracks added, dropped or moved) starts afresh."""
    signature = parts_dir / "config.json"
    listing = "\n".join(f"{track_id}\t{path}" for track_id, path
                        in zip(tracks["track_id"], tracks["path"], strict=True))
    wanted = json.dumps({"metadata": metadata,
                         "tracks": hashlib.sha256(listing.encode()).hexdigest()}, sort_keys=True)
    if parts_dir.exists() and (not signature.exists() or signature.read_text() != wanted):
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    signature.write_text(wanted)
    return sorted(parts_dir.glob("part-*.parquet"))


def decode_batches(paths: list[Path], track_ids: list[str], sample_rate: int, n_samples: int,
                    batch_size: int, workers: int, windows: Sequence[int] | None = None,
                    ) -> Iterator[tuple[list[str], np.ndarray, dict[str, str]]]:
    """Yield (ids, waveforms, skipped) batches, decoding ahead in a thread pool.

    A batch is the clips of one window that decode: `windows` gives each clip's window
    (non-decreasing; default: consecutive runs of `batch_size`), so a clip that fails
    leaves its window one short instead of shifting every later batch (module docstring).
    Decoding and resampling release the GIL in libsndfile and soxr, so they overlap with
    the model's forward pass on the main thread. One batch is decoded ahead, enough to keep
    the model fed: `Executor.map` would submit the whole corpus at once, and a decoder faster
    than the model would then hold every clip in memory. While a batch is embedded, the
    clips alive are that batch's stacked array and the next batch's: each decoded clip is
    dropped as soon as it is stacked (at CLAP's 48 kHz a 30 s clip is 5.8 MB, so a second
    batch ahead and a second copy of the current one held 46 MB at batch 4).
    """
    window_of = list(windows) if windows is not None else [
        index // batch_size for index in range(len(paths))]

    def decode(index: int) -> tuple[str, np.ndarray | None, str]:
        try:
            return track_ids[index], fit_length(load_audio(
                paths[index], sample_rate, max_samples=n_samples), n_samples), ""
        except AudioError as error:
            return track_ids[index], None, f"{error.status}: {error.reason}"

    def in_order(pool: ThreadPoolExecutor) -> Iterator[tuple[str, np.ndarray | None, str]]:
        ahead: deque[Future[tuple[str, np.ndarray | None, str]]] = deque()
        for index in range(len(paths)):
            ahead.append(pool.submit(decode, index))
            if len(ahead) > batch_size:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()

    def batch(ids: list[str], waves: list[np.ndarray], skipped: dict[str, str],
              ) -> tuple[list[str], np.ndarray, dict[str, str]]:
        return ids, (np.stack(waves) if waves else np.empty((0, n_samples), np.float32)), skipped

    prepare_for_threads()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        ids, waves, skipped = [], [], {}
        for index, (track_id, wave, reason) in enumerate(in_order(pool)):
            if index and window_of[index] != window_of[index - 1]:
                stacked = batch(ids, waves, skipped)
                ids, waves, skipped = [], [], {}
                yield stacked
            if wave is None:
                skipped[track_id] = reason
            else:
                ids.append(track_id)
                waves.append(wave)
        if ids or skipped:
            yield batch(ids, waves, skipped)


@dataclass(frozen=True)
class ClipPlan:
    """The clips a run still has to embed, in track order, and the batch window of each.

    `windows[i]` is clip i's position in the whole sorted track list divided by
    `batch_size`: clips of one window form one batch, whoever embeds them.
    """

    track_ids: list[str]
    paths: list[Path]
    windows: list[int]
    sample_rate: int
    n_samples: int
    batch_size: int

    def __len__(self) -> int:
        return len(self.track_ids)


EmbeddedBatch = tuple[list[str], dict[str, np.ndarray], dict[str, str]]
"""One batch's result: its track ids, their vectors by Parquet column, and the tracks of its
window that could not be decoded, with the reason."""


class Engine(Protocol):
    """What embeds a run's clips: batches in plan order, each the decodable clips of one
    window. `LocalEngine` runs in this process; `mgc.engines.ray` on a Ray cluster."""

    def embed(self, extractor: Extractor, plan: ClipPlan) -> Iterator[EmbeddedBatch]:
        """Every window of `plan` embedded, in order."""
        ...


@dataclass(frozen=True)
class LocalEngine:
    """This process: decode in a thread pool of `decode_workers`, embed on this thread."""

    decode_workers: int = 2

    def embed(self, extractor: Extractor, plan: ClipPlan) -> Iterator[EmbeddedBatch]:
        for ids, waves, skipped in decode_batches(plan.paths, plan.track_ids,
                                                  plan.sample_rate, plan.n_samples,
                                                  plan.batch_size, self.decode_workers,
                                                  plan.windows):
            yield ids, (_columns(extractor, waves) if ids else {}), skipped


def extract_embeddings(tracks: pd.DataFrame, audio_root: Path, extractor: Extractor,
                       out_path: Path,
                       *, n_samples: int, metadata: dict[str, Any], batch_size: int = 8,
                       rows_per_group: int = 64, decode_workers: int = 2,
                       engine: Engine | None = None, progress: bool = True,
                       ) -> ExtractionReport:
    """Embed every track of `tracks` (columns track_id, and path relative to `audio_root`)
    into the Parquet file `out_path`.

    Each clip is decoded at the extractor's rate, cropped or padded to `n_samples`, and
    embedded in batches of `batch_size` by `engine` (default: a `LocalEngine` with
    `decode_workers` decoding threads). `metadata` goes into the file's schema; a resumed
    run only reuses parts written with identical metadata.
    """
    if batch_size < 1 or rows_per_group < 1:
        raise ValueError("batch_size and rows_per_group must be positive")
    engine = engine or LocalEngine(decode_workers)
    tracks = tracks.sort_values("track_id", kind="stable").reset_index(drop=True)
    if extractor.layers and "layers" not in metadata:
        metadata = {**metadata, "layers": extractor.describe()["layers"]}
    schema = embedding_schema(extractor.dim, metadata)
    parts_dir = _parts_dir(out_path)
    parts = _resumable_parts(parts_dir, metadata, tracks)
    done = set()
    for part in parts:
        done.update(pq.read_table(part, columns=["track_id"]).column("track_id").to_pylist())
    window = tracks.index // batch_size
    todo = tracks[window.isin(window[~tracks["track_id"].isin(done)])]
    report = ExtractionReport(n_resumed=len(done))

    pending_ids: list[str] = []
    pending_vectors: list[dict[str, np.ndarray]] = []

    def flush() -> None:
        if not pending_ids:
            return
        columns = {name: np.concatenate([vectors[name] for vectors in pending_vectors])
                   for name in pending_vectors[0]}
        batch = embedding_batch(pending_ids, columns.pop(EMBEDDING), schema, columns)
        part_path = parts_dir / f"part-{len(parts):06d}.parquet"
        write_parquet(part_path, pa.Table.from_batches([batch]))
        parts.append(part_path)
        pending_ids.clear()
        pending_vectors.clear()

    plan = ClipPlan(list(todo["track_id"]), [audio_root / p for p in todo["path"]],
                    list(window[todo.index]), extractor.sample_rate, n_samples, batch_size)
    with tqdm(total=len(tracks), initial=len(done), desc=f"extract {extractor.name}",
              unit="clip", disable=not progress) as bar:
        for ids, vectors, skipped in engine.embed(extractor, plan):
            report.skipped.update(skipped)
            new = [row for row, track_id in enumerate(ids) if track_id not in done]
            if len(new) < len(ids):
                ids = [ids[row] for row in new]
                vectors = {name: values[new] for name, values in vectors.items()}
            position = 0
            while position < len(ids):
                room = rows_per_group - len(pending_ids)
                pending_ids.extend(ids[position:position + room])
                pending_vectors.append({name: values[position:position + room]
                                        for name, values in vectors.items()})
                position += room
                if len(pending_ids) == rows_per_group:
                    flush()
            report.n_embedded += len(ids)
            bar.update(len(ids) + len(skipped))
    flush()

    _join_parts(parts, out_path, schema, list(tracks["track_id"]))
    shutil.rmtree(parts_dir)
    return report


def _columns(extractor: Extractor, waves: np.ndarray) -> dict[str, np.ndarray]:
    """One batch's vectors by Parquet column: `embedding`, and with `layers: all` every
    earlier layer's `layer.<name>`, all from one forward pass."""
    if not extractor.layers:
        return {EMBEDDING: extractor.embed(waves)}
    outputs = extractor.embed_layers(waves)
    layers = [{"name": layer.name} for layer in extractor.layers]
    return {layer_column(layers, name): vectors for name, vectors in outputs.items()}


def _join_parts(parts: list[Path], out_path: Path, schema: pa.Schema,
                track_order: list[str]) -> None:
    """Write the parts into `out_path` in track order, in row groups of `ROW_GROUP_ROWS`.

    Tracks are embedded in track order and a resumed run continues after its last complete
    part, so the parts are normally in order already and stream through one at a time;
    row groups of a fixed size make the file's bytes independent of where the parts broke.
    A track that failed to decode before an interruption and decodes on the retry lands in
    a later part; then, and only then, all parts are loaded and sorted.
    """
    rank = {track_id: position for position, track_id in enumerate(track_order)}
    ranks = [rank[track_id] for part in parts
             for track_id in pq.read_table(part, columns=["track_id"])
             .column("track_id").to_pylist()]

    def tables() -> Iterator[pa.Table]:
        if ranks == sorted(ranks):
            yield from (pq.read_table(part) for part in parts)
        else:
            yield pa.concat_tables([pq.read_table(part) for part in parts]).take(
                np.argsort(ranks, kind="stable"))

    with atomic_path(out_path) as temp, pq.ParquetWriter(temp, schema) as writer:
        pending = schema.empty_table()
        for table in tables():
            pending = pa.concat_tables([pending, table.replace_schema_metadata(
                schema.metadata).cast(schema)])
            while pending.num_rows >= ROW_GROUP_ROWS:
                writer.write_table(pending.slice(0, ROW_GROUP_ROWS).combine_chunks())
                pending = pending.slice(ROW_GROUP_ROWS)
        if pending.num_rows:
            writer.write_table(pending.combine_chunks())
