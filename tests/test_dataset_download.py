"""GTZAN and FMA archives, generated in their real formats, fetched over 127.0.0.1 end to end.

The real datasets cannot be downloaded here, so the pieces that handle them (mirrors,
resumed transfers, pinned checksums, safe unpacking, the indexer's statuses, the `standard`
split lists) are run on archives rendered by mgc.datasets.synth_archives in the real layouts and
served by tests.http_server, through the `download` and `split` stages as DVC runs them and
through `mgc download`.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import stages.download
import stages.split
from mgc import download
from mgc.archive import UnsafeArchiveError
from mgc.cli import app
from mgc.datasets import REGISTRY, get_dataset, gtzan, usable_tracks
from mgc.datasets.fma import GENRES as FMA_GENRES
from mgc.datasets.fma import SUBSETS, TOP_GENRES, read_tracks_csv
from mgc.datasets.gtzan import GENRES as GTZAN_GENRES
from mgc.datasets.gtzan import Gtzan
from mgc.datasets.synth_archives import render_fma_archives, render_gtzan_archive
from mgc.download import ChecksumError
from tests.http_server import FileServer, unused_port

REPO = Path(__file__).resolve().parents[1]
CLIPS_PER_GENRE = 3
CLIP_SECONDS = 2.0
MP3_HEADER_BYTES = 200
"""Less than one mp3 frame: a file that stops right after its first header."""


@dataclass(frozen=True)
class GtzanArchive:
    body: bytes
    sha256: str


@dataclass(frozen=True)
class FmaArchives:
    audio: bytes
    metadata: bytes
    empty_id: str
    header_only_id: str
    truncated_id: str

    @property
    def audio_sha1(self) -> str:
        return hashlib.sha1(self.audio).hexdigest()

    @property
    def metadata_sha1(self) -> str:
        return hashlib.sha1(self.metadata).hexdigest()


@pytest.fixture(scope="module")
def gtzan_archive(tmp_path_factory: pytest.TempPathFactory) -> GtzanArchive:
    """genres.tar.gz: 10 genres x 3 clips of 2 s, jazz.00000 with an AU header nothing reads."""
    path = render_gtzan_archive(tmp_path_factory.mktemp("gtzan_archive"), CLIPS_PER_GENRE,
                                CLIP_SECONDS, seed=0, corrupt_tracks=1)
    body = path.read_bytes()
    return GtzanArchive(body, hashlib.sha256(body).hexdigest())


@pytest.fixture(scope="module")
def fma_archives(tmp_path_factory: pytest.TempPathFactory) -> FmaArchives:
    """fma_small.zip + fma_metadata.zip: 8 genres x 3 clips, 5 'medium' rows, and three
    broken mp3 files: one of 0 bytes, one cut after its header, one cut half way."""
    paths = render_fma_archives(tmp_path_factory.mktemp("fma_archives"), CLIPS_PER_GENRE,
                                CLIP_SECONDS, seed=0, corrupt_tracks=1)
    with zipfile.ZipFile(paths["audio"]) as zipped:
        members = {name: zipped.read(name) for name in zipped.namelist()}
    names = sorted(members)
    (empty,) = [name for name in names if not members[name]]
    header_only, truncated = [name for name in names if members[name]][:2]
    members[header_only] = members[header_only][:MP3_HEADER_BYTES]
    members[truncated] = members[truncated][:len(members[truncated]) // 2]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in names:
            zipped.writestr(name, members[name])
    return FmaArchives(buffer.getvalue(), paths["metadata"].read_bytes(),
                       Path(empty).stem, Path(header_only).stem, Path(truncated).stem)


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder to run stages in, with its own download cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MGC_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits between download retries instead of sleeping through them."""
    sleeps: list[float] = []
    monkeypatch.setattr(download, "time", SimpleNamespace(sleep=sleeps.append))
    return sleeps


def write_params(folder: Path, dataset: str, source: dict[str, Any],
                 protocol: str = "paper") -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["datasets"] = [dataset]
    raw["data"]["protocol"] = protocol
    raw["data"]["sources"][dataset] = source
    raw["train"]["sets"] = [dataset]
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))


def run_download_stage(dataset: str) -> pd.DataFrame:
    stages.download.main(["--dataset", dataset])
    return pd.read_parquet(Path("data/tracks") / f"{dataset}.parquet")


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def serve_gtzan(server: FileServer, archive: GtzanArchive, **options: Any) -> str:
    return server.serve("/gtzan/genres.tar.gz", archive.body, **options)


def serve_fma(server: FileServer, archives: FmaArchives) -> dict[str, Any]:
    return {"urls": [server.serve("/fma/fma_small.zip", archives.audio)],
            "sha1": archives.audio_sha1,
            "metadata_urls": [server.serve("/fma/fma_metadata.zip", archives.metadata)],
            "metadata_sha1": archives.metadata_sha1}


def forbid_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def assert_gtzan_indexed(tracks: pd.DataFrame, raw_dir: Path) -> None:
    """30 tracks, 3 per genre; the broken jazz file recorded unreadable, the rest usable."""
    assert len(tracks) == len(GTZAN_GENRES) * CLIPS_PER_GENRE
    assert tracks.groupby("label").size().to_dict() == dict.fromkeys(GTZAN_GENRES,
                                                                      CLIPS_PER_GENRE)
    status = dict(zip(tracks["track_id"], tracks["status"], strict=True))
    assert status.pop("jazz.00000") == "unreadable"
    # 2 s clips are under half of GTZAN's nominal 30 s: usable, padded later.
    assert set(status.values()) == {"short"}
    usable = usable_tracks(tracks)
    assert "jazz.00000" not in set(usable["track_id"])
    assert (usable["sample_rate_hz"] == 22050).all() and (usable["channels"] == 1).all()
    assert usable["duration_s"].between(CLIP_SECONDS - 0.01, CLIP_SECONDS + 0.01).all()
    for row in tracks.itertuples():
        assert row.path == f"genres/genres/{row.label}/{row.track_id}.au"
        assert (raw_dir / row.path).is_file()


# --- 1, 2: fetch, verify, unpack, index ---------------------------------------------------------

def test_gtzan_is_fetched_verified_unpacked_and_indexed_by_the_download_stage(
        workdir: Path, http_server: FileServer, gtzan_archive: GtzanArchive,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = serve_gtzan(http_server, gtzan_archive)
    write_params(workdir, "gtzan", {"urls": [url], "sha256": gtzan_archive.sha256})
    tracks = run_download_stage("gtzan")
    assert_gtzan_indexed(tracks, workdir / "data" / "raw" / "gtzan")
    assert "unreadable: genres/genres/jazz/jazz.00000.au" in capsys.readouterr().out
    assert (workdir / "cache/datasets/genres.tar.gz").read_bytes() == gtzan_archive.body
    assert files_under(workdir / "cache") == ["datasets/genres.tar.gz"]
    assert [p.name for p in (workdir / "data").iterdir()] in (["raw", "tracks"],
                                                              ["tracks", "raw"])
    assert http_server.bytes_served == len(gtzan_archive.body)

    rerun = run_download_stage("gtzan")
    pd.testing.assert_frame_equal(rerun, tracks)
    assert len(http_server.requests) == 1, "the verified cached archive was fetched again"


def test_fma_is_fetched_verified_unpacked_and_indexed_by_the_download_stage(
        workdir: Path, http_server: FileServer, fma_archives: FmaArchives) -> None:
    write_params(workdir, "fma_small", serve_fma(http_server, fma_archives))
    tracks = run_download_stage("fma_small")
    assert len(tracks) == len(FMA_GENRES) * CLIPS_PER_GENRE, "'medium' rows were kept"
    assert tracks.groupby("label").size().to_dict() == dict.fromkeys(FMA_GENRES,
                                                                     CLIPS_PER_GENRE)
    raw_dir = workdir / "data" / "raw" / "fma_small"
    assert all((raw_dir / path).is_file() for path in tracks["path"])
    by_id = tracks.set_index("track_id")
    assert by_id.loc[fma_archives.empty_id, "status"] == "empty"
    assert by_id.loc[fma_archives.header_only_id, "status"] == "unreadable"
    assert by_id.loc[fma_archives.header_only_id, "reason"] != ""
    # mpg123 decodes the frames a cut file still has: it is kept, with what it holds.
    truncated = by_id.loc[fma_archives.truncated_id]
    assert truncated["status"] == "short"
    assert truncated["duration_s"] < 0.6 * CLIP_SECONDS
    usable = usable_tracks(tracks)
    assert set(tracks["track_id"]) - set(usable["track_id"]) == {
        fma_archives.empty_id, fma_archives.header_only_id}
    intact = usable[usable["track_id"] != fma_archives.truncated_id]
    assert intact["duration_s"].between(CLIP_SECONDS - 0.1, CLIP_SECONDS + 0.1).all()
    assert (intact["sample_rate_hz"] == 44100).all() and (intact["channels"] == 2).all()
    assert set(tracks["official_split"]) == {"train", "val", "test"}
    assert tracks["artist_id"].notna().all()
    assert files_under(workdir / "cache") == ["datasets/fma_metadata.zip",
                                              "datasets/fma_small.zip"]


@pytest.mark.parametrize("subset", ["medium", "large"])
def test_fma_medium_and_large_keep_their_nested_subsets_labelled_tracks_and_split(
        workdir: Path, http_server: FileServer, tmp_path_factory: pytest.TempPathFactory,
        subset: str) -> None:
    """fma_medium.zip / fma_large.zip in the real layout, served and verified: the track
    table holds the tracks tracks.csv marks with a subset the archive includes (medium:
    small and medium; large: all three), labelled with FMA's 16 top genres and split as
    tracks.csv says; rows of a larger subset, and large's tracks without a top genre, are
    left out."""
    paths = render_fma_archives(tmp_path_factory.mktemp(f"fma_{subset}"), 2, CLIP_SECONDS,
                                seed=0, corrupt_tracks=0, subset=subset)
    audio, metadata = paths["audio"].read_bytes(), paths["metadata"].read_bytes()
    dataset = f"fma_{subset}"
    write_params(workdir, dataset, {
        "urls": [http_server.serve(f"/fma/fma_{subset}.zip", audio)],
        "sha1": hashlib.sha1(audio).hexdigest(),
        "metadata_urls": [http_server.serve("/fma/fma_metadata.zip", metadata)],
        "metadata_sha1": hashlib.sha1(metadata).hexdigest()}, protocol="standard")
    tracks = run_download_stage(dataset)
    stages.split.main(["--dataset", dataset])

    catalogue = read_tracks_csv(workdir / "data" / "raw" / dataset / "fma_metadata" /
                                "fma_metadata" / "tracks.csv")
    members = SUBSETS[subset].members
    wanted = catalogue[catalogue[("set", "subset")].isin(members)
                       & catalogue[("track", "genre_top")].notna()]
    assert len(catalogue) - len(wanted) == {"medium": 5, "large": 2}[subset]
    assert list(tracks["track_id"]) == [f"{int(tid):06d}" for tid in wanted.index]
    assert set(tracks["track_id"]) & {f"{int(tid):06d}" for tid in catalogue.index[
        catalogue[("track", "genre_top")].isna()]} == set()
    assert tracks.groupby("label").size().to_dict() == dict.fromkeys(TOP_GENRES, 2)
    assert (tracks["status"] == "short").all() or (tracks["status"] == "ok").all()
    raw_dir = workdir / "data" / "raw" / dataset
    assert all((raw_dir / path).is_file() for path in tracks["path"])
    assert all(path.startswith(f"fma_{subset}/fma_{subset}/") for path in tracks["path"])
    split = pd.read_parquet(workdir / "data" / "splits" / f"{dataset}.parquet")
    official = {"training": "train", "validation": "val", "test": "test"}
    assert dict(zip(split["track_id"], split["split"], strict=True)) == {
        f"{int(tid):06d}": official[s] for tid, s in wanted[("set", "split")].items()}
    if subset == "large":
        in_archive = {Path(name).stem for name in zipfile.ZipFile(paths["audio"]).namelist()}
        assert len(in_archive - set(tracks["track_id"])) == 2, "the unlabelled tracks"


def test_fma_medium_and_large_pin_the_archives_of_the_fma_readme() -> None:
    """sha1 and URLs as github.com/mdeff/fma's README publishes them (2017-05-09 release)."""
    for name, sha1 in (("fma_medium", "c67b69ea232021025fca9231fc1c7c1a063ab50b"),
                       ("fma_large", "497109f4dd721066b5ce5e5f250ec604dc78939e")):
        (audio, urls, checksum, _, _), metadata = get_dataset(name).parts
        assert audio == f"{name}.zip" and checksum.hexdigest == sha1
        assert urls == (f"https://os.unil.cloud.switch.ch/fma/{name}.zip",)
        assert metadata[2].hexdigest == "f0df49ffe5f2a6008d7dc83c6915b31835dfe733"
    assert get_dataset("fma_large").labels == TOP_GENRES and len(TOP_GENRES) == 16


# --- 3: resume ----------------------------------------------------------------------------------

def test_dropped_connection_resumes_with_a_range_request_without_refetching(
        workdir: Path, http_server: FileServer, gtzan_archive: GtzanArchive) -> None:
    half = len(gtzan_archive.body) // 2
    url = serve_gtzan(http_server, gtzan_archive, drop_after_bytes=half)
    write_params(workdir, "gtzan", {"urls": [url], "sha256": gtzan_archive.sha256})
    tracks = run_download_stage("gtzan")
    assert [request.range for request in http_server.requests] == [None, f"bytes={half}-"]
    assert http_server.bytes_served == len(gtzan_archive.body)
    assert_gtzan_indexed(tracks, workdir / "data" / "raw" / "gtzan")


# --- 4: wrong checksum --------------------------------------------------------------------------

def test_wrong_pinned_checksum_is_named_and_leaves_nothing_behind(
        workdir: Path, http_server: FileServer, gtzan_archive: GtzanArchive) -> None:
    wrong = "0" * 64
    url = serve_gtzan(http_server, gtzan_archive)
    write_params(workdir, "gtzan", {"urls": [url], "sha256": wrong})
    with pytest.raises(ChecksumError) as raised:
        run_download_stage("gtzan")
    message = str(raised.value)
    assert f"expected {wrong}" in message and gtzan_archive.sha256 in message
    assert f"sha256:{wrong}" in message and url in message
    assert files_under(workdir / "cache") == [], "the bad copy or its .part was kept"
    assert files_under(workdir / "data") == []
    assert not (workdir / "data" / "raw" / "gtzan" / "genres").exists()
    assert not (workdir / "data" / "tracks").exists()


def test_wrong_metadata_checksum_unpacks_nothing_and_keeps_the_verified_audio(
        workdir: Path, http_server: FileServer, fma_archives: FmaArchives) -> None:
    source = serve_fma(http_server, fma_archives) | {"metadata_sha1": "f" * 40}
    write_params(workdir, "fma_small", source)
    with pytest.raises(ChecksumError, match=f"fma_metadata.zip.*expected {'f' * 40}"):
        run_download_stage("fma_small")
    # The good 7 GB audio zip stays cached so the next run does not fetch it again.
    assert files_under(workdir / "cache") == ["datasets/fma_small.zip"]
    assert files_under(workdir / "data") == []


# --- 5: unsafe members --------------------------------------------------------------------------

def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


@pytest.mark.parametrize(("dataset", "escape", "complaint"), [
    ("gtzan", "../evil.au", "climbs out with '..'"),
    ("gtzan", "genres/../../../evil.au", "climbs out with '..'"),
    ("gtzan", "<absolute>", "has an absolute path"),
    ("fma_small", "../evil.mp3", "climbs out with '..'"),
])
def test_archive_member_escaping_its_folder_is_refused_and_nothing_is_written(
        workdir: Path, http_server: FileServer, fma_archives: FmaArchives, dataset: str,
        escape: str, complaint: str) -> None:
    name = str(workdir / "evil.au") if escape == "<absolute>" else escape
    if dataset == "gtzan":
        body = _tar_gz({"genres/blues/blues.00000.au": b"x", name: b"evil"})
        url = http_server.serve("/genres.tar.gz", body)
        source: dict[str, Any] = {"urls": [url], "sha256": hashlib.sha256(body).hexdigest()}
        fetched = ["datasets/genres.tar.gz"]
    else:
        body = _zip({"fma_small/000/000002.mp3": b"x", name: b"evil"})
        source = serve_fma(http_server, fma_archives) | {
            "urls": [http_server.serve("/evil/fma_small.zip", body)],
            "sha1": hashlib.sha1(body).hexdigest()}
        fetched = ["datasets/fma_metadata.zip", "datasets/fma_small.zip"]
    write_params(workdir, dataset, source)
    with pytest.raises(UnsafeArchiveError) as raised:
        run_download_stage(dataset)
    assert f"member {name!r} {complaint}" in str(raised.value)
    assert files_under(workdir) == sorted(["params.yaml", *(f"cache/{f}" for f in fetched)])
    leftovers = [p.name for p in (workdir / "data" / "raw" / dataset).iterdir()]
    assert leftovers == [], "a partial unpack was left behind"


# --- 6: mirrors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dead", ["404", "closed port"])
def test_dead_first_url_falls_back_to_the_mirror(
        workdir: Path, http_server: FileServer, gtzan_archive: GtzanArchive, dead: str,
        no_backoff: list[float]) -> None:
    first = (http_server.url("/moved/genres.tar.gz") if dead == "404"
             else f"http://127.0.0.1:{unused_port()}/genres.tar.gz")
    mirror = serve_gtzan(http_server, gtzan_archive)
    write_params(workdir, "gtzan", {"urls": [first, mirror], "sha256": gtzan_archive.sha256})
    tracks = run_download_stage("gtzan")
    assert_gtzan_indexed(tracks, workdir / "data" / "raw" / "gtzan")
    expected_paths = ["/moved/genres.tar.gz"] if dead == "404" else []
    assert [r.path for r in http_server.requests] == [*expected_paths, "/gtzan/genres.tar.gz"]
    assert http_server.bytes_served == len(gtzan_archive.body)
    # A refused connection may pass on a retry; a 404 will not, so it is not retried.
    assert bool(no_backoff) == (dead == "closed port")


# --- 7: mgc download ----------------------------------------------------------------------------

def gtzan_with(**fixed: object) -> type[Gtzan]:
    """Gtzan with some options fixed (a served archive's checksum, local URLs), as the CLI
    builds it from the registry; a subclass without its own `name` registers nothing."""
    class Fixed(Gtzan):
        def __init__(self, **options: object) -> None:
            super().__init__(**{**options, **fixed})

    return Fixed


def test_cli_with_a_local_archive_opens_no_connection_and_indexes(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, gtzan_archive: GtzanArchive) -> None:
    archive = workdir / "mine" / "genres.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(gtzan_archive.body)
    monkeypatch.setitem(REGISTRY, "gtzan", gtzan_with(sha256=gtzan_archive.sha256))
    forbid_connections(monkeypatch)
    dest = workdir / "out"
    result = CliRunner().invoke(app, ["download", "gtzan", "--archive", str(archive),
                                      "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert f"gtzan: 30 tracks in {dest / 'raw' / 'gtzan'}" in result.output
    tracks = pd.read_parquet(dest / "tracks" / "gtzan.parquet")
    assert_gtzan_indexed(tracks, dest / "raw" / "gtzan")
    assert not (workdir / "cache").exists(), "the cache was touched"


def test_cli_checks_a_local_archive_against_the_pinned_checksum(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, gtzan_archive: GtzanArchive) -> None:
    archive = workdir / "genres.tar.gz"
    archive.write_bytes(gtzan_archive.body)
    forbid_connections(monkeypatch)
    result = CliRunner().invoke(app, ["download", "gtzan", "--archive", str(archive),
                                      "--dest", str(workdir / "out")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert f"expected {gtzan.ARCHIVE_CHECKSUM.hexdigest}" in result.output
    assert "Traceback" not in result.output
    assert files_under(workdir / "out") == []


def test_cli_with_every_url_dead_names_them_and_where_to_put_the_file(
        workdir: Path, monkeypatch: pytest.MonkeyPatch, http_server: FileServer) -> None:
    urls = [f"http://127.0.0.1:{unused_port()}/genres.tar.gz",
            http_server.url("/gone/genres.tar.gz")]
    monkeypatch.setitem(REGISTRY, "gtzan", gtzan_with(urls=urls))
    result = CliRunner().invoke(app, ["download", "gtzan", "--dest", str(workdir / "out")])
    assert result.exit_code == 1
    message = result.output
    assert message.startswith("error: could not download genres.tar.gz")
    for url in urls:
        assert url in message
    assert "HTTP 404" in message
    assert f"place it at {workdir / 'cache' / 'datasets' / 'genres.tar.gz'}" in message
    assert f"sha256:{gtzan.ARCHIVE_CHECKSUM.hexdigest}" in message
    assert files_under(workdir / "out") == []


# --- 8: the `standard` protocol's lists ---------------------------------------------------------

LIST_FILES = ("train_filtered.txt", "valid_filtered.txt", "test_filtered.txt")


def _fault_filtered_lists() -> tuple[dict[str, bytes], dict[str, str]]:
    """Lists in the fault-filtered format, and the split each listed track must get.

    Every genre's .00000 is in train, .00001 in valid or test; .00002 is listed only for
    the last five genres, so the first five have a usable track the protocol leaves out.
    The broken jazz.00000 is listed, as a real list could name a track a copy lacks.
    """
    expected: dict[str, str] = {}
    lines: dict[str, list[str]] = {name: [] for name in LIST_FILES}
    for index, genre in enumerate(GTZAN_GENRES):
        picks = {0: "train_filtered.txt",
                 1: "valid_filtered.txt" if index % 2 else "test_filtered.txt"}
        if index >= 5:
            picks[2] = "test_filtered.txt"
        for clip, file_name in picks.items():
            lines[file_name].append(f"{genre}/{genre}.{clip:05d}.wav")
            expected[f"{genre}.{clip:05d}"] = {"train_filtered.txt": "train",
                                               "valid_filtered.txt": "val",
                                               "test_filtered.txt": "test"}[file_name]
    bodies = {name: ("\n".join(rows) + "\n").encode() for name, rows in lines.items()}
    return bodies, expected


def _standard_source(server: FileServer, archive: GtzanArchive,
                     bodies: dict[str, bytes]) -> dict[str, Any]:
    for name, body in bodies.items():
        server.serve(f"/lists/{name}", body)
    return {"urls": [serve_gtzan(server, archive)], "sha256": archive.sha256,
            "split_list_base_url": server.url("/lists/"),
            "split_list_sha256": {name: hashlib.sha256(body).hexdigest()
                                  for name, body in bodies.items()}}


def test_standard_split_assigns_exactly_the_served_lists(
        workdir: Path, http_server: FileServer, gtzan_archive: GtzanArchive) -> None:
    bodies, expected = _fault_filtered_lists()
    write_params(workdir, "gtzan", _standard_source(http_server, gtzan_archive, bodies),
                 protocol="standard")
    tracks = run_download_stage("gtzan")
    stages.split.main(["--dataset", "gtzan"])
    split = pd.read_parquet(workdir / "data" / "splits" / "gtzan.parquet")
    del expected["jazz.00000"]  # listed, but unreadable: never split
    assert dict(zip(split["track_id"], split["split"], strict=True)) == expected
    left_out = {f"{genre}.00002" for genre in GTZAN_GENRES[:5]}
    assert left_out <= set(usable_tracks(tracks)["track_id"])
    assert left_out.isdisjoint(split["track_id"])
    assert (split["label"] == split["track_id"].str.split(".").str[0]).all()
    for name in LIST_FILES:
        assert len(http_server.requests_for(f"/lists/{name}")) == 1


def test_standard_split_refuses_a_list_with_the_wrong_checksum(
        workdir: Path, http_server: FileServer, gtzan_archive: GtzanArchive) -> None:
    bodies, _ = _fault_filtered_lists()
    source = _standard_source(http_server, gtzan_archive, bodies)
    pinned = source["split_list_sha256"]["valid_filtered.txt"]
    bodies["valid_filtered.txt"] += b"rock/rock.00000.wav\n"
    http_server.serve("/lists/valid_filtered.txt", bodies["valid_filtered.txt"])
    write_params(workdir, "gtzan", source, protocol="standard")
    run_download_stage("gtzan")
    with pytest.raises(ChecksumError, match=f"valid_filtered.txt.*expected {pinned}"):
        stages.split.main(["--dataset", "gtzan"])
    assert not (workdir / "data" / "splits").exists()
    assert "valid_filtered.txt" not in {p.name for p in (workdir / "cache").rglob("*")}


@pytest.mark.parametrize(("digests", "complaint"), [
    ({"train_filtered.txt": "0" * 64}, "expected a mapping from each of train_filtered.txt"),
    (dict.fromkeys(LIST_FILES, "0" * 64) | {"test_filtered.txt": "not hex"},
     r"split_list_sha256\.test_filtered\.txt: .*not a sha256 digest"),
    (["0" * 64] * 3, "expected a mapping"),
])
def test_split_list_checksums_from_params_are_checked_when_the_dataset_is_built(
        digests: Any, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        get_dataset("gtzan", split_list_sha256=digests)
    assert get_dataset("gtzan").split_list_checksums[LIST_FILES[0]].hexdigest == (
        gtzan.SPLIT_LIST_CHECKSUMS[LIST_FILES[0]])


def test_cli_with_a_missing_local_archive_names_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["download", "gtzan", "--archive",
                                      str(tmp_path / "genres.tar.gz"), "--dest",
                                      str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert "--archive" in result.output and "no such file" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "data" / "tracks").exists()


@pytest.mark.parametrize("flag", ["--dest", "--archive", "--metadata-archive"])
def test_cli_flag_errors_name_the_flag_without_a_traceback(tmp_path: Path, flag: str) -> None:
    """A --dest that is a file printed a traceback; a missing archive named the params key
    (`archive`) rather than the flag."""
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    value = {"--dest": a_file, "--archive": tmp_path / "nope.tar.gz",
             "--metadata-archive": tmp_path / "nope.zip"}[flag]
    dataset = "fma_small" if flag == "--metadata-archive" else "gtzan"
    result = CliRunner().invoke(app, ["download", dataset, flag, str(value)])
    assert result.exit_code == 2, result.output
    assert flag in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
