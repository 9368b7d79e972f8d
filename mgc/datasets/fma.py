"""FMA (Defferrard et al. 2017), the official subsets of 30 s mp3 clips: small (8,000 clips,
8 balanced top genres), medium (25,000 clips, 16 unbalanced top genres) and large (106,574
clips, the same 16 top genres where a track has one).

Labels, subset membership and the official artist-filtered split all come from
`fma_metadata/tracks.csv`, whose three header rows encode a two-level column index. The
subsets are nested (small within medium within large) and `('set', 'subset')` names the
smallest one a track belongs to, so medium is the tracks marked small or medium. The label
is `('track', 'genre_top')`; a large-only track may have none (several top genres, or
none): such tracks cannot be classified and are left out of the catalogue.

Archives and sha1 from the FMA README (github.com/mdeff/fma, "Usage" and the 2017-05-09
release under "History"); the audio of each subset is its own zip, the metadata is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from mgc.cache import cache_dir
from mgc.datasets.base import Dataset
from mgc.download import Checksum, fetch_file

GENRES = ("Electronic", "Experimental", "Folk", "Hip-Hop",
          "Instrumental", "International", "Pop", "Rock")
"""FMA-small's 8 top genres."""
TOP_GENRES = ("Blues", "Classical", "Country", "Easy Listening", "Electronic", "Experimental",
              "Folk", "Hip-Hop", "Instrumental", "International", "Jazz",
              "Old-Time / Historic", "Pop", "Rock", "Soul-RnB", "Spoken")
"""FMA's 16 top-level genres (genres.csv, parent 0): the labels of medium and large."""
_BASE_URL = "https://os.unil.cloud.switch.ch/fma/"
AUDIO_URLS = (f"{_BASE_URL}fma_small.zip",)
AUDIO_CHECKSUM = Checksum("sha1", "ade154f733639d52e35e32f5593efe5be76c6d70")
METADATA_URLS = (f"{_BASE_URL}fma_metadata.zip",)
METADATA_CHECKSUM = Checksum("sha1", "f0df49ffe5f2a6008d7dc83c6915b31835dfe733")
_OFFICIAL_SPLIT = {"training": "train", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class Subset:
    """One official subset: its archive, and the `('set', 'subset')` values it holds."""

    name: str
    members: tuple[str, ...]
    urls: tuple[str, ...]
    checksum: Checksum

    @property
    def archive(self) -> str:
        return f"fma_{self.name}.zip"


SUBSETS = {subset.name: subset for subset in (
    Subset("small", ("small",), AUDIO_URLS, AUDIO_CHECKSUM),
    Subset("medium", ("small", "medium"), (f"{_BASE_URL}fma_medium.zip",),
           Checksum("sha1", "c67b69ea232021025fca9231fc1c7c1a063ab50b")),
    Subset("large", ("small", "medium", "large"), (f"{_BASE_URL}fma_large.zip",),
           Checksum("sha1", "497109f4dd721066b5ce5e5f250ec604dc78939e")),
)}


def read_tracks_csv(path: Path) -> pd.DataFrame:
    """Read FMA's tracks.csv (3 header rows: level 0, level 1, index name)."""
    return pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)


def list_fma_tracks(raw_dir: Path, subset: str = "small") -> pd.DataFrame:
    """Catalogue the labelled tracks of `subset` from tracks.csv and locate their mp3 files."""
    csv_paths = sorted(raw_dir.glob("*/fma_metadata/tracks.csv"))
    if not csv_paths:
        raise FileNotFoundError(f"no fma_metadata/tracks.csv under {raw_dir}")
    audio_dirs = sorted(raw_dir.glob(f"*/fma_{subset}"))
    if not audio_dirs:
        raise FileNotFoundError(f"no fma_{subset}/ audio folder under {raw_dir}")
    metadata = read_tracks_csv(csv_paths[0])
    metadata = metadata[metadata[("set", "subset")].isin(SUBSETS[subset].members)
                        & metadata[("track", "genre_top")].notna()]
    rows = []
    for track_id, row in metadata.iterrows():
        tid = f"{int(track_id):06d}"
        path = audio_dirs[0] / tid[:3] / f"{tid}.mp3"
        rows.append({
            "track_id": tid,
            "path": str(path.relative_to(raw_dir)),
            "label": str(row[("track", "genre_top")]),
            "artist_id": str(row[("artist", "id")]),
            "official_split": _OFFICIAL_SPLIT.get(str(row[("set", "split")])),
        })
    return pd.DataFrame(rows)


def official_split(tracks: pd.DataFrame) -> pd.Series:
    """FMA's own artist-filtered training/validation/test split, as train/val/test."""
    return tracks["official_split"]


class _Fma(Dataset):
    """A real FMA subset, downloaded (or read from local archives) with pinned sha1; `urls`
    and `sha1` default to the subset's own."""

    subset: ClassVar[Subset]
    paper_split_stratified = False

    def __init__(self, urls: Sequence[str] | None = None, sha1: str | None = None,
                 metadata_urls: Sequence[str] = METADATA_URLS,
                 metadata_sha1: str = METADATA_CHECKSUM.hexdigest,
                 archive: str | None = None, metadata_archive: str | None = None) -> None:
        subset = self.subset
        self.parts = (
            (subset.archive, tuple(urls or subset.urls),
             Checksum("sha1", sha1) if sha1 else subset.checksum, archive, "archive"),
            ("fma_metadata.zip", tuple(metadata_urls), Checksum("sha1", metadata_sha1),
             metadata_archive, "metadata_archive"),
        )

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        archives = []
        for file_name, urls, checksum, local, key in self.parts:
            if local:
                path = Path(local).expanduser()
                if not path.is_file():
                    raise FileNotFoundError(f"{key}={local!r}: no such file (the local copy "
                                            f"of {self.name}'s {file_name})")
                checksum.verify(path)
            else:
                path = fetch_file(urls, cache_dir("datasets") / file_name, checksum,
                                  progress=progress)
            archives.append(path)
        return archives

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return list_fma_tracks(raw_dir, self.subset.name)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return official_split(tracks)


class FmaSmall(_Fma):
    """FMA-small: 8,000 clips, 8 balanced top genres (7.2 GiB)."""

    name, subset, labels = "fma_small", SUBSETS["small"], GENRES


class FmaMedium(_Fma):
    """FMA-medium: 25,000 clips (small's 8,000 among them), 16 unbalanced top genres
    (22 GiB)."""

    name, subset, labels = "fma_medium", SUBSETS["medium"], TOP_GENRES


class FmaLarge(_Fma):
    """FMA-large: 106,574 clips, the labelled ones in 16 unbalanced top genres (93 GiB)."""

    name, subset, labels = "fma_large", SUBSETS["large"], TOP_GENRES
