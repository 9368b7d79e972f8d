"""GTZAN (Tzanetakis & Cook 2002): 1000 x 30 s clips, 10 genres, 22,050 Hz mono .au files.

The canonical host is dead, so the Hugging Face mirror is tried first. The community's
`standard` split is the fault-filtered one (Kereliuk et al.; 443/197/290 tracks) that drops
repeated, distorted and mislabelled clips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from mgc.cache import cache_dir
from mgc.config import ConfigError, invalid
from mgc.datasets.base import Dataset
from mgc.download import Checksum, fetch_file

GENRES = ("blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock")
ARCHIVE_URLS = (
    "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz",
    "http://opihi.cs.uvic.ca/sound/genres.tar.gz",
)
ARCHIVE_CHECKSUM = Checksum(
    "sha256", "24347e0223d2ba798e0a558c4c172d9d4a19c00bb7963fe055d183dadb4ef2c6"
)
SPLIT_LIST_BASE_URL = (
    "https://raw.githubusercontent.com/jongpillee/music_dataset_split/master/GTZAN_split"
)
SPLIT_LIST_CHECKSUMS = {
    "train_filtered.txt": "2b04966cef1486f1a7767b74271533fa23e220388db804a1937835e1fc4fa3fa",
    "valid_filtered.txt": "f8fbee7c52397a0e0f3a91dc54fedecb2e27f5bdc9a9daeab8cb10d077e26956",
    "test_filtered.txt": "09cafa6a89ce0a27f30ed250d56ecb4d03c22fffb5a693f96c7ae655ee02ac72",
}
_LIST_TO_SPLIT = {"train_filtered.txt": "train", "valid_filtered.txt": "val",
                  "test_filtered.txt": "test"}


def list_gtzan_tracks(raw_dir: Path) -> pd.DataFrame:
    """Find `<archive>/genres/<genre>/<genre>.000NN.au` under `raw_dir`; the folder is the label."""
    rows = []
    for path in sorted(raw_dir.glob("*/genres/*/*.au")):
        rows.append({"track_id": path.stem, "path": str(path.relative_to(raw_dir)),
                     "label": path.parent.name})
    if not rows:
        raise FileNotFoundError(
            f"no GTZAN .au files under {raw_dir} (expected genres/<genre>/<genre>.000NN.au)"
        )
    return pd.DataFrame(rows)


def split_from_lists(tracks: pd.DataFrame, list_dir: Path) -> pd.Series:
    """Assign train/val/test from fault-filtered lists (`blues/blues.00029.wav` per line).

    Tracks in no list (the filtered-out faults) get NaN and are left out of every split.
    """
    split_of: dict[str, str] = {}
    for file_name, split in _LIST_TO_SPLIT.items():
        path = list_dir / file_name
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: the 'standard' GTZAN protocol needs the fault-filtered "
                f"lists ({', '.join(_LIST_TO_SPLIT)}); rerun the download stage"
            )
        for line in path.read_text().split():
            split_of[Path(line).stem] = split
    return tracks["track_id"].map(split_of)


def _split_list_checksums(digests: object) -> dict[str, Checksum]:
    """Pinned sha256 per fault-filtered list, checked here so a typo fails before any download.

    Overridable (the `split_list_sha256` option) for a mirror serving other copies of the
    lists; each of the three lists must be named, none may go unverified.
    """
    key = "split_list_sha256"
    if not isinstance(digests, Mapping) or set(digests) != set(SPLIT_LIST_CHECKSUMS):
        raise invalid(key, digests, f"expected a mapping from each of "
                      f"{', '.join(SPLIT_LIST_CHECKSUMS)} to its sha256")
    checksums = {}
    for file_name in SPLIT_LIST_CHECKSUMS:
        try:
            checksums[file_name] = Checksum("sha256", digests[file_name])
        except ValueError as error:
            raise ConfigError(f"{key}.{file_name}: {error}") from None
    return checksums


class Gtzan(Dataset):
    """The real GTZAN, downloaded from `urls` (tried in order) or read from `archive`."""

    name = "gtzan"
    labels = GENRES
    paper_split_stratified = True

    def __init__(self, urls: Sequence[str] = ARCHIVE_URLS, sha256: str = ARCHIVE_CHECKSUM.hexdigest,
                 archive: str | None = None,
                 split_list_base_url: str = SPLIT_LIST_BASE_URL,
                 split_list_sha256: Mapping[str, str] | None = None) -> None:
        self.urls = tuple(urls)
        self.checksum = Checksum("sha256", sha256)
        self.archive = Path(archive).expanduser() if archive else None
        self.split_list_base_url = split_list_base_url.rstrip("/")
        self.split_list_checksums = _split_list_checksums(
            SPLIT_LIST_CHECKSUMS if split_list_sha256 is None else split_list_sha256)

    def obtain_archives(self, staging_dir: Path, progress: bool) -> list[Path]:
        if self.archive is not None:
            if not self.archive.is_file():
                raise FileNotFoundError(f"archive={str(self.archive)!r}: no such file (the "
                                        f"local copy of {self.name}'s genres.tar.gz)")
            self.checksum.verify(self.archive)
            archive = self.archive
        else:
            archive = fetch_file(self.urls, cache_dir("datasets") / "genres.tar.gz",
                                 self.checksum, progress=progress)
        return [archive]

    def list_tracks(self, raw_dir: Path) -> pd.DataFrame:
        return list_gtzan_tracks(raw_dir)

    def standard_split(self, tracks: pd.DataFrame, raw_dir: Path) -> pd.Series:
        """Fetch (once, into the cache, checksums pinned) and apply the fault-filtered lists."""
        list_dir = cache_dir("splits") / "gtzan_fault_filtered"
        for file_name, checksum in self.split_list_checksums.items():
            fetch_file([f"{self.split_list_base_url}/{file_name}"], list_dir / file_name,
                       checksum, progress=False)
        return split_from_lists(tracks, list_dir)

