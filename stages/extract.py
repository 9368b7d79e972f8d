"""Stage `extract@<dataset>-<model>`: embed every usable track of a dataset with one model.

Output `data/embeddings/<model>/<dataset>.parquet`. Grouping by model lets each train stage
depend on exactly its model's folder, so changing one extractor retrains only its models.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mgc import __version__, extractors
from mgc.datasets import get_dataset, usable_tracks
from mgc.extract import clip_samples, extract_embeddings
from stages.norm import extractor_options
from stages.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    settings = params.embed[args.model]
    dataset = get_dataset(args.dataset, **params.sources[args.dataset])
    tracks = usable_tracks(pd.read_parquet(Path("data/tracks") / f"{args.dataset}.parquet"))
    extractor = extractors.load(args.model, **extractor_options(args.model, settings.options))
    n_samples = clip_samples(settings.clip, dataset.nominal_clip_seconds, extractor.sample_rate)
    metadata = {**extractor.describe(), "clip": settings.clip, "clip_samples": n_samples,
                "dataset": args.dataset, "source": params.sources[args.dataset],
                "mgc_version": __version__}
    out_path = Path("data/embeddings") / args.model / f"{args.dataset}.parquet"
    report = extract_embeddings(tracks, Path("data/raw") / args.dataset, extractor, out_path,
                                n_samples=n_samples, metadata=metadata,
                                batch_size=settings.batch_size)
    print(f"{args.dataset}/{args.model}: {report.n_embedded} embedded, "
          f"{report.n_resumed} resumed, {len(report.skipped)} skipped")
    for track_id, reason in report.skipped.items():
        print(f"  skipped {track_id}: {reason}")


if __name__ == "__main__":
    main()
