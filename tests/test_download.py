"""mgc.download against a local HTTP server: resume, mirrors, checksums, refusals."""

from __future__ import annotations

import hashlib
import random
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from mgc import download
from mgc.download import (
    Checksum,
    ChecksumError,
    DownloadError,
    fetch_file,
    file_digest,
    sha256_file,
)
from tests.http_server import FileServer, unused_port

SIZE = 600_000
BODY = random.Random(0).randbytes(SIZE)
SHA256 = hashlib.sha256(BODY).hexdigest()
GOOD = Checksum("sha256", SHA256)


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def fetch(urls: list[str], dest: Path, checksum: Checksum | None = GOOD, **options: object) -> Path:
    options = {"progress": False, "timeout_s": 5, "retries": 3, "backoff_s": 0} | options
    return fetch_file(urls, dest, checksum, **options)  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.parametrize("algorithm", ["sha256", "sha1", "md5"])
def test_full_download_is_verified_with_each_algorithm(
        http_server: FileServer, tmp_path: Path, algorithm: str) -> None:
    url = http_server.serve("/data.bin", BODY)
    checksum = Checksum(algorithm, hashlib.new(algorithm, BODY).hexdigest())
    dest = fetch([url], tmp_path / "data.bin", checksum)
    assert dest == tmp_path / "data.bin"
    assert dest.read_bytes() == BODY
    assert leftovers(tmp_path) == ["data.bin"]
    assert http_server.bytes_served == SIZE
    assert [request.range for request in http_server.requests] == [None]


def test_file_digests_agree_with_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(BODY)
    assert sha256_file(path) == SHA256
    for algorithm in ("sha1", "md5"):
        assert file_digest(path, algorithm) == hashlib.new(algorithm, BODY).hexdigest()
    with pytest.raises(ValueError, match=r"'crc32'.*sha256, sha1, md5"):
        file_digest(path, "crc32")


def test_prefix_checksum_accepts_a_matching_prefix_only(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(BODY)
    Checksum("sha256", SHA256[:8].upper()).verify(path)
    wrong_prefix = format(int(SHA256[:8], 16) ^ 1, "08x")
    with pytest.raises(ChecksumError, match=f"{path}.*{SHA256}.*expected {wrong_prefix}"):
        Checksum("sha256", wrong_prefix).verify(path)


@pytest.mark.parametrize(("algorithm", "hexdigest", "complaint"), [
    ("sha512", "0" * 128, "algorithm='sha512' is not supported"),
    ("sha256", "0" * 7, "8 to 64 hex digits"),
    ("sha1", "0" * 41, "8 to 40 hex digits"),
    ("md5", "z" * 32, "not a md5 digest"),
])
def test_checksum_rejects_bad_specifications(algorithm: str, hexdigest: str,
                                             complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Checksum(algorithm, hexdigest)


def test_dropped_connection_resumes_without_refetching(
        http_server: FileServer, tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY, drop_after_bytes=SIZE // 2)
    dest = fetch([url], tmp_path / "data.bin")
    assert dest.read_bytes() == BODY
    assert [request.range for request in http_server.requests] == [None, f"bytes={SIZE // 2}-"]
    assert http_server.bytes_served == SIZE
    assert leftovers(tmp_path) == ["data.bin"]


def test_server_ignoring_range_restarts_from_zero(http_server: FileServer, tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY, ranges=False, drop_after_bytes=SIZE // 2)
    dest = fetch([url], tmp_path / "data.bin")
    assert dest.read_bytes() == BODY
    assert [request.range for request in http_server.requests] == [None, f"bytes={SIZE // 2}-"]
    assert http_server.bytes_served == SIZE // 2 + SIZE


def test_part_left_by_an_earlier_run_is_resumed(http_server: FileServer, tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(BODY[:100_000])
    fetch([url], dest)
    assert dest.read_bytes() == BODY
    assert http_server.bytes_served == SIZE - 100_000


def test_complete_part_is_verified_without_fetching_it_again(
        http_server: FileServer, tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(BODY)
    fetch([url], dest)
    assert dest.read_bytes() == BODY
    assert http_server.bytes_served == 0
    assert [request.range for request in http_server.requests] == [f"bytes={SIZE}-"]


def test_part_longer_than_the_file_is_discarded(http_server: FileServer, tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(b"x" * (SIZE + 10))
    fetch([url], dest)
    assert dest.read_bytes() == BODY
    assert http_server.bytes_served == SIZE


def test_wrong_checksum_leaves_no_dest_and_no_part(http_server: FileServer,
                                                   tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    wrong = Checksum("sha256", "0" * 64)
    with pytest.raises(ChecksumError) as caught:
        fetch([url], tmp_path / "data.bin", wrong)
    message = str(caught.value)
    assert url in message and SHA256 in message and "0" * 64 in message
    assert str(tmp_path / "data.bin") in message
    assert leftovers(tmp_path) == []


def test_bad_mirror_does_not_hide_a_good_one(http_server: FileServer, tmp_path: Path) -> None:
    bad = http_server.serve("/bad.bin", BODY[::-1])
    good = http_server.serve("/good.bin", BODY)
    dest = fetch([bad, good], tmp_path / "data.bin")
    assert dest.read_bytes() == BODY
    assert [request.path for request in http_server.requests] == ["/bad.bin", "/good.bin"]
    assert leftovers(tmp_path) == ["data.bin"]


def test_dead_first_url_falls_back_to_the_second(http_server: FileServer, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/data.bin"
    good = http_server.serve("/data.bin", BODY)
    dest = fetch([dead, good], tmp_path / "data.bin")
    assert dest.read_bytes() == BODY
    assert http_server.bytes_served == SIZE


def test_all_urls_failing_names_each_url_and_the_dest(http_server: FileServer,
                                                      tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/data.bin"
    missing = http_server.url("/missing.bin")
    dest = tmp_path / "sub" / "data.bin"
    with pytest.raises(DownloadError) as caught:
        fetch([dead, missing], dest, retries=2)
    assert type(caught.value) is DownloadError
    message = str(caught.value)
    assert f"{dead}: [Errno 111] Connection refused (gave up after 2 retries)" in message
    assert f"{missing}: HTTP 404" in message
    assert f"place it at {dest}" in message and SHA256 in message
    assert len(http_server.requests_for("/missing.bin")) == 1
    assert not dest.exists()


def test_no_urls_and_no_file_says_where_to_place_it(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        fetch([], tmp_path / "x.bin")
    assert "no URL given for x.bin" in str(caught.value)
    assert f"place it at {tmp_path / 'x.bin'}" in str(caught.value)


def test_verified_dest_is_returned_without_any_request(http_server: FileServer,
                                                       tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    dest = tmp_path / "data.bin"
    dest.write_bytes(BODY)
    assert fetch([url], dest) == dest
    assert http_server.requests == []


def test_dest_with_wrong_content_is_downloaded_again(http_server: FileServer,
                                                     tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"stale")
    fetch([url], dest)
    assert dest.read_bytes() == BODY


def test_without_checksum_any_existing_dest_is_kept(http_server: FileServer,
                                                    tmp_path: Path) -> None:
    url = http_server.serve("/data.bin", BODY)
    dest = tmp_path / "data.bin"
    fetch([url], dest, checksum=None)
    assert dest.read_bytes() == BODY
    dest.write_bytes(b"edited by hand")
    fetch([url], dest, checksum=None)
    assert dest.read_bytes() == b"edited by hand"
    assert len(http_server.requests) == 1


@pytest.mark.parametrize(("retries", "succeeds"), [(2, True), (1, False)])
def test_server_errors_are_retried_up_to_retries(http_server: FileServer, tmp_path: Path,
                                                 retries: int, succeeds: bool) -> None:
    url = http_server.serve("/data.bin", BODY, fail_statuses=(503, 502))
    dest = tmp_path / "data.bin"
    if succeeds:
        fetch([url], dest, retries=retries)
        assert dest.read_bytes() == BODY
    else:
        with pytest.raises(DownloadError, match="HTTP 502"):
            fetch([url], dest, retries=retries)
    assert len(http_server.requests) == retries + 1


def test_redirects_are_followed_to_http_only(http_server: FileServer, tmp_path: Path) -> None:
    target = http_server.serve("/real.bin", BODY)
    moved = http_server.serve("/moved.bin", location=target)
    assert fetch([moved], tmp_path / "a.bin").read_bytes() == BODY
    sneaky = http_server.serve("/sneaky.bin", location="ftp://example.org/a.bin")
    with pytest.raises(DownloadError, match=r"redirect to 'ftp://example.org/a.bin' refused"):
        fetch([sneaky], tmp_path / "b.bin")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "data.bin"])
def test_non_http_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="only http/https"):
        fetch([url], tmp_path / "data.bin")


def test_a_single_string_is_not_taken_for_a_list_of_urls(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not one string"):
        fetch("http://127.0.0.1/data.bin", tmp_path / "data.bin")  # type: ignore[arg-type]


def test_progress_bar_goes_to_stderr_only_when_asked(http_server: FileServer, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = http_server.serve("/data.bin", BODY)
    fetch([url], tmp_path / "quiet.bin")
    assert capsys.readouterr().err == ""
    fetch([url], tmp_path / "loud.bin", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "loud.bin: 100%" in captured.err and "586k/586k" in captured.err
    assert "B/s]" in captured.err


def test_too_little_disk_space_is_reported_before_writing(
        http_server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = http_server.serve("/data.bin", BODY)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: usage(10**9, 10**9, 1000))
    with pytest.raises(DownloadError, match=f"{SIZE:,} bytes needed, 1,000 bytes free"):
        fetch([url], tmp_path / "data.bin")
    assert leftovers(tmp_path) == []
