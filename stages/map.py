"""Stage `map@<model>`: a 2-D map (t-SNE) of every dataset's embeddings from one model,
`plots/embedding_map/<model>/<dataset>.csv`, drawn by `dvc plots show` as a scatter plot
coloured by genre."""

from __future__ import annotations

import argparse

from mgc.errors import exit_on_user_error
from mgc.pipeline.embedding_maps import write_embedding_maps
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    points = write_embedding_maps(load_params(), args.model, Layout())
    print(f"map {args.model}: " + ", ".join(f"{d} {n} tracks" for d, n in points.items()))


if __name__ == "__main__":
    exit_on_user_error(main)
