"""Stage `download@<dataset>`: fetch (or render) the archives, unpack, index the tracks.

Outputs `data/raw/<dataset>/` and `data/tracks/<dataset>.parquet`.
"""

from __future__ import annotations

import argparse

from mgc.errors import exit_on_user_error
from mgc.pipeline.corpus import build_dataset, source_dataset
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    tracks = build_dataset(source_dataset(load_params(), args.dataset), Layout())
    print(f"{args.dataset}: {len(tracks)} tracks, status "
          f"{tracks['status'].value_counts().to_dict()}")
    for row in tracks[tracks["status"] != "ok"].itertuples():
        print(f"  {row.status}: {row.path} ({row.reason})")


if __name__ == "__main__":
    exit_on_user_error(main)
