"""Stage `extract@<dataset>-<model>`: embed every usable track of a dataset with one model.

Output `data/embeddings/<model>/<dataset>.parquet`. Grouping by model lets each train stage
depend on exactly its model's folder, so changing one extractor retrains only its models.
"""

from __future__ import annotations

import argparse

from mgc.errors import exit_on_user_error
from mgc.pipeline.embedding import extract_dataset
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    report = extract_dataset(load_params(), args.dataset, args.model, Layout())
    print(f"{args.dataset}/{args.model}: {report.n_embedded} embedded, "
          f"{report.n_resumed} resumed, {len(report.skipped)} skipped")
    for track_id, reason in report.skipped.items():
        print(f"  skipped {track_id}: {reason}")


if __name__ == "__main__":
    exit_on_user_error(main)
