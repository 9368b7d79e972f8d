"""Atomic file writes: a reader (or the next DVC stage) sees the whole file or none of it.

Everything is written to a hidden temp file in the same folder and moved into place with
`os.replace`, which is atomic on POSIX filesystems; a crash or SIGKILL mid-write leaves the
previous file, if any, untouched.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path`, on error it is removed.

    A writer killed with SIGKILL cannot remove its temp file; the next write of the same
    `path` deletes such leftovers (those whose process is gone), so a killed extraction
    does not leave a second copy of a large file behind for good.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_writers_temps(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temp
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _remove_dead_writers_temps(path: Path) -> None:
    for temp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and not process_exists(int(pid)):
            temp.unlink(missing_ok=True)


def process_exists(pid: int) -> bool:
    """Whether process `pid` is alive: what tells a dead writer's leftover from a live one's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temp:
        temp.write_text(text)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as temp:
        frame.to_csv(temp, index=False)


def write_parquet(path: Path, table: pa.Table | pd.DataFrame) -> None:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(path) as temp:
        pq.write_table(table, temp)
