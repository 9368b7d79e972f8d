"""mgc.datasets: synthetic rendering, the GTZAN and FMA layouts, the indexer's statuses."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from mgc.audio import AudioError, load_audio
from mgc.datasets import (
    REGISTRY,
    TRACK_COLUMNS,
    Dataset,
    get_dataset,
    index_tracks,
    usable_tracks,
)
from mgc.datasets.fma import list_fma_tracks, read_tracks_csv
from mgc.datasets.gtzan import Gtzan, list_gtzan_tracks, split_from_lists
from mgc.datasets.indexing import archive_stem
from mgc.datasets.synth_archives import render_fma_archives, render_gtzan_archive
from mgc.datasets.synthesis import FMA_GENRES, GTZAN_GENRES, render_clip

# The first lines of FMA's real fma_metadata/tracks.csv, cut to the columns the indexer reads.
REAL_STYLE_TRACKS_CSV = """\
,artist,set,set,track,track
,id,split,subset,genre_top,title
track_id,,,,,
2,1,training,small,Hip-Hop,Food
3,1,training,medium,Hip-Hop,Electric Ave
5,1,test,small,Hip-Hop,This World
10,6,validation,small,Pop,"Freeway, Part 2"
20,4,training,large,,Spiritual Level
140,53,training,small,Folk,Queen Of The Wires
"""


def _tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def _zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- synthetic rendering -------------------------------------------------------------------

def test_render_clip_is_deterministic_per_seed() -> None:
    first = render_clip("metal", 1.0, 22050, seed=11)
    assert first.dtype == np.float32 and first.shape == (22050,)
    assert np.abs(first).max() <= 1.0 and first.std() > 0.01
    np.testing.assert_array_equal(first, render_clip("metal", 1.0, 22050, seed=11))
    assert not np.array_equal(first, render_clip("metal", 1.0, 22050, seed=12))


def test_same_seed_renders_the_same_gtzan_audio(synth_gtzan, tmp_path: Path) -> None:
    """Re-rendering gives byte-identical .au files to those the session corpus unpacked."""
    dataset = synth_gtzan.dataset
    archive = render_gtzan_archive(tmp_path, dataset.clips_per_genre,
                                   dataset.nominal_clip_seconds, seed=dataset.seed)
    members = _tar_members(archive)
    assert len([n for n in members if n.endswith(".au")]) == 10 * dataset.clips_per_genre
    for row in synth_gtzan.tracks.itertuples():
        relative = Path(row.path).relative_to("genres")
        assert (synth_gtzan.raw_dir / row.path).read_bytes() == members[str(relative)]


def test_same_seed_renders_the_same_fma_archives(synth_fma, tmp_path: Path) -> None:
    """Re-rendering gives byte-identical mp3 files and tracks.csv to the session corpus's."""
    dataset = synth_fma.dataset
    archives = render_fma_archives(tmp_path, dataset.clips_per_genre,
                                   dataset.nominal_clip_seconds, seed=dataset.seed)
    audio = _zip_members(archives["audio"])
    assert len(audio) == len(synth_fma.tracks)
    for row in synth_fma.tracks.itertuples():
        relative = Path(row.path).relative_to("fma_small")
        assert (synth_fma.raw_dir / row.path).read_bytes() == audio[str(relative)]
    metadata = _zip_members(archives["metadata"])
    unpacked = synth_fma.raw_dir / "fma_metadata" / "fma_metadata" / "tracks.csv"
    assert unpacked.read_bytes() == metadata["fma_metadata/tracks.csv"]


# --- GTZAN layout ----------------------------------------------------------------------------

def test_gtzan_layout_and_labels(synth_gtzan) -> None:
    tracks, n = synth_gtzan.tracks, synth_gtzan.dataset.clips_per_genre
    assert list(tracks.columns) == list(TRACK_COLUMNS)
    assert len(tracks) == 10 * n
    assert list(tracks["track_id"]) == sorted(tracks["track_id"])
    assert tracks.groupby("label").size().to_dict() == dict.fromkeys(GTZAN_GENRES, n)
    for row in tracks.itertuples():
        assert row.path == f"genres/genres/{row.label}/{row.track_id}.au"
        assert row.track_id.split(".")[0] == row.label
    ok = tracks[tracks["status"] == "ok"]
    assert (ok["sample_rate_hz"] == 22050).all() and (ok["channels"] == 1).all()
    np.testing.assert_allclose(ok["duration_s"], synth_gtzan.dataset.nominal_clip_seconds,
                               atol=1e-3)


def test_build_writes_the_track_table_and_leaves_no_staging(synth_gtzan) -> None:
    data_dir = synth_gtzan.raw_dir.parent.parent
    written = pd.read_parquet(data_dir / "tracks" / "synth_gtzan.parquet")
    pd.testing.assert_frame_equal(written, synth_gtzan.tracks)
    assert sorted(p.name for p in data_dir.iterdir()) == ["raw", "tracks"]
    assert sorted(p.name for p in synth_gtzan.raw_dir.iterdir()) == ["genres"]


def test_corrupt_gtzan_file_is_unreadable(synth_gtzan) -> None:
    bad = synth_gtzan.tracks[synth_gtzan.tracks["status"] != "ok"]
    assert list(bad["track_id"]) == ["jazz.00000"]
    assert bad["status"].iloc[0] == "unreadable" and bad["reason"].iloc[0]
    assert len(usable_tracks(synth_gtzan.tracks)) == len(synth_gtzan.tracks) - 1


def test_gtzan_split_lists_are_in_the_fault_filtered_format(synth_gtzan) -> None:
    list_dir = synth_gtzan.raw_dir / "genres" / "split_lists"
    lines = (list_dir / "train_filtered.txt").read_text().split()
    assert lines and all(line.count("/") == 1 and line.endswith(".wav") for line in lines)
    split = split_from_lists(synth_gtzan.tracks, list_dir)
    assert split.notna().all()
    assert split.value_counts().to_dict() == {"train": 30, "val": 10, "test": 10}


def test_list_gtzan_tracks_needs_au_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="genres/<genre>"):
        list_gtzan_tracks(tmp_path)


# --- FMA layout --------------------------------------------------------------------------------

def test_read_tracks_csv_reads_fmas_three_row_header(tmp_path: Path) -> None:
    path = tmp_path / "tracks.csv"
    path.write_text(REAL_STYLE_TRACKS_CSV)
    tracks = read_tracks_csv(path)
    assert tracks.index.name == "track_id"
    assert list(tracks.index) == [2, 3, 5, 10, 20, 140]
    assert tracks.loc[10, ("track", "title")] == "Freeway, Part 2"
    assert tracks.loc[5, ("set", "split")] == "test"
    assert tracks.loc[140, ("track", "genre_top")] == "Folk"


def test_list_fma_tracks_keeps_the_small_subset(tmp_path: Path) -> None:
    (tmp_path / "fma_metadata" / "fma_metadata").mkdir(parents=True)
    (tmp_path / "fma_metadata" / "fma_metadata" / "tracks.csv").write_text(REAL_STYLE_TRACKS_CSV)
    (tmp_path / "fma_small" / "fma_small").mkdir(parents=True)
    listed = list_fma_tracks(tmp_path)
    assert list(listed["track_id"]) == ["000002", "000005", "000010", "000140"]
    assert list(listed["label"]) == ["Hip-Hop", "Hip-Hop", "Pop", "Folk"]
    assert list(listed["official_split"]) == ["train", "test", "val", "train"]
    assert listed["path"].iloc[3] == "fma_small/fma_small/000/000140.mp3"
    assert list(listed["artist_id"]) == ["1", "1", "6", "53"]


def test_synth_tracks_csv_has_the_real_header_and_medium_rows(synth_fma) -> None:
    csv_path = synth_fma.raw_dir / "fma_metadata" / "fma_metadata" / "tracks.csv"
    header = csv_path.read_text().splitlines()[:3]
    assert header[0].startswith(",") and header[1].startswith(",")
    assert header[2].startswith("track_id,") and set(header[2][len("track_id"):]) == {","}
    metadata = read_tracks_csv(csv_path)
    subsets = metadata[("set", "subset")].value_counts().to_dict()
    assert subsets == {"small": 8 * synth_fma.dataset.clips_per_genre, "medium": 5}


def test_fma_index_drops_medium_and_keeps_official_split(synth_fma) -> None:
    tracks, n = synth_fma.tracks, synth_fma.dataset.clips_per_genre
    assert list(tracks.columns) == list(TRACK_COLUMNS)
    assert len(tracks) == 8 * n
    assert tracks.groupby("label").size().to_dict() == dict.fromkeys(FMA_GENRES, n)
    assert (tracks["track_id"].str.len() == 6).all()
    for row in tracks.itertuples():
        assert row.path == f"fma_small/fma_small/{row.track_id[:3]}/{row.track_id}.mp3"
        assert (synth_fma.raw_dir / row.path).is_file()
    assert set(tracks["official_split"]) == {"train", "val", "test"}
    per_genre = tracks.groupby(["label", "official_split"]).size().unstack(fill_value=0)
    assert (per_genre > 0).all().all()
    ok = tracks[tracks["status"] == "ok"]
    assert (ok["sample_rate_hz"] == 44100).all() and (ok["channels"] == 2).all()
    np.testing.assert_allclose(ok["duration_s"], synth_fma.dataset.nominal_clip_seconds,
                               atol=0.1)


def test_empty_fma_mp3_is_recorded_as_empty(synth_fma) -> None:
    bad = synth_fma.tracks[synth_fma.tracks["status"] != "ok"]
    assert len(bad) == 1
    assert bad["status"].iloc[0] == "empty" and bad["label"].iloc[0] == "Rock"
    assert (synth_fma.raw_dir / bad["path"].iloc[0]).stat().st_size == 0


# --- the indexer's statuses on odd files -------------------------------------------------------

class OddFilesDataset(Dataset):
    """Every file in a folder is a track; its stem is the id and the label."""

    name = "odd_files"
    labels = ("x",)
    paper_split_stratified = False
    nominal_clip_seconds = 2.0

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        return []

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return pd.DataFrame([{"track_id": p.stem, "path": p.name, "label": "x"}
                             for p in sorted(raw_dir.iterdir(), reverse=True)])

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return pd.Series([None] * len(tracks))


del REGISTRY[OddFilesDataset.name]  # a test double, not a dataset of the pipeline


@pytest.fixture
def odd_files(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    soundfile.write(tmp_path / "a_ok.wav", rng.uniform(-0.5, 0.5, 44100).astype(np.float32),
                    22050)
    soundfile.write(tmp_path / "b_short.wav", np.zeros(11025, np.float32) + 0.1, 22050)
    soundfile.write(tmp_path / "c_eight_channels_96k.wav",
                    rng.uniform(-0.5, 0.5, (192000, 8)).astype(np.float32), 96000,
                    subtype="FLOAT")
    nan = np.full(44100, 0.1, np.float32)
    nan[5] = np.nan
    soundfile.write(tmp_path / "d_nan.wav", nan, 22050, subtype="FLOAT")
    (tmp_path / "e_empty.mp3").write_bytes(b"")
    (tmp_path / "f_corrupt.au").write_bytes(b".snd" + bytes(20))
    return tmp_path


def test_index_statuses(odd_files: Path) -> None:
    table = index_tracks(OddFilesDataset(), odd_files, progress=False)
    assert list(table.columns) == list(TRACK_COLUMNS)
    assert list(table["track_id"]) == sorted(table["track_id"])
    status = dict(zip(table["track_id"], table["status"], strict=True))
    assert status == {"a_ok": "ok", "b_short": "short", "c_eight_channels_96k": "ok",
                      "d_nan": "unreadable", "e_empty": "empty", "f_corrupt": "unreadable"}
    row = table.set_index("track_id").loc["c_eight_channels_96k"]
    assert (row["channels"], row["sample_rate_hz"], row["duration_s"]) == (8, 96000, 2.0)
    assert "NaN" in table.set_index("track_id").loc["d_nan", "reason"]
    assert "0.50 s" in table.set_index("track_id").loc["b_short", "reason"]
    assert table["artist_id"].isna().all() and table["official_split"].isna().all()
    assert list(usable_tracks(table)["track_id"]) == ["a_ok", "b_short", "c_eight_channels_96k"]


def test_usable_multichannel_file_loads_as_mono(odd_files: Path) -> None:
    wave = load_audio(odd_files / "c_eight_channels_96k.wav", 22050)
    assert wave.shape == (44100,)
    with pytest.raises(AudioError):
        load_audio(odd_files / "d_nan.wav", 22050)


# --- registry and options ----------------------------------------------------------------------

def test_registry_has_the_datasets_and_the_kinds_of_your_own() -> None:
    assert set(REGISTRY) == {"gtzan", "fma_small", "fma_medium", "fma_large", "synth_gtzan",
                             "synth_fma", "folder", "csv"}
    for name, cls in REGISTRY.items():
        assert cls.name == name


def test_unknown_dataset_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'gtzan2'.*fma_small"):
        get_dataset("gtzan2")


def test_bad_source_option_names_the_dataset_and_its_options() -> None:
    with pytest.raises(ValueError, match=r"synth_fma\.clip_length: unknown.*clip_seconds"):
        get_dataset("synth_fma", clip_length=3)


@pytest.mark.parametrize(
    ("options", "key"),
    [({"clips_per_genre": 4}, "clips_per_genre"), ({"clip_seconds": 0.5}, "clip_seconds"),
     ({"corrupt_tracks": 20}, "corrupt_tracks")],
)
def test_synth_options_are_validated(options: dict[str, float], key: str) -> None:
    with pytest.raises(ValueError, match=rf"^synth_gtzan\.{key}="):
        get_dataset("synth_gtzan", **options)


def test_missing_local_archive_is_named(tmp_path: Path) -> None:
    dataset = Gtzan(archive=str(tmp_path / "genres.tar.gz"))
    with pytest.raises(FileNotFoundError, match=r"archive=.*no such file"):
        dataset.obtain_archives(tmp_path, progress=False)


@pytest.mark.parametrize(("name", "stem"), [("genres.tar.gz", "genres"),
                                            ("fma_small.zip", "fma_small"),
                                            ("x.tgz", "x"), ("plain.bin", "plain")])
def test_archive_stem(name: str, stem: str) -> None:
    assert archive_stem(Path(name)) == stem
