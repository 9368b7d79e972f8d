"""Resumable, verified HTTP downloads: the one way bytes from the network enter the project.

Datasets are gigabytes on hosts that come and go (GTZAN's canonical host is dead), so a
download has to survive a dropped connection without starting over, try mirrors in order, and
never hand back a file whose digest was not checked against a pinned one. Bytes accumulate in
`<dest>.part` and are renamed onto `dest` only after they verify, so `dest` is either absent or
whole and correct, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path

from tqdm.auto import tqdm

from mgc import __version__
from mgc.errors import UserError

DIGEST_HEX_LENGTHS = {"sha256": 64, "sha1": 40, "md5": 32}
MIN_PREFIX_HEX = 8
ALLOWED_SCHEMES = ("http", "https")
CHUNK_BYTES = 1 << 20
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")

log = logging.getLogger(__name__)


class DownloadError(UserError):
    """A file could not be fetched; the message says from where, why, and where to put it."""


class ChecksumError(DownloadError):
    """A file's digest differs from the pinned one: a corrupt or tampered copy."""


@dataclass(frozen=True)
class Checksum:
    """A pinned digest of a file.

    `hexdigest` may be a prefix of at least 8 hex digits (as torch.hub names weight files),
    which is enough to catch corruption while letting a file name carry its own checksum.
    """

    algorithm: str
    hexdigest: str

    def __post_init__(self) -> None:
        if self.algorithm not in DIGEST_HEX_LENGTHS:
            raise ValueError(f"Checksum.algorithm={self.algorithm!r} is not supported; "
                             f"allowed: {', '.join(DIGEST_HEX_LENGTHS)}")
        full = DIGEST_HEX_LENGTHS[self.algorithm]
        if not (isinstance(self.hexdigest, str)
                and re.fullmatch(f"[0-9a-fA-F]{{{MIN_PREFIX_HEX},{full}}}", self.hexdigest)):
            raise ValueError(f"Checksum.hexdigest={self.hexdigest!r} is not a {self.algorithm} "
                             f"digest or prefix: expected {MIN_PREFIX_HEX} to {full} hex digits")
        object.__setattr__(self, "hexdigest", self.hexdigest.lower())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"

    def matches(self, path: Path) -> bool:
        """Whether the file at `path` has this digest (or a digest starting with this prefix)."""
        return file_digest(path, self.algorithm).startswith(self.hexdigest)

    def verify(self, path: Path) -> None:
        """Raise `ChecksumError` naming the file and both digests unless `path` matches."""
        actual = file_digest(path, self.algorithm)
        if not actual.startswith(self.hexdigest):
            raise ChecksumError(f"{path}: {self.algorithm} is {actual}, expected {self.hexdigest}")


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file, read in chunks (archives are larger than memory)."""
    if algorithm not in DIGEST_HEX_LENGTHS:
        raise ValueError(f"algorithm={algorithm!r} is not supported; "
                         f"allowed: {', '.join(DIGEST_HEX_LENGTHS)}")
    with open(path, "rb") as handle:
        # usedforsecurity=False keeps md5/sha1 available on FIPS systems: this is integrity.
        return hashlib.file_digest(
            handle, lambda: hashlib.new(algorithm, usedforsecurity=False)
        ).hexdigest()


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


class _Retryable(Exception):
    """A failure that may pass on a second try: a dropped connection, a timeout, a 503."""


class _Permanent(Exception):
    """A failure that will not pass on a second try of the same URL: a 404, a bad redirect."""


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s), so a mirror cannot point us at file:// or ftp://."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urllib.parse.urlsplit(newurl).scheme
        if scheme not in ALLOWED_SCHEMES:
            raise urllib.error.HTTPError(
                newurl, code, f"redirect to {newurl!r} refused (only http/https)", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def fetch_file(urls: Sequence[str], dest: Path, checksum: Checksum | None, *,
               progress: bool = True, timeout_s: float = 30, retries: int = 3,
               backoff_s: float = 1.0) -> Path:
    """Download `dest` from the first of `urls` that delivers it intact; return `dest`.

    A `dest` that already verifies is returned without touching the network. Otherwise each
    URL is tried in order: bytes go to `<dest>.part`, resumed with an HTTP Range request
    from its current size (restarted from zero when a server ignores the range), and a
    dropped connection is retried from where it stopped. A retry that follows an attempt
    which made no progress counts against `retries` and waits `backoff_s`, doubling. The
    file is verified before it is renamed onto `dest`; a copy that fails verification is
    deleted and the next mirror is tried, so one bad mirror cannot hide a good one.

    Raises `ChecksumError` when some URL delivered a file with the wrong digest and none a
    good one, `DownloadError` when every URL failed otherwise; both list each URL with its
    error and say where to place the file by hand. A `.part` left by network failures is
    kept so the next run resumes it. With `checksum=None` nothing is verified and an
    existing `dest` is trusted as it is.
    """
    if isinstance(urls, str):
        raise TypeError(f"urls must be a sequence of URLs, not one string: {urls!r}")
    urls = tuple(urls)
    for url in urls:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ALLOWED_SCHEMES:
            raise ValueError(f"URL {url!r} has scheme {scheme!r}; only "
                             f"{'/'.join(ALLOWED_SCHEMES)} URLs are fetched")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s={timeout_s!r} must be > 0")
    if retries < 0:
        raise ValueError(f"retries={retries!r} must be >= 0")
    if backoff_s < 0:
        raise ValueError(f"backoff_s={backoff_s!r} must be >= 0")
    dest = Path(dest)
    if dest.is_file():
        if checksum is None or checksum.matches(dest):
            return dest
        log.warning("%s exists but does not match %s; downloading it again", dest, checksum)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[tuple[str, str]] = []
    bad_copy = False
    for url in urls:
        try:
            _download_with_retries(url, part, dest, progress=progress, timeout_s=timeout_s,
                                   retries=retries, backoff_s=backoff_s)
        except (_Retryable, _Permanent) as error:
            failures.append((url, str(error)))
            continue
        if checksum is not None:
            try:
                checksum.verify(part)
            except ChecksumError as error:
                part.unlink(missing_ok=True)
                failures.append((url, f"bad copy, deleted: {error}"))
                bad_copy = True
                continue
        os.replace(part, dest)
        return dest
    error_type = ChecksumError if bad_copy else DownloadError
    raise error_type(_failure_message(dest, checksum, failures))


def _failure_message(dest: Path, checksum: Checksum | None,
                     failures: list[tuple[str, str]]) -> str:
    if failures:
        tried = "\n".join(f"  - {url}: {why}" for url, why in failures)
        head = f"could not download {dest.name}; tried:\n{tried}\n"
    else:
        head = f"no URL given for {dest.name}.\n"
    must = f" (its {checksum} is checked)" if checksum is not None else ""
    return (f"{head}Download it by other means and place it at {dest}{must}; "
            f"the next run uses it without downloading.")


def _download_with_retries(url: str, part: Path, dest: Path, *, progress: bool, timeout_s: float,
                           retries: int, backoff_s: float) -> None:
    failures_without_progress = 0
    while True:
        size_before = _size(part)
        try:
            _download_once(url, part, dest, progress=progress, timeout_s=timeout_s)
            return
        except _Retryable as error:
            if _size(part) <= size_before:
                failures_without_progress += 1
                if failures_without_progress > retries:
                    raise _Retryable(f"{error} (gave up after {retries} retries)") from error
            delay_s = backoff_s * 2 ** max(0, failures_without_progress - 1)
            log.info("%s: %s; retrying in %.1f s from byte %d", url, error, delay_s, _size(part))
            time.sleep(delay_s)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _download_once(url: str, part: Path, dest: Path, *, progress: bool, timeout_s: float) -> None:
    """One HTTP request: append to (or restart) `part`, raising if it ends short."""
    offset = _size(part)
    headers = {"User-Agent": f"mgc/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            match = _UNSATISFIED_RANGE.fullmatch(error.headers.get("Content-Range", "").strip())
            if match and int(match.group(1)) == offset:
                return
            part.unlink()
            raise _Retryable(f"HTTP 416: {part.name} is longer than the remote file") from error
        if error.code in _RETRYABLE_STATUSES:
            raise _Retryable(f"HTTP {error.code} {error.reason}") from error
        raise _Permanent(f"HTTP {error.code} {error.reason}") from error
    except (OSError, HTTPException, ValueError) as error:
        raise _Retryable(_describe(error)) from error
    with response:
        total = _expected_total(response, offset)
        if response.status != 206:
            offset = 0
        # A restart truncates the .part, so what the disk must still hold is the same either way.
        _check_free_space(part, dest, None if total is None else total - _size(part))
        with open(part, "ab" if offset else "wb") as out, tqdm(
            total=total, initial=offset, desc=dest.name, unit="B", unit_scale=True,
            unit_divisor=1024, file=sys.stderr, disable=not progress,
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, HTTPException) as error:
                    raise _Retryable(f"connection lost: {_describe(error)}") from error
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    received = _size(part)
    if total is not None and received < total:
        raise _Retryable(f"connection closed after {received} of {total} bytes")


def _expected_total(response: HTTPResponse, offset: int) -> int | None:
    """The full file size the response promises, or None if it does not say.

    A 206 must start exactly at our offset: appending at any other place would corrupt the
    file, so such an answer is a failed attempt.
    """
    headers = response.headers
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
        if not match or int(match.group(1)) != offset:
            raise _Retryable(f"server answered Range bytes={offset}- with Content-Range "
                             f"{headers.get('Content-Range')!r}")
        return None if match.group(3) == "*" else int(match.group(3))
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _check_free_space(part: Path, dest: Path, needed: int | None) -> None:
    if needed is None:
        return
    free = shutil.disk_usage(part.parent).free
    if needed > free:
        raise DownloadError(f"not enough free space in {part.parent} to download {dest.name}: "
                            f"{needed:,} bytes needed, {free:,} bytes free")


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
