"""mgc.archive: safe unpacking of zip and tar archives, refusals, bombs, atomic replacement."""

from __future__ import annotations

import io
import random
import re
import stat
import tarfile
import zipfile
from collections import namedtuple
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgc import archive as archive_module
from mgc.archive import ArchiveError, UnsafeArchiveError, safe_extract

PAYLOAD = random.Random(1).randbytes(300_000)
TEXT = b"hello\n"

Entry = tuple[str, ...] | tuple[str, str, bytes]


def make_tar(path: Path, entries: list[Entry], mode: str = "w:gz") -> Path:
    """Write a tar from (kind, name[, payload or link target]) entries, names kept verbatim."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = rest[0]
                info.size = len(data)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def make_zip(path: Path, entries: list[tuple[str, bytes]], symlink: tuple[str, str] | None = None,
             ) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries:
            zipped.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, symlink[1])
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An empty folder to unpack into (as `out/tree`), apart from where archives are made."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def assert_nothing_extracted(out: Path) -> None:
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_tar_unpacks_files_folders_and_links_inside(tmp_path: Path, out: Path, mode: str) -> None:
    archive = make_tar(tmp_path / "in" / "a.tar", [
        ("dir", "top"),
        ("file", "top/a.txt", TEXT),
        ("file", "top/sub/b.bin", PAYLOAD),
        ("sym", "top/sub/link", "../a.txt"),
        ("link", "top/hard", "top/a.txt"),
    ], mode)
    dest = safe_extract(archive, out / "tree")
    assert dest == out / "tree"
    assert (dest / "top/a.txt").read_bytes() == TEXT
    assert (dest / "top/sub/b.bin").read_bytes() == PAYLOAD
    assert (dest / "top/sub/link").is_symlink()
    assert (dest / "top/sub/link").resolve() == (dest / "top/a.txt").resolve()
    assert (dest / "top/hard").read_bytes() == TEXT
    assert [path.name for path in out.iterdir()] == ["tree"]


def test_zip_unpacks_nested_files(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("fma/000/000002.mp3", PAYLOAD),
                                            ("fma/README.txt", TEXT), ("fma/empty/", b"")])
    dest = safe_extract(archive, out / "tree")
    assert (dest / "fma/000/000002.mp3").read_bytes() == PAYLOAD
    assert (dest / "fma/README.txt").read_bytes() == TEXT
    assert (dest / "fma/empty").is_dir()
    assert [path.name for path in out.iterdir()] == ["tree"]


def test_existing_dest_is_replaced_whole_and_kept_on_failure(tmp_path: Path, out: Path) -> None:
    dest = out / "tree"
    (dest / "old").mkdir(parents=True)
    (dest / "old/stale.txt").write_bytes(b"stale")
    safe_extract(make_zip(tmp_path / "new.zip", [("new.txt", TEXT)]), dest)
    assert sorted(path.name for path in dest.iterdir()) == ["new.txt"]
    bad = make_zip(tmp_path / "bad.zip", [("fine.txt", TEXT), ("../evil.txt", TEXT)])
    with pytest.raises(UnsafeArchiveError):
        safe_extract(bad, dest)
    assert sorted(path.name for path in dest.iterdir()) == ["new.txt"]
    assert [path.name for path in out.iterdir()] == ["tree"]


@pytest.mark.parametrize(("entry", "complaint"), [
    (("file", "../x", TEXT), "member '../x' climbs out with '..'"),
    (("file", "a/../../x", TEXT), "member 'a/../../x' climbs out"),
    (("file", "/abs/x", TEXT), "member '/abs/x' has an absolute path"),
    (("sym", "etc", "/etc"), "symlink 'etc' -> '/etc' points outside"),
    (("sym", "a/up", "../../etc"), "symlink 'a/up' -> '../../etc' points outside"),
    (("link", "passwd", "/etc/passwd"), "hardlink 'passwd' -> '/etc/passwd' points outside"),
    (("link", "x", "../outside.txt"), "hardlink 'x' -> '../outside.txt' points outside"),
    (("chr", "dev/null"), "member 'dev/null' is a device or FIFO"),
    (("fifo", "pipe"), "member 'pipe' is a device or FIFO"),
])
def test_unsafe_tar_members_are_refused_before_anything_is_written(
        tmp_path: Path, out: Path, entry: Entry, complaint: str) -> None:
    archive = make_tar(tmp_path / "in" / "bad.tar.gz",
                       [("file", "first.txt", TEXT), entry, ("file", "last.txt", TEXT)])
    with pytest.raises(UnsafeArchiveError, match=f"bad.tar.gz: {complaint}"):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in", "out"]


def test_link_chain_escaping_is_caught_by_the_data_filter(tmp_path: Path, out: Path) -> None:
    """`b -> a/..` looks inside by its text, but `a -> .` makes it the parent folder."""
    archive = make_tar(tmp_path / "chain.tar", [("sym", "a", "."), ("sym", "b", "a/..")], "w")
    with pytest.raises(UnsafeArchiveError, match="member 'b' refused"):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)


@pytest.mark.parametrize(("name", "complaint"), [
    ("../x", "climbs out"),
    ("a/../../x", "climbs out"),
    ("..\\x", "climbs out"),
    ("/abs/x", "has an absolute path"),
    ("C:/x", "has an absolute path"),
])
def test_unsafe_zip_names_are_refused(tmp_path: Path, out: Path, name: str,
                                      complaint: str) -> None:
    archive = make_zip(tmp_path / "bad.zip", [("first.txt", TEXT), (name, TEXT)])
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.namelist() == ["first.txt", name]
    with pytest.raises(UnsafeArchiveError,
                       match=re.escape(f"bad.zip: member {name!r} {complaint}")):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)


def test_zip_symlinks_are_refused(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "link.zip", [("first.txt", TEXT)], symlink=("etc", "/etc"))
    with pytest.raises(UnsafeArchiveError, match="member 'etc' is a symlink"):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)


def test_zip_bomb_is_refused_by_ratio(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", [("zeros.bin", bytes(50 * 2**20))])
    ratio = 50 * 2**20 / archive.stat().st_size
    assert ratio > 200
    with pytest.raises(UnsafeArchiveError, match=r"52,428,800 bytes .* max_ratio=200 .*bomb"):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)


def test_tar_bomb_is_refused_by_ratio(tmp_path: Path, out: Path) -> None:
    archive = make_tar(tmp_path / "bomb.tar.gz", [("file", "small.txt", TEXT),
                                                  ("file", "zeros.bin", bytes(20 * 2**20))])
    with pytest.raises(UnsafeArchiveError, match=r"at least 20,971,526 bytes .*bomb"):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)


def test_max_total_bytes_caps_an_ordinary_archive(tmp_path: Path, out: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", [("a.bin", PAYLOAD), ("b.txt", TEXT)])
    with pytest.raises(UnsafeArchiveError, match="max_total_bytes=300,000"):
        safe_extract(archive, out / "tree", max_total_bytes=300_000)
    assert_nothing_extracted(out)
    safe_extract(archive, out / "tree", max_total_bytes=300_006)
    assert (out / "tree/a.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_too_little_disk_space_is_reported_before_writing(
        tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    if kind == "tar":
        archive = make_tar(tmp_path / "a.tar.gz", [("file", "a.bin", PAYLOAD)])
    else:
        archive = make_zip(tmp_path / "a.zip", [("a.bin", PAYLOAD)])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(archive_module.shutil, "disk_usage", lambda _: usage(10**9, 10**9, 1000))
    with pytest.raises(ArchiveError, match=r"300,000 bytes needed, 1,000 bytes free"):
        safe_extract(archive, out / "tree")
    assert_nothing_extracted(out)


def test_truncated_archive_is_reported_and_leaves_nothing(tmp_path: Path, out: Path) -> None:
    whole = make_tar(tmp_path / "whole.tar.gz", [("file", "a.bin", PAYLOAD),
                                                 ("file", "b.bin", PAYLOAD)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=r"cut\.tar\.gz is corrupt or truncated"):
        safe_extract(cut, out / "tree")
    assert_nothing_extracted(out)


def test_other_files_and_arguments_are_refused(tmp_path: Path, out: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(TEXT * 100)
    with pytest.raises(ArchiveError, match="neither a zip nor a tar"):
        safe_extract(text, out / "tree")
    with pytest.raises(FileNotFoundError, match=r"missing\.zip"):
        safe_extract(tmp_path / "missing.zip", out / "tree")
    with pytest.raises(ValueError, match="max_ratio=0"):
        safe_extract(text, out / "tree", max_ratio=0)
    assert_nothing_extracted(out)


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@settings(max_examples=30)
@given(kind=st.sampled_from(["tar", "zip"]), count=st.integers(1, 40),
       depth=st.integers(1, 2 * archive_module.MAX_DEPTH),
       duplicate=st.sampled_from([None, "same", "dot-slash", "double-slash"]))
def test_member_count_depth_and_duplicates_are_limited(tmp_path_factory: pytest.TempPathFactory,
                                                       kind: str, count: int, depth: int,
                                                       duplicate: str | None) -> None:
    """100,000 tiny members unpacked without limit, duplicate names were unpacked silently
    (the last won) and very deep paths raised RecursionError; each is now refused, naming
    the limit or the member, before anything is written (`max_members` here: 20)."""
    root = tmp_path_factory.mktemp("limits")
    out = root / "out"
    deep = "/".join(["d"] * (depth - 1) + ["deep.txt"])
    names = [f"f{i}.txt" for i in range(count - 1)] + ["sub/g.txt", deep]
    if duplicate:
        names.append({"same": "sub/g.txt", "dot-slash": "./sub/g.txt",
                      "double-slash": "sub//g.txt"}[duplicate])
    if kind == "tar":
        archive = make_tar(root / "a.tar", [("file", name, TEXT) for name in names])
    else:
        archive = make_zip(root / "a.zip", [(name, TEXT) for name in names])
    too_many, too_deep = len(names) > 20, depth > archive_module.MAX_DEPTH
    try:
        safe_extract(archive, out / "tree", max_members=20)
    except UnsafeArchiveError as error:
        message = str(error)
        assert ("max_members=20" in message and too_many) or (
            "folders deep" in message and too_deep) or (
            "more than once" in message and duplicate is not None)
        assert not (out / "tree").exists()
        return
    assert not (too_many or too_deep or duplicate)
    assert (out / "tree" / deep).read_bytes() == TEXT


def test_a_folder_listed_twice_is_not_a_duplicate(tmp_path: Path, out: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [("dir", "genres"), ("dir", "genres/"),
                                            ("file", "genres/a.au", TEXT)])
    assert (safe_extract(archive, out / "tree") / "genres" / "a.au").read_bytes() == TEXT
