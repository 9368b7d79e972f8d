"""mgc.datasets.collection: your own music as a dataset, a folder of genre subfolders or a
CSV, indexed in place (nothing copied or modified), split stratified or by artist, and
described by `mgc init-dataset` before anything is trained."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mgc.cli import app
from mgc.config import ConfigError
from mgc.datasets import get_dataset
from mgc.datasets.collection import normalise_label, summarise_collection
from mgc.pipeline.corpus import build_dataset
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import ParamsError, parse_params
from mgc.pipeline.yaml12 import load_yaml12
from mgc.splits import artist_split, make_split
from tests.conftest import OWN_CLIP_SECONDS, OWN_GENRES

REPO = Path(__file__).resolve().parents[1]


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root` with its size, mtime and sha256: what indexing must not touch."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def indexed(own_music: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    before = _snapshot(own_music)
    data = tmp_path_factory.mktemp("own_index") / "data"
    tracks = build_dataset(get_dataset("mylib", kind="folder", path=str(own_music),
                                       clip_seconds=OWN_CLIP_SECONDS),
                           Layout(data_dir=data), progress=False)
    assert _snapshot(own_music) == before, "indexing changed the user's files"
    assert not any((data / "raw" / "mylib").iterdir()), "indexing copied files"
    return tracks


def test_every_file_is_indexed_in_place_with_its_status(indexed: pd.DataFrame) -> None:
    assert len(indexed) == 24
    assert sorted(set(indexed["label"])) == sorted(normalise_label(f) for f in OWN_GENRES)
    status = indexed.set_index("track_id")["status"]
    assert status["METAL/metal 0.wav"] == "unreadable"
    assert status["reggae/reggae 3.mp3"] == "empty"
    assert (status == "ok").sum() == 22
    nested = indexed.set_index("track_id").loc["Blues/live/blues 5.flac"]
    assert nested["label"] == "blues" and nested["status"] == "ok"
    assert set(indexed["sample_rate_hz"][indexed["status"] == "ok"]) == {
        8000, 16000, 22050, 44100, 48000, 32000}
    assert set(indexed["channels"][indexed["status"] == "ok"]) == {1, 2}
    assert "untitled.wav" not in set(indexed["path"]) and not any(
        p.endswith(".jpg") for p in indexed["path"])


def test_content_hashes_identify_each_file(indexed: pd.DataFrame, own_music: Path) -> None:
    row = indexed.set_index("track_id").loc["classical /classical 1.flac"]
    expected = hashlib.sha256((own_music / "classical " / "classical 1.flac").read_bytes())
    assert row["content_sha256"] == expected.hexdigest()
    assert indexed["content_sha256"].is_unique


def test_a_csv_of_the_same_files_gives_the_same_index(indexed: pd.DataFrame, own_music: Path,
                                                     tmp_path: Path) -> None:
    listing = indexed[["path"]].copy()
    listing["label"] = [path.split("/")[0] for path in listing["path"]]   # as written
    csv = own_music / "tracks.csv"
    listing.to_csv(csv, index=False)
    try:
        from_csv = build_dataset(get_dataset("mylib", kind="csv", path=str(csv),
                                             clip_seconds=OWN_CLIP_SECONDS),
                                 Layout(data_dir=tmp_path), progress=False)
    finally:
        csv.unlink()
    pd.testing.assert_frame_equal(from_csv, indexed)


def test_a_changed_file_changes_only_its_hash(own_music: Path, tmp_path: Path) -> None:
    copy = tmp_path / "music"
    copy.mkdir()
    for genre in ("Blues", "reggae"):
        (copy / genre).mkdir()
        for source in sorted((own_music / genre).glob("*.*"))[:3]:
            (copy / genre / source.name).write_bytes(source.read_bytes())
    dataset = get_dataset("mine", kind="folder", path=str(copy))
    first = dataset.list_tracks(tmp_path).set_index("track_id")["content_sha256"]
    edited = sorted((copy / "reggae").iterdir())[0]
    edited.write_bytes(edited.read_bytes() + b"\x00")
    second = dataset.list_tracks(tmp_path).set_index("track_id")["content_sha256"]
    changed = first[first != second].index.tolist()
    assert changed == [f"reggae/{edited.name}"]


def test_artist_split_keeps_every_artist_on_one_side() -> None:
    rows = [{"track_id": f"t{i:03d}", "label": f"g{i % 4}", "artist_id": f"a{i % 17}"}
            for i in range(120)]
    tracks = pd.DataFrame(rows)
    split = artist_split(tracks, seed=3)
    sides = tracks.assign(split=split.to_numpy()).groupby("artist_id")["split"].nunique()
    assert (sides == 1).all()
    counts = split.value_counts()
    assert set(counts.index) == {"train", "val", "test"} and counts["train"] > counts["test"]
    shuffled = tracks.sample(frac=1, random_state=1).reset_index(drop=True)
    by_track = dict(zip(tracks["track_id"], split, strict=True))
    assert dict(zip(shuffled["track_id"], artist_split(shuffled, seed=3), strict=True)) == (
        by_track)


def test_artist_protocol_reads_the_csv_artist_column(indexed: pd.DataFrame,
                                                    own_music: Path) -> None:
    listing = indexed[["path", "label"]].copy()
    listing["artist"] = [f"artist {i // 2}" for i in range(len(listing))]
    csv = own_music.parent / "with_artists.csv"
    listing["path"] = "music/" + listing["path"]
    listing.to_csv(csv, index=False)
    dataset = get_dataset("mylib", kind="csv", path=str(csv))
    tracks = indexed.assign(artist_id=listing["artist"].to_numpy())
    split = make_split(dataset, tracks, Path("unused"), "artist")
    joined = split.merge(tracks[["track_id", "artist_id"]], on="track_id")
    assert (joined.groupby("artist_id")["split"].nunique() == 1).all()
    assert set(split["split"]) == {"train", "val", "test"}
    with pytest.raises(ValueError, match="no artist"):
        make_split(dataset, indexed, Path("unused"), "artist")


def test_too_few_tracks_in_a_class_names_it_with_its_count(indexed: pd.DataFrame) -> None:
    thin = indexed[~((indexed["label"] == "metal") & (indexed["track_id"] != "METAL/metal 1.flac"))]
    with pytest.raises(ValueError, match=r"'metal' \(1\).*at least 3"):
        make_split(get_dataset("synth_gtzan"), thin, Path("unused"), "paper")


def test_summary_shows_merged_spellings_look_alikes_and_left_out_files(tmp_path: Path) -> None:
    for folder in ("Rock", "rock ", "Hip-Hop", "hiphop"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.wav").write_bytes(b"")
    (tmp_path / "loose.mp3").write_bytes(b"")
    summary = summarise_collection(get_dataset("x", kind="folder", path=str(tmp_path)))
    assert summary.class_counts == {"rock": 2, "hip-hop": 1, "hiphop": 1}
    assert summary.label_spellings == {"rock": ["Rock", "rock "]}
    assert summary.look_alike == [["hip-hop", "hiphop"]]
    assert [p.name for p in summary.unlabelled] == ["loose.mp3"]


def test_init_dataset_prints_counts_and_the_params_to_paste(own_music: Path) -> None:
    result = CliRunner().invoke(app, ["init-dataset", str(own_music), "--name", "mylib",
                                      "--clip-seconds", "3"])
    assert result.exit_code == 0, result.output
    assert "mylib: 24 files in 4 classes" in result.output
    assert "left out: 1 audio file(s)" in result.output
    block = result.output.split("set (keeping the other sources):\n")[1].split("\n\n")[0]
    pasted = load_yaml12(block)
    params = load_yaml12((REPO / "params.yaml").read_text())
    params["data"]["datasets"] = pasted["data"]["datasets"]
    params["data"]["sources"].update(pasted["data"]["sources"])
    params["train"]["sets"] = pasted["train"]["sets"]
    parsed = parse_params(params)
    assert parsed.data.source("mylib") == {"kind": "folder", "path": str(own_music.resolve()),
                                           "clip_seconds": 3.0}
    assert f"'+data.sources.mylib={{kind:folder,path:{own_music.resolve()}" in result.output
    assert "mgc predict song.mp3 --model models/mylib/<extractor>" in result.output


@pytest.mark.parametrize(("source", "message"), [
    ({"kind": "playlist", "path": "/x"}, r"data\.sources\.mylib\.kind='playlist'.*folder"),
    ({"kind": "folder"}, r"data\.sources\.mylib: missing key\(s\) path"),
    ({"kind": "folder", "path": "/x", "label": "x"}, r"data\.sources\.mylib\.label: unknown"),
    ({"path": "/x"}, r"unknown dataset 'mylib'.*kind"),
])
def test_a_bad_source_of_your_own_is_named_before_any_stage(source: dict, message: str) -> None:
    params = load_yaml12((REPO / "params.yaml").read_text())
    params["data"]["datasets"] = ["mylib"]
    params["data"]["sources"]["mylib"] = source
    params["train"]["sets"] = ["mylib"]
    with pytest.raises(ParamsError, match=message):
        parse_params(params)


def test_a_missing_folder_is_named() -> None:
    with pytest.raises(ConfigError, match=r"mylib\.path='/no/such/music': no such folder"):
        get_dataset("mylib", kind="folder", path="/no/such/music")


def test_normalised_labels_ignore_case_and_surrounding_spaces_only() -> None:
    assert normalise_label("  Hip-Hop ") == "hip-hop" != normalise_label("hiphop")
    assert normalise_label("Rock and Roll") == "rock and roll"


def test_a_track_listed_twice_is_named_at_indexing(own_music: Path, tmp_path: Path) -> None:
    csv = tmp_path / "tracks.csv"
    first = own_music / "Blues" / "blues 1.flac"
    csv.write_text(f"path,label\n{first},blues\n{first},Blues\n")
    dataset = get_dataset("twice", kind="csv", path=str(csv))
    with pytest.raises(ValueError, match=r"twice: track id\(s\) listed more than once: .*"
                                         r"blues 1\.flac"):
        build_dataset(dataset, Layout(data_dir=tmp_path / "data"), progress=False)
    assert not (tmp_path / "data" / "tracks").exists()


def test_your_dataset_joins_the_others_in_the_joint_label_space(indexed: pd.DataFrame) -> None:
    from mgc.labels import merge_label_spaces

    mine = make_split(get_dataset("mylib", kind="folder", path="."), indexed, Path("unused"),
                      "paper")
    fma = pd.DataFrame({"track_id": ["1", "2", "3"], "label": ["Blues", "Rock", "Pop"],
                        "split": ["train", "val", "test"]})
    canonical, label_map = merge_label_spaces({"mylib": mine, "synth_fma": fma}, "canonical")
    assert label_map["mylib"]["blues"] == label_map["synth_fma"]["Blues"] == "blues"
    assert set(canonical["label"]) == {"blues", "classical", "metal", "reggae", "rock", "pop"}
    disjoint, _ = merge_label_spaces({"mylib": mine, "synth_fma": fma}, "disjoint")
    assert {"mylib/blues", "synth_fma/Blues"} <= set(disjoint["label"])

