"""Stage `download@<dataset>`: fetch (or render) the archives, unpack, index the tracks.

Outputs `data/raw/<dataset>/` and `data/tracks/<dataset>.parquet`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mgc.datasets import build_dataset, get_dataset
from stages.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    tracks = build_dataset(get_dataset(args.dataset, **params.sources[args.dataset]),
                           Path("data"))
    counts = tracks["status"].value_counts().to_dict()
    print(f"{args.dataset}: {len(tracks)} tracks, status {counts}")
    for row in tracks[tracks["status"] != "ok"].itertuples():
        print(f"  {row.status}: {row.path} ({row.reason})")


if __name__ == "__main__":
    main()
