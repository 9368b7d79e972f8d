"""FMA-small (Defferrard et al. 2017): 8,000 x 30 s mp3 clips, 8 balanced top genres.

Labels, subset membership and the official artist-filtered split all come from
`fma_metadata/tracks.csv`, whose three header rows encode a two-level column index.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mgc.cache import cache_dir
from mgc.datasets.base import Dataset
from mgc.download import Checksum, fetch_file

GENRES = ("Electronic", "Experimental", "Folk", "Hip-Hop",
          "Instrumental", "International", "Pop", "Rock")
AUDIO_URLS = ("https://os.unil.cloud.switch.ch/fma/fma_small.zip",)
AUDIO_CHECKSUM = Checksum("sha1", "ade154f733639d52e35e32f5593efe5be76c6d70")
METADATA_URLS = ("https://os.unil.cloud.switch.ch/fma/fma_metadata.zip",)
METADATA_CHECKSUM = Checksum("sha1", "f0df49ffe5f2a6008d7dc83c6915b31835dfe733")
_OFFICIAL_SPLIT = {"training": "train", "validation": "val", "test": "test"}


def read_tracks_csv(path: Path) -> pd.DataFrame:
    """Read FMA's tracks.csv (3 header rows: level 0, level 1, index name)."""
    return pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)


def list_fma_tracks(raw_dir: Path, subset: str = "small") -> pd.DataFrame:
    """Catalogue the tracks of `subset` from tracks.csv and locate their mp3 files."""
    csv_paths = sorted(raw_dir.glob("*/fma_metadata/tracks.csv"))
    if not csv_paths:
        raise FileNotFoundError(f"no fma_metadata/tracks.csv under {raw_dir}")
    audio_dirs = sorted(raw_dir.glob(f"*/fma_{subset}"))
    if not audio_dirs:
        raise FileNotFoundError(f"no fma_{subset}/ audio folder under {raw_dir}")
    metadata = read_tracks_csv(csv_paths[0])
    metadata = metadata[metadata[("set", "subset")] == subset]
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


class FmaSmall(Dataset):
    """The real FMA-small, downloaded (or read from local archives) with pinned sha1."""

    name = "fma_small"
    labels = GENRES
    paper_split_stratified = False

    def __init__(self, urls: Sequence[str] = AUDIO_URLS, sha1: str = AUDIO_CHECKSUM.hexdigest,
                 metadata_urls: Sequence[str] = METADATA_URLS,
                 metadata_sha1: str = METADATA_CHECKSUM.hexdigest,
                 archive: str | None = None, metadata_archive: str | None = None) -> None:
        self.parts = (
            ("fma_small.zip", tuple(urls), Checksum("sha1", sha1), archive, "archive"),
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
        return list_fma_tracks(raw_dir)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        return official_split(tracks)
