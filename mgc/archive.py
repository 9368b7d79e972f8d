"""Unpack untrusted archives without letting them write outside their folder or fill the disk.

Dataset archives come from mirrors we do not control. A member named `../x` or `/etc/x`, a
link pointing out of the tree, a device file, or a small file that inflates to terabytes is
refused before anything is written. Members go to a temp folder next to `dest` (same
filesystem) that is renamed onto `dest` only when complete, so an interrupted unpack never
leaves a half tree that a later stage would mistake for a whole one.
"""

from __future__ import annotations

import glob
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

from mgc.errors import UserError

_Member = TypeVar("_Member", tarfile.TarInfo, zipfile.ZipInfo)
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError)
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")


class ArchiveError(UserError):
    """An archive could not be unpacked: unreadable, too large for the disk, or unsafe."""


class UnsafeArchiveError(ArchiveError, ValueError):
    """A member would escape the target folder, is a device, or the archive is a bomb."""


MAX_MEMBERS = 50_000
"""Members an archive may hold: FMA-small has 8,000 tracks, GTZAN 1,000; a listing of
100,000 tiny members is a way to exhaust inodes and time, not a dataset."""
MAX_DEPTH = 32
"""Path components a member name may have (datasets nest 3 deep); thousands of nested
folders made extraction raise RecursionError."""


def safe_extract(archive: Path, dest: Path, *, max_ratio: float = 200.0,
                 max_total_bytes: int | None = None, max_members: int = MAX_MEMBERS,
                 progress: bool = False) -> Path:
    """Unpack a zip or tar (.gz/.bz2/.xz) archive into the folder `dest`; return `dest`.

    Every member is checked before anything is written: absolute names, `..` components,
    symlinks or hardlinks resolving outside `dest`, device files and FIFOs are refused with
    `UnsafeArchiveError` naming the member. So is an archive whose members add up to more
    than `max_ratio` times its own size or more than `max_total_bytes` (a decompression
    bomb), one with more than `max_members` members, a member deeper than MAX_DEPTH folders,
    and two members of the same name (which would silently overwrite each other, the last
    one winning), and an unpack the free disk space cannot hold raises `ArchiveError`. Tar members
    are then extracted with tarfile's `data` filter as a second line of defence (it also
    catches escapes through chains of links). An existing `dest` is replaced only once the
    new tree is complete; on any error it is left as it was.
    """
    archive, dest = Path(archive), Path(dest)
    if max_ratio <= 0:
        raise ValueError(f"max_ratio={max_ratio!r} must be > 0")
    if max_total_bytes is not None and max_total_bytes <= 0:
        raise ValueError(f"max_total_bytes={max_total_bytes!r} must be > 0 or None")
    if max_members < 1:
        raise ValueError(f"max_members={max_members!r} must be >= 1")
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    limit = max_ratio * archive.stat().st_size
    if max_total_bytes is not None:
        limit = min(limit, max_total_bytes)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if tarfile.is_tarfile(archive):
        extract = _extract_tar
    elif zipfile.is_zipfile(archive):
        extract = _extract_zip
    else:
        raise ArchiveError(f"{archive} is neither a zip nor a tar(.gz/.bz2/.xz) archive")
    _remove_leftovers(dest)
    temp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.partial"
    temp.mkdir()
    try:
        extract(archive, temp, limit=limit, max_ratio=max_ratio,
                max_total_bytes=max_total_bytes, listing=_Listing(archive, max_members),
                progress=progress)
        _replace_dir(temp, dest)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return dest


class _Listing:
    """The member names seen so far: refuses too many, too deep, or one name twice."""

    def __init__(self, archive: Path, max_members: int) -> None:
        self.archive, self.max_members = archive, max_members
        self.seen: dict[str, bool] = {}

    def add(self, name: str, is_dir: bool) -> None:
        key = posixpath.normpath(name.replace("\\", "/"))
        if len(self.seen) >= self.max_members:
            raise UnsafeArchiveError(f"{self.archive.name}: more than max_members="
                                     f"{self.max_members:,} members; refusing to unpack it")
        if key.count("/") + 1 > MAX_DEPTH:
            raise UnsafeArchiveError(f"{self.archive.name}: member {name[:200]!r}... is "
                                     f"{key.count('/') + 1} folders deep, over {MAX_DEPTH}")
        if key in self.seen and not (is_dir and self.seen[key]):
            raise UnsafeArchiveError(f"{self.archive.name}: member {name!r} appears more than "
                                     "once; unpacking would keep only the last copy")
        self.seen[key] = is_dir


def _extract_tar(archive: Path, temp: Path, *, limit: float, max_ratio: float,
                 max_total_bytes: int | None, listing: _Listing, progress: bool) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members: list[tarfile.TarInfo] = []
            total = 0
            for member in tar:
                _check_tar_member(archive, member)
                listing.add(member.name, member.isdir())
                total += member.size if member.isreg() else 0
                if total > limit:
                    _refuse_bomb(archive, f"at least {total:,}", max_ratio, max_total_bytes)
                members.append(member)
            _check_free_space(archive, temp, total)
            try:
                tar.extractall(temp, members=_counted(members, total, archive, progress),
                               filter="data")
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(
                    f"{archive.name}: member {error.tarinfo.name!r} refused: {error}"
                ) from error
    except _CORRUPT as error:
        raise ArchiveError(f"{archive} is corrupt or truncated: {error}") from error


def _extract_zip(archive: Path, temp: Path, *, limit: float, max_ratio: float,
                 max_total_bytes: int | None, listing: _Listing, progress: bool) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for member in members:
                _check_zip_member(archive, member)
                listing.add(member.filename, member.is_dir())
            # Sizes are taken from the central directory; zipfile stops reading a member
            # at its declared size and checks its CRC, so they cannot understate the output.
            total = sum(member.file_size for member in members)
            if total > limit:
                _refuse_bomb(archive, f"{total:,}", max_ratio, max_total_bytes)
            _check_free_space(archive, temp, total)
            zipped.extractall(temp, members=_counted(members, total, archive, progress))
    except _CORRUPT as error:
        raise ArchiveError(f"{archive} is corrupt or truncated: {error}") from error


def _check_name(archive: Path, name: str) -> None:
    """Refuse names that are empty, absolute, or climb with `..` (either slash counts)."""
    parts = re.split(r"[\\/]", name)
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"{archive.name}: member name {name!r} is empty or has NUL")
    if name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path")
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} climbs out with '..'")


def _check_tar_member(archive: Path, member: tarfile.TarInfo) -> None:
    _check_name(archive, member.name)
    if member.isdev():
        raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} is a device or FIFO")
    if member.issym():
        target = posixpath.join(posixpath.dirname(member.name), member.linkname)
        if posixpath.isabs(member.linkname) or _escapes(target):
            raise UnsafeArchiveError(f"{archive.name}: symlink {member.name!r} -> "
                                     f"{member.linkname!r} points outside the archive's folder")
    elif member.islnk():
        if posixpath.isabs(member.linkname) or _escapes(member.linkname):
            raise UnsafeArchiveError(f"{archive.name}: hardlink {member.name!r} -> "
                                     f"{member.linkname!r} points outside the archive's folder")
    elif not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} has unsupported "
                                 f"type {member.type!r}")


def _escapes(relative: str) -> bool:
    normal = posixpath.normpath(relative)
    return normal == ".." or normal.startswith("../")


def _check_zip_member(archive: Path, member: zipfile.ZipInfo) -> None:
    """Refuse unsafe names and anything but files and folders.

    zipfile would write a symlink entry as a small text file holding its target, silently
    changing the tree, so links are refused rather than mangled.
    """
    _check_name(archive, member.filename)
    mode = member.external_attr >> 16
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a device or special file"
        raise UnsafeArchiveError(f"{archive.name}: member {member.filename!r} is {kind}; "
                                 f"only files and folders are unpacked from zip archives")


def _refuse_bomb(archive: Path, total: str, max_ratio: float,
                 max_total_bytes: int | None) -> None:
    size = archive.stat().st_size
    cap = f" or max_total_bytes={max_total_bytes:,}" if max_total_bytes is not None else ""
    raise UnsafeArchiveError(
        f"{archive.name}: members add up to {total} bytes from a {size:,}-byte archive, over "
        f"max_ratio={max_ratio:g} x its size{cap}; refusing a possible decompression bomb"
    )


def _check_free_space(archive: Path, temp: Path, needed: int) -> None:
    free = shutil.disk_usage(temp).free
    if needed > free:
        raise ArchiveError(f"not enough free space to unpack {archive.name} into "
                           f"{temp.parent}: {needed:,} bytes needed, {free:,} bytes free")


def _counted(members: Iterable[_Member], total: int, archive: Path,
             progress: bool) -> Iterator[_Member]:
    """Yield members to the extractor while a progress bar counts their bytes."""
    with tqdm(total=total, desc=f"unpack {archive.name}", unit="B", unit_scale=True,
              unit_divisor=1024, disable=not progress, leave=False) as bar:
        for member in members:
            yield member
            bar.update(member.size if isinstance(member, tarfile.TarInfo) else member.file_size)


def _remove_leftovers(dest: Path) -> None:
    """Delete the temp trees that an unpack into `dest` killed mid-way left beside it.

    Left in place, a hidden `.<dest>.<id>.partial` copy would be found by a dataset's file
    listing (globs match hidden folders) and indexed as a second set of tracks.
    """
    for pattern in (f".{glob.escape(dest.name)}.*.partial", f".{glob.escape(dest.name)}.*.old"):
        for leftover in dest.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _replace_dir(new: Path, dest: Path) -> None:
    """Rename `new` onto `dest`; an old `dest` is moved aside first and deleted last."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(new, dest)
        return
    graveyard = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.old"
    graveyard.mkdir()
    os.replace(dest, graveyard / dest.name)
    try:
        os.replace(new, dest)
    except BaseException:
        os.replace(graveyard / dest.name, dest)
        raise
    shutil.rmtree(graveyard)
