"""Your own music as a dataset: a folder of genre subfolders (`kind: folder`) or a CSV of
paths and labels (`kind: csv`), in any format, rate, channel count and length `mgc.audio`
reads.

Nothing is copied or modified: the track table records each file's path relative to the
collection's root and the sha256 of its content, so an edited file changes the index (and
so re-extracts) while an untouched one never does. Labels are normalised in one documented
way only, `normalise_label` (surrounding spaces dropped, case folded), so "Hip-Hop" and
"hiphop" stay two classes; `mgc init-dataset` shows the classes before anything is trained.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from mgc.audio import AUDIO_EXTENSIONS
from mgc.config import check_range, invalid
from mgc.datasets.base import Dataset
from mgc.errors import DataError
from mgc.labels import canonical_genre

CSV_COLUMNS = ("path", "label")
CSV_OPTIONAL_COLUMNS = ("split", "artist")
CSV_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
              "validation": "val", "test": "test"}


def normalise_label(label: str) -> str:
    """The class of a label as written: surrounding spaces dropped, case folded."""
    return str(label).strip().casefold()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Collection(Dataset):
    """What both kinds share: a root the paths are relative to, the clip length, hashing."""

    labels = ()
    paper_split_stratified = True

    def __init__(self, root: Path, clip_seconds: float) -> None:
        check_range("clip_seconds", clip_seconds, 1.0, 600.0)
        self.root = root
        self.nominal_clip_seconds = float(clip_seconds)

    def audio_root(self, raw_dir: Path) -> Path:
        return self.root

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        return []

    @abstractmethod
    def entries(self) -> pd.DataFrame:
        """The collection as listed: path (relative to the root), label as written,
        artist_id, official_split. Reads no audio."""

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        """The entries with their track id (the relative path), normalised label and the
        content hash of every file that exists."""
        rows = self.entries()
        paths = [self.root / relative for relative in rows["path"]]
        return rows.assign(
            track_id=rows["path"],
            label=rows["label"].map(normalise_label),
            content_sha256=[file_sha256(p) if p.is_file() else None for p in paths])

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        """The collection's own split (a CSV's `split` column), where it has one."""
        return tracks["official_split"]


class LabelledFolder(_Collection):
    """`path/<genre>/.../<file>`: the first folder under `path` is the genre.

    Audio files directly in `path` have no genre and are left out (`mgc init-dataset`
    lists them); other files (covers, playlists) are not audio and are skipped.
    """

    name = "folder"

    def __init__(self, path: str, labels: Literal["subfolders"] = "subfolders",
                 clip_seconds: float = 30.0) -> None:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise invalid("path", path, "no such folder")
        super().__init__(root, clip_seconds)

    def audio_files(self) -> list[Path]:
        """Every audio file under the root, by extension, in path order."""
        return sorted(p for p in self.root.rglob("*")
                      if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())

    def unlabelled_files(self) -> list[Path]:
        """Audio files directly in the root: they have no genre folder."""
        return [p for p in self.audio_files() if p.parent == self.root]

    def entries(self) -> pd.DataFrame:
        relative = [p.relative_to(self.root) for p in self.audio_files()
                    if p.parent != self.root]
        return pd.DataFrame({"path": [p.as_posix() for p in relative],
                             "label": [p.parts[0] for p in relative],
                             "artist_id": None, "official_split": None})


class CsvList(_Collection):
    """A CSV with columns `path,label` (optional `split`: train/val/test, and `artist`);
    relative paths are relative to the CSV's folder."""

    name = "csv"

    def __init__(self, path: str, clip_seconds: float = 30.0) -> None:
        self.csv_path = Path(path).expanduser()
        if not self.csv_path.is_file():
            raise invalid("path", path, "no such file")
        super().__init__(self.csv_path.parent, clip_seconds)

    def entries(self) -> pd.DataFrame:
        table = pd.read_csv(self.csv_path, dtype=str, keep_default_na=False)
        missing = [c for c in CSV_COLUMNS if c not in table.columns]
        if missing:
            raise DataError(f"{self.csv_path}: missing column(s) {', '.join(missing)}; "
                            f"expected {', '.join(CSV_COLUMNS)} (and optionally "
                            f"{', '.join(CSV_OPTIONAL_COLUMNS)})")
        splits = table["split"].str.strip().str.casefold() if "split" in table else None
        if splits is not None:
            unknown = sorted(set(splits) - set(CSV_SPLITS))
            if unknown:
                raise DataError(f"{self.csv_path}: split value(s) {unknown}; allowed: "
                                f"{', '.join(CSV_SPLITS)}")
        return pd.DataFrame({
            "path": [Path(p).as_posix() for p in table["path"]],
            "label": table["label"],
            "artist_id": table["artist"].str.strip() if "artist" in table else None,
            "official_split": splits.map(CSV_SPLITS) if splits is not None else None,
        })


@dataclass(frozen=True)
class CollectionSummary:
    """What `mgc init-dataset` shows before anything is trained."""

    class_counts: dict[str, int]
    """Files per class (labels normalised), most first."""
    label_spellings: dict[str, list[str]]
    """Per class, the spellings that were merged into it (case, spaces)."""
    look_alike: list[list[str]]
    """Classes that differ only in punctuation or inner spaces ("hip-hop", "hiphop"):
    two classes unless renamed."""
    unlabelled: list[Path]
    """Audio files without a genre folder, left out."""


def summarise_collection(collection: _Collection) -> CollectionSummary:
    """Label counts and the surprises a user should see first; reads no audio."""
    rows = collection.entries()
    classes = rows["label"].map(normalise_label)
    counts = classes.value_counts()
    spellings = {label: sorted(set(rows.loc[classes == label, "label"]))
                 for label in counts.index}
    by_canonical: dict[str, list[str]] = {}
    for label in sorted(counts.index):
        by_canonical.setdefault(canonical_genre(label), []).append(label)
    unlabelled = (collection.unlabelled_files() if isinstance(collection, LabelledFolder)
                  else [])
    return CollectionSummary(
        class_counts={str(k): int(v) for k, v in counts.items()},
        label_spellings={k: v for k, v in spellings.items() if len(v) > 1},
        look_alike=[group for group in by_canonical.values() if len(group) > 1],
        unlabelled=unlabelled)
