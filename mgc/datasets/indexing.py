"""Archives to a track table: unpack safely, decode every file once, record what is unusable.

The same routine for every dataset, so the synthetic corpus runs the code that serves GTZAN
and FMA-small.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from mgc.archive import safe_extract
from mgc.audio import AudioError, prepare_for_threads, probe
from mgc.datasets.base import TRACK_COLUMNS, USABLE_STATUSES, Dataset
from mgc.errors import DataError


def _status_of(path: Path, nominal_seconds: float) -> dict[str, object]:
    try:
        info = probe(path)
    except AudioError as error:
        return {"status": error.status, "reason": error.reason, "duration_s": 0.0,
                "sample_rate_hz": 0, "channels": 0}
    short = info.duration_s < 0.5 * nominal_seconds
    return {
        "status": "short" if short else "ok",
        "reason": f"{info.duration_s:.2f} s, under half of {nominal_seconds:g} s" if short else "",
        "duration_s": info.duration_s,
        "sample_rate_hz": info.sample_rate_hz,
        "channels": info.channels,
    }


def index_tracks(dataset: Dataset, raw_dir: Path, progress: bool = True) -> pd.DataFrame:
    """Decode every catalogued file once and record its duration, format and status.

    A file that cannot be decoded is recorded (status `empty`/`unreadable` with the reason)
    instead of stopping the stage; downstream stages use only `USABLE_STATUSES`.
    """
    catalogue = dataset.list_tracks(raw_dir).sort_values("track_id", kind="stable")
    duplicated = sorted(set(catalogue.loc[catalogue["track_id"].duplicated(), "track_id"]))
    if duplicated:
        raise DataError(f"{dataset.name}: track id(s) listed more than once: "
                        f"{', '.join(map(str, duplicated[:10]))}"
                        f"{' ...' if len(duplicated) > 10 else ''}")
    root = dataset.audio_root(raw_dir)
    paths = [root / relative for relative in catalogue["path"]]
    workers = max(1, min(8, os.cpu_count() or 1))
    prepare_for_threads()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = list(tqdm(
            pool.map(lambda p: _status_of(p, dataset.nominal_clip_seconds), paths),
            total=len(paths), desc=f"index {dataset.name}", unit="file", disable=not progress,
        ))
    table = pd.concat(
        [catalogue.reset_index(drop=True), pd.DataFrame(statuses)], axis=1
    )
    for column in ("artist_id", "official_split", "content_sha256"):
        if column not in table:
            table[column] = None
    table = table.astype({"track_id": str, "path": str, "label": str, "reason": str,
                          "duration_s": "float64", "sample_rate_hz": "int64",
                          "channels": "int64", "status": str})
    return table.loc[:, list(TRACK_COLUMNS)]


def prepare_dataset(dataset: Dataset, raw_dir: Path, staging_dir: Path,
                    progress: bool = True) -> pd.DataFrame:
    """Fetch, safely unpack and index `dataset` into `raw_dir`; return its track table.

    Each archive unpacks into its own folder `raw_dir/<archive name>` (atomically, by
    `safe_extract`), so an interrupted run never leaves a half-unpacked tree behind.
    """
    archives = dataset.obtain_archives(staging_dir, progress)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        safe_extract(archive, raw_dir / archive_stem(archive))
    return index_tracks(dataset, raw_dir, progress)


def archive_stem(archive: Path) -> str:
    """`genres.tar.gz` -> `genres`, `fma_small.zip` -> `fma_small`."""
    name = archive.name
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return archive.stem


def usable_tracks(tracks: pd.DataFrame) -> pd.DataFrame:
    """The tracks every later stage works on."""
    return tracks[tracks["status"].isin(USABLE_STATUSES)].reset_index(drop=True)
