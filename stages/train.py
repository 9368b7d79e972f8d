"""Stage `train@<set>-<model>`: classifiers on one extractor's embeddings for one train set
(a dataset, or `joint`), several seeds, scored on every test split they can label.

Outputs `metrics/runs/<set>/<model>.json`, `models/<set>/<model>/` (the bundle for `mgc
predict`), `plots/confusion/<set>/<model>.csv` and `plots/curves/<set>/<model>.csv`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from mgc.atomic import write_csv, write_json
from mgc.bundle import BundleInfo, save_bundle
from mgc.embeddings import read_embeddings
from mgc.experiment import align, run_experiment
from stages.norm import extractor_options
from stages.params import JOINT, load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="train_set", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    torch.set_num_threads(params.threads)
    torch.use_deterministic_algorithms(True)

    embeddings, metadata = {}, {}
    for dataset in params.datasets:
        ids, vectors, metadata[dataset] = read_embeddings(
            Path("data/embeddings") / args.model / f"{dataset}.parquet")
        embeddings[dataset] = (ids, vectors)
    splits = {dataset: pd.read_parquet(Path("data/splits") / f"{dataset}.parquet")
              .assign(dataset=dataset) for dataset in params.datasets}
    if args.train_set == JOINT:
        table = pd.read_parquet("data/labels/joint.parquet")
        member_datasets = list(params.datasets)
    else:
        table = splits[args.train_set]
        member_datasets = [args.train_set]
    data = align(table, embeddings)
    others = {dataset: align(splits[dataset], embeddings)
              for dataset in params.datasets if dataset not in member_datasets}
    result = run_experiment(args.train_set, data, others, params.classifiers, params.seeds,
                            params.classifier, params.loss, params.training)

    n_tracks = sum(len(pd.read_parquet(Path("data/tracks") / f"{d}.parquet"))
                   for d in member_datasets)
    first = metadata[member_datasets[0]]
    write_json(Path("metrics/runs") / args.train_set / f"{args.model}.json", {
        "train_set": args.train_set,
        "model": args.model,
        "weights": first.get("weights", "none"),
        "protocol": params.protocol,
        "seeds": len(params.seeds),
        "best_seed": result.best_seed,
        "n_train": int((data.split == "train").sum()),
        "n_val": int((data.split == "val").sum()),
        "n_test": int((data.split == "test").sum()),
        "n_excluded": int(n_tracks - len(data.x)),
        **result.metrics,
    })
    save_bundle(result.best_model, BundleInfo(
        class_names=sorted(set(data.label)),
        input_dim=int(data.x.shape[1]),
        classifier=result.best_model.config.to_dict(),
        metric_head=result.best_model.embedding is not None,
        pair_head=result.best_model.pair_head is not None,
        extractor=args.model,
        extractor_options=extractor_options(args.model, params.embed[args.model].options),
        clip_samples=int(first["clip_samples"]),
        train_set=args.train_set,
        protocol=params.protocol,
    ), Path("models") / args.train_set / args.model)
    write_csv(Path("plots/confusion") / args.train_set / f"{args.model}.csv",
              pd.DataFrame(result.confusion, columns=["actual", "predicted"]))
    write_csv(Path("plots/curves") / args.train_set / f"{args.model}.csv",
              pd.DataFrame(result.history))
    dnn = result.metrics[params.classifiers[0]]
    scores = ", ".join(f"{name} {s['accuracy']['mean']:.3f}" for name, s in dnn.items())
    print(f"{args.train_set}/{args.model} ({params.classifiers[0]}): accuracy {scores}")


if __name__ == "__main__":
    main()
