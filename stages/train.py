"""Stage `train@<set>-<model>`: classifiers on one extractor's embeddings for one train set
(a dataset, or `joint`), several seeds, scored on every test split they can label.

Outputs `metrics/runs/<set>/<model>.json`, `models/<set>/<model>/` (the bundle for `mgc
predict`), `predictions/<set>/<model>.csv` (every seed's prediction per test track),
`plots/confusion/<set>/<model>.csv` and the DVCLive learning curves in
`plots/curves/<set>/<model>/`.
"""

from __future__ import annotations

import argparse

from mgc.errors import exit_on_user_error
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params
from mgc.pipeline.training import train_set_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="train_set", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    result = train_set_model(params, args.train_set, args.model, Layout())
    first = params.train.classifiers[0]
    scores = ", ".join(f"{name} {s['accuracy']['mean']:.3f}"
                       for name, s in result.metrics[first].items())
    print(f"{args.train_set}/{args.model} ({first}): accuracy {scores}")


if __name__ == "__main__":
    exit_on_user_error(main)
