"""Stage `split@<dataset>`: one train/val/test split per dataset and protocol, shared by all
extractors. Output `data/splits/<dataset>.parquet` (track_id, label, split[, fold]).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mgc.atomic import write_parquet
from mgc.datasets import get_dataset
from mgc.splits import make_split
from stages.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    dataset = get_dataset(args.dataset, **params.sources[args.dataset])
    tracks = pd.read_parquet(Path("data/tracks") / f"{args.dataset}.parquet")
    split = make_split(dataset, tracks, Path("data/raw") / args.dataset, params.protocol,
                       seed=params.split_seed, test_fraction=params.test_fraction,
                       val_fraction=params.val_fraction)
    write_parquet(Path("data/splits") / f"{args.dataset}.parquet", split)
    print(f"{args.dataset} ({params.protocol}): {split['split'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
