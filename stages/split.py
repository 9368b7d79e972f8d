"""Stage `split@<dataset>`: one train/val/test split per dataset and protocol, shared by all
extractors. Output `data/splits/<dataset>.parquet` (track_id, label, split).
"""

from __future__ import annotations

import argparse
import sys

from mgc.errors import exit_on_user_error
from mgc.pipeline.labelling import split_dataset
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    split, left_out = split_dataset(params, args.dataset, Layout())
    for label, count in left_out.items():
        print(f"warning: {args.dataset}: class {label!r} left out ({count} usable track(s), "
              f"fewer than data.min_class_tracks={params.data.min_class_tracks})",
              file=sys.stderr)
    print(f"{args.dataset} ({params.data.protocol}): {split['split'].value_counts().to_dict()}")


if __name__ == "__main__":
    exit_on_user_error(main)
