"""mgc.embeddings: streaming extraction on the tiny corpus, in track order, resumable after
a crash."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mgc import embeddings as extract_module
from mgc import extractors
from mgc.audio import fit_length, load_audio
from mgc.embeddings import clip_samples, extract_embeddings, read_embeddings

BATCH = 4
GROUP = 6


class Crash(RuntimeError):
    """Stands in for a SIGKILL or an out-of-memory error in the middle of a run."""


@pytest.fixture(scope="module")
def mfcc() -> extractors.Extractor:
    return extractors.load("mfcc", weights="none")


def _metadata(extractor: extractors.Extractor, **extra: object) -> dict[str, object]:
    return {**extractor.describe(), "clip": "full", **extra}


def _run(corpus, extractor, out_path: Path, metadata: dict[str, object],
         tracks: pd.DataFrame | None = None, rows_per_group: int = GROUP):
    n_samples = clip_samples("full", corpus.dataset.nominal_clip_seconds, extractor.sample_rate)
    return extract_embeddings(corpus.tracks if tracks is None else tracks, corpus.raw_dir,
                              extractor, out_path, n_samples=n_samples, metadata=metadata,
                              batch_size=BATCH, rows_per_group=rows_per_group, progress=False)


def _crash_after(monkeypatch: pytest.MonkeyPatch, extractor: extractors.Extractor,
                 n_batches: int) -> None:
    real_embed = extractor.embed
    calls = {"n": 0}

    def embed(waveforms: np.ndarray) -> np.ndarray:
        if calls["n"] == n_batches:
            raise Crash(f"killed after {n_batches} batches")
        calls["n"] += 1
        return real_embed(waveforms)

    monkeypatch.setattr(extractor, "embed", embed)


@pytest.fixture(scope="module")
def uninterrupted(synth_gtzan, mfcc, tmp_path_factory: pytest.TempPathFactory):
    """One clean run over the whole track table (corrupt jazz file included)."""
    out_path = tmp_path_factory.mktemp("clean") / "mfcc.parquet"
    report = _run(synth_gtzan, mfcc, out_path, _metadata(mfcc))
    return out_path, report


def test_every_usable_track_is_embedded_in_track_order(synth_gtzan, mfcc, uninterrupted) -> None:
    out_path, report = uninterrupted
    ids, vectors, metadata = read_embeddings(out_path)
    usable = synth_gtzan.tracks[synth_gtzan.tracks["status"].isin(["ok", "short"])]
    assert ids == sorted(usable["track_id"])
    assert vectors.shape == (len(ids), mfcc.dim)
    assert np.isfinite(vectors).all()
    assert metadata == _metadata(mfcc)
    assert report.n_embedded == len(ids) and report.n_resumed == 0
    assert not out_path.with_name(f".{out_path.name}.parts.tmp").exists()


def test_each_row_holds_its_own_tracks_embedding(synth_gtzan, mfcc, uninterrupted) -> None:
    ids, vectors, _ = read_embeddings(uninterrupted[0])
    paths = dict(zip(synth_gtzan.tracks["track_id"], synth_gtzan.tracks["path"],
                     strict=True))
    n_samples = clip_samples("full", synth_gtzan.dataset.nominal_clip_seconds, mfcc.sample_rate)
    for row in (0, 7, len(ids) - 1):
        wave = fit_length(load_audio(synth_gtzan.raw_dir / paths[ids[row]], mfcc.sample_rate),
                          n_samples)
        np.testing.assert_allclose(vectors[row], mfcc.embed(wave[None])[0], rtol=1e-5, atol=1e-5)


def test_unreadable_files_are_skipped_and_reported(synth_gtzan, mfcc, uninterrupted,
                                                   tmp_path: Path) -> None:
    _, report = uninterrupted
    corrupt = synth_gtzan.tracks.loc[synth_gtzan.tracks["status"] == "unreadable", "track_id"]
    assert set(report.skipped) == set(corrupt) and len(corrupt) == 1
    assert report.skipped[corrupt.iloc[0]].startswith("unreadable")

    garbage = tmp_path / "rotten.au"
    garbage.write_bytes(b".snd" + bytes(20))
    tracks = synth_gtzan.tracks[synth_gtzan.tracks["status"] == "ok"].head(5).copy()
    tracks.loc[tracks.index[2], "path"] = str(garbage)
    rotten_id = tracks["track_id"].iloc[2]
    out_path = tmp_path / "mfcc.parquet"
    report = _run(synth_gtzan, mfcc, out_path, _metadata(mfcc), tracks=tracks)
    ids, _, _ = read_embeddings(out_path)
    assert list(report.skipped) == [rotten_id]
    assert rotten_id not in ids and len(ids) == 4
    assert report.n_embedded == 4


def test_input_row_order_does_not_matter(synth_gtzan, mfcc, uninterrupted, tmp_path: Path) -> None:
    shuffled = synth_gtzan.tracks.sample(frac=1.0, random_state=7)
    out_path = tmp_path / "mfcc.parquet"
    _run(synth_gtzan, mfcc, out_path, _metadata(mfcc), tracks=shuffled)
    assert out_path.read_bytes() == uninterrupted[0].read_bytes()


@pytest.mark.parametrize("resume_group", [GROUP, 5])
def test_resume_after_crash_matches_uninterrupted_run(synth_gtzan, mfcc, uninterrupted,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      resume_group: int) -> None:
    out_path = tmp_path / "mfcc.parquet"
    with monkeypatch.context() as patch:
        _crash_after(patch, mfcc, n_batches=5)
        with pytest.raises(Crash):
            _run(synth_gtzan, mfcc, out_path, _metadata(mfcc))
    assert not out_path.exists()
    parts = sorted(out_path.with_name(f".{out_path.name}.parts.tmp").glob("part-*.parquet"))
    # 5 batches of 4 = 20 rows reached the writer; only the 3 full groups of 6 were flushed.
    assert [pq.read_metadata(p).num_rows for p in parts] == [GROUP] * 3

    report = _run(synth_gtzan, mfcc, out_path, _metadata(mfcc), rows_per_group=resume_group)
    assert report.n_resumed == 3 * GROUP
    clean_ids, _, _ = read_embeddings(uninterrupted[0])
    assert report.n_resumed + report.n_embedded == len(clean_ids)
    ids, _, _ = read_embeddings(out_path)
    assert len(ids) == len(set(ids)) and ids == clean_ids
    assert out_path.read_bytes() == uninterrupted[0].read_bytes()


def test_changed_configuration_discards_old_parts(synth_gtzan, mfcc, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out_path = tmp_path / "mfcc.parquet"
    tracks = synth_gtzan.tracks.head(20)
    with monkeypatch.context() as patch:
        _crash_after(patch, mfcc, n_batches=3)
        with pytest.raises(Crash):
            _run(synth_gtzan, mfcc, out_path, _metadata(mfcc, pooling="mean"), tracks=tracks)
    assert list(out_path.with_name(f".{out_path.name}.parts.tmp").glob("part-*.parquet"))

    report = _run(synth_gtzan, mfcc, out_path, _metadata(mfcc, pooling="mean+max"),
                  tracks=tracks)
    assert report.n_resumed == 0
    assert report.n_embedded == len(tracks[tracks["status"] == "ok"])
    _, _, metadata = read_embeddings(out_path)
    assert metadata["pooling"] == "mean+max"


def test_changed_track_list_does_not_reuse_stale_parts(synth_gtzan, mfcc, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash, then a re-indexed corpus that lost a track: resume must not trip over it."""
    out_path, clean_path = tmp_path / "mfcc.parquet", tmp_path / "clean.parquet"
    before = synth_gtzan.tracks.head(20)
    after = before[before["track_id"] != "blues.00001"]
    with monkeypatch.context() as patch:
        _crash_after(patch, mfcc, n_batches=3)
        with pytest.raises(Crash):
            _run(synth_gtzan, mfcc, out_path, _metadata(mfcc), tracks=before)
    _run(synth_gtzan, mfcc, out_path, _metadata(mfcc), tracks=after)
    _run(synth_gtzan, mfcc, clean_path, _metadata(mfcc), tracks=after)
    assert read_embeddings(out_path)[0] == list(after["track_id"])
    assert out_path.read_bytes() == clean_path.read_bytes()


def test_decoding_runs_one_batch_ahead(synth_gtzan, mfcc, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat: a slow model must not let the decoder load the whole corpus, nor
    more than the next batch and the first clip of the one after it."""
    decoded: list[str] = []
    at_first_embed: list[int] = []
    real_load, real_embed = extract_module.load_audio, mfcc.embed

    def counting_load(path: Path, sample_rate_hz: int, **options: int) -> np.ndarray:
        decoded.append(str(path))
        return real_load(path, sample_rate_hz, **options)

    def slow_embed(waveforms: np.ndarray) -> np.ndarray:
        if not at_first_embed:
            time.sleep(0.5)
            at_first_embed.append(len(decoded))
        return real_embed(waveforms)

    monkeypatch.setattr(extract_module, "load_audio", counting_load)
    monkeypatch.setattr(mfcc, "embed", slow_embed)
    _run(synth_gtzan, mfcc, tmp_path / "mfcc.parquet", _metadata(mfcc))
    assert len(decoded) == len(synth_gtzan.tracks)
    assert at_first_embed[0] <= 2 * BATCH + 1


def test_clip_policies() -> None:
    assert clip_samples("full", 30.0, 16000) == 480000
    assert clip_samples("full", 2.0, 22050) == 44100
    assert clip_samples("first_10s", 30.0, 32000) == 320000
    with pytest.raises(ValueError, match="full, first_10s"):
        clip_samples("middle", 30.0, 16000)


def test_bad_sizes_are_rejected(synth_gtzan, mfcc, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        extract_embeddings(synth_gtzan.tracks, synth_gtzan.raw_dir, mfcc,
                           tmp_path / "x.parquet", n_samples=100, metadata={}, batch_size=0)


def test_parts_are_joined_in_track_order_in_fixed_row_groups(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A track retried after an interruption lands in a later part: the final file is still
    in track order, and its row groups do not depend on where the parts broke."""
    import pyarrow as pa

    from mgc.embeddings import embedding_batch, embedding_schema

    schema = embedding_schema(2, {"model": "test"})
    order = [f"t{i}" for i in range(6)]
    parts = []
    for index, chunk in enumerate([["t0", "t2"], ["t3", "t4", "t5"], ["t1"]]):
        vectors = np.array([[int(t[1:]), 0.5] for t in chunk], np.float32)
        parts.append(tmp_path / f"part-{index}.parquet")
        pq.write_table(pa.Table.from_batches([embedding_batch(chunk, vectors, schema)]),
                       parts[-1])
    monkeypatch.setattr(extract_module, "ROW_GROUP_ROWS", 4)
    out_path = tmp_path / "joined.parquet"
    extract_module._join_parts(parts, out_path, schema, order)
    ids, vectors, metadata = read_embeddings(out_path)
    assert ids == order and vectors[:, 0].tolist() == list(range(6))
    assert metadata == {"model": "test"}
    assert [pq.read_metadata(out_path).row_group(i).num_rows for i in range(2)] == [4, 2]


def test_layers_all_adds_a_column_per_layer_and_keeps_the_embedding_column(
        synth_gtzan, tmp_path: Path) -> None:
    """One extraction with `layers: all`: a `layer.<name>` column per layer before the last,
    the layers in the metadata in depth order, and an `embedding` column that holds the
    same bytes as the default extraction's."""
    tracks = synth_gtzan.tracks.head(6)
    last = extractors.load("vggish", weights="random", postprocess=False, device="cpu")
    every = extractors.load("vggish", weights="random", postprocess=False, device="cpu",
                            layers="all")
    _run(synth_gtzan, last, tmp_path / "last.parquet", _metadata(last), tracks)
    _run(synth_gtzan, every, tmp_path / "all.parquet", _metadata(every), tracks)
    default, layered = pq.read_table(tmp_path / "last.parquet"), pq.read_table(
        tmp_path / "all.parquet")
    assert default.column_names == ["track_id", "embedding"]
    assert layered.column_names == ["track_id", "layer.conv1", "layer.conv2", "layer.conv3",
                                    "layer.conv4", "layer.fc1", "layer.fc2", "embedding"]
    assert layered.column("embedding").combine_chunks().flatten().to_numpy().tobytes() == \
        default.column("embedding").combine_chunks().flatten().to_numpy().tobytes()
    _, _, metadata = read_embeddings(tmp_path / "all.parquet")
    assert [(layer["name"], layer["dim"]) for layer in metadata["layers"]] == [
        ("conv1", 64), ("conv2", 128), ("conv3", 256), ("conv4", 512), ("fc1", 4096),
        ("fc2", 4096), ("fc3", 128)]
    ids, conv2, _ = read_embeddings(tmp_path / "all.parquet", "conv2")
    _, fc3, _ = read_embeddings(tmp_path / "all.parquet", "fc3")
    _, weighted, _ = read_embeddings(tmp_path / "all.parquet", "weighted")
    assert conv2.shape == (len(ids), 128) and weighted.shape == (len(ids), 9280)
    np.testing.assert_array_equal(weighted[:, 64:192], conv2)
    np.testing.assert_array_equal(weighted[:, -128:], fc3)
    np.testing.assert_array_equal(fc3, read_embeddings(tmp_path / "last.parquet")[1])
    with pytest.raises(ValueError, match=r"last layer of vggish only.*set "
                                         r"embed.vggish.layers: all"):
        read_embeddings(tmp_path / "last.parquet", "conv2")
    with pytest.raises(ValueError, match=r"'conv9' is not a layer of vggish; its layers: "
                                         r"conv1, conv2"):
        read_embeddings(tmp_path / "all.parquet", "conv9")


class RecordingEngine(extract_module.LocalEngine):
    """The local engine, noting the track ids of every batch it embeds."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "batches", [])

    def embed(self, extractor, plan):
        for ids, vectors, skipped in super().embed(extractor, plan):
            self.batches.append(ids)
            yield ids, vectors, skipped


def test_batches_are_windows_of_the_track_list_whatever_fails_or_resumes(
        synth_gtzan, mfcc, uninterrupted, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every clip meets the same batch neighbours in a clean run, after a clip that fails to
    decode and in a resumed run, since a model's floats depend on them (module docstring of
    mgc.embeddings): the unreadable jazz file leaves its window one short, and a window a
    killed run left half done is embedded whole again, its done rows dropped."""
    order = sorted(synth_gtzan.tracks["track_id"])
    corrupt = set(synth_gtzan.tracks.loc[synth_gtzan.tracks["status"] == "unreadable",
                                         "track_id"])
    windows = [[t for t in order[start:start + BATCH] if t not in corrupt]
               for start in range(0, len(order), BATCH)]
    clean = RecordingEngine()
    out_path = tmp_path / "clean.parquet"
    extract_embeddings(synth_gtzan.tracks, synth_gtzan.raw_dir, mfcc, out_path,
                       n_samples=clip_samples("full", 2.0, mfcc.sample_rate),
                       metadata=_metadata(mfcc), batch_size=BATCH, rows_per_group=GROUP,
                       engine=clean, progress=False)
    assert clean.batches == windows
    assert out_path.read_bytes() == uninterrupted[0].read_bytes()

    resumed, out_path = RecordingEngine(), tmp_path / "resumed.parquet"
    with monkeypatch.context() as patch:
        _crash_after(patch, mfcc, n_batches=5)
        with pytest.raises(Crash):
            _run(synth_gtzan, mfcc, out_path, _metadata(mfcc))
    # Parts of 6 rows: 18 tracks done, so window 4 (tracks 16-19) is half done.
    report = extract_embeddings(synth_gtzan.tracks, synth_gtzan.raw_dir, mfcc, out_path,
                                n_samples=clip_samples("full", 2.0, mfcc.sample_rate),
                                metadata=_metadata(mfcc), batch_size=BATCH,
                                rows_per_group=GROUP, engine=resumed, progress=False)
    assert resumed.batches == windows[4:]
    assert report.n_resumed == 18 and report.n_embedded == len(order) - len(corrupt) - 18
    assert out_path.read_bytes() == uninterrupted[0].read_bytes()
