"""Stage `norm@<model>`: the input normalisation an extractor fits on the training split.

Only BYOL-A with `normalisation: train` computes anything: the mean and std of its log-mel
values over the training tracks of every dataset in the run (one pair for all, so a joint
model and `mgc predict` see one consistent input scale). Every other setting writes its
fixed choice, so this file, and the extractions that depend on it, stay unchanged when
`data.protocol` changes the split: a new split never re-extracts PANNs for nothing.
Output `data/norm/<model>.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from mgc.atomic import write_json
from mgc.datasets import get_dataset, usable_tracks
from mgc.extract import clip_samples, decode_batches
from mgc.extractors import byola
from stages.params import Params, load_params

NORM_DIR = Path("data/norm")
FITTED = "train"


def extractor_options(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """`embed.<model>` options with a fitted normalisation replaced by its numbers."""
    if options.get("normalisation") != FITTED:
        return dict(options)
    fitted = json.loads((NORM_DIR / f"{model}.json").read_text())
    return {**options, "normalisation": fitted["normalisation"]}


def _training_clips(params: Params, model: str) -> tuple[list, int]:
    batches, n_tracks = [], 0
    for name in params.datasets:
        dataset = get_dataset(name, **params.sources[name])
        tracks = usable_tracks(pd.read_parquet(Path("data/tracks") / f"{name}.parquet"))
        split = pd.read_parquet(Path("data/splits") / f"{name}.parquet")
        train_ids = set(split.loc[split["split"] == "train", "track_id"])
        train = tracks[tracks["track_id"].isin(train_ids)]
        n_samples = clip_samples(params.embed[model].clip, dataset.nominal_clip_seconds,
                                 byola.SAMPLE_RATE)
        raw_dir = Path("data/raw") / name
        batches.append(decode_batches([raw_dir / p for p in train["path"]],
                                      list(train["track_id"]), byola.SAMPLE_RATE, n_samples,
                                      batch_size=8, workers=2))
        n_tracks += len(train)
    return batches, n_tracks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    setting = params.embed[args.model].options.get("normalisation")
    record: dict[str, Any] = {"model": args.model, "normalisation": setting}
    if setting == FITTED:
        if args.model != byola.ByolaExtractor.name:
            raise SystemExit(f"embed.{args.model}.normalisation=train: only byola fits one")
        sources, n_tracks = _training_clips(params, args.model)
        mean, std = byola.log_mel_statistics(
            waves for source in sources for _, waves, _ in source if len(waves))
        record = {**record, "normalisation": [mean, std], "fitted_on": "train",
                  "n_tracks": n_tracks}
    write_json(NORM_DIR / f"{args.model}.json", record)
    print(f"norm {args.model}: {record['normalisation']}")


if __name__ == "__main__":
    main()
