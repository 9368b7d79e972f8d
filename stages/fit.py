"""Stage `fit@<model>`: what an extractor learns from the training split (`Extractor.fit`),
e.g. BYOL-A's input statistics with `normalisation: train`; a constant record for a model
that learns nothing, so a new split never re-extracts it. Output `data/fit/<model>.json`.
"""

from __future__ import annotations

import argparse

from mgc.errors import exit_on_user_error
from mgc.pipeline.embedding import fit_extractor
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    record = fit_extractor(load_params(), args.model, Layout())
    print(f"fit {args.model}: {record['fitted_options'] or 'nothing to fit'}")


if __name__ == "__main__":
    exit_on_user_error(main)
