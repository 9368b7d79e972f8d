"""The train stage: classifiers on one extractor's embeddings for one train set (a dataset, or
`joint`), several seeds, scored on every test split they can label.

Writes the run's metrics JSON, the bundle of its best DNN seed for `mgc predict`, the
confusion rows for DVC's confusion template, and the learning curves through DVCLive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from dvclive import Live

from mgc.atomic import write_csv, write_json
from mgc.bundle import BundleInfo, save_bundle
from mgc.embeddings import read_embeddings
from mgc.evaluate import align
from mgc.pipeline.fitted import extractor_options
from mgc.pipeline.layout import JOINT, Layout
from mgc.pipeline.params import Params
from mgc.train import SeedsResult, train_over_seeds


def _log_curves(history: list[dict[str, float]], layout: Layout, train_set: str,
                model: str) -> None:
    """The best seed's per-epoch losses and accuracy, one DVCLive step per epoch."""
    with Live(str(layout.curves(train_set, model)), save_dvc_exp=False, dvcyaml=None,
              report=None) as live:
        for row in history:
            live.step = int(row["epoch"])
            for name, value in row.items():
                if name != "epoch":
                    live.log_metric(name, value)


def train_set_model(params: Params, train_set: str, model: str, layout: Layout) -> SeedsResult:
    """Train and score every classifier kind over the seeds; write every output of the stage."""
    torch.set_num_threads(params.train.threads)
    torch.use_deterministic_algorithms(True)
    datasets = params.data.datasets
    embeddings, metadata = {}, {}
    for dataset in datasets:
        ids, vectors, metadata[dataset] = read_embeddings(layout.embeddings(model, dataset))
        embeddings[dataset] = (ids, vectors)
    splits = {dataset: pd.read_parquet(layout.split(dataset)).assign(dataset=dataset)
              for dataset in datasets}
    members = list(datasets) if train_set == JOINT else [train_set]
    table = pd.read_parquet(layout.joint_labels) if train_set == JOINT else splits[train_set]
    data = align(table, embeddings)
    others = {dataset: align(splits[dataset], embeddings)
              for dataset in datasets if dataset not in members}
    result = train_over_seeds(data, others, params.train.classifiers, params.train.seeds,
                              params.train.classifier, params.loss, params.train.training)

    n_tracks = sum(len(pd.read_parquet(layout.tracks(d))) for d in members)
    first = metadata[members[0]]
    write_json(layout.run_metrics(train_set, model), {
        "train_set": train_set,
        "model": model,
        "weights": first.get("weights", "none"),
        "protocol": params.data.protocol,
        "seeds": len(params.train.seeds),
        "best_seed": result.best_seed,
        **{f"n_{part}": int(np.sum(data.split == part)) for part in ("train", "val", "test")},
        "n_excluded": int(n_tracks - len(data.x)),
        **result.metrics,
    })
    save_bundle(result.best_model, BundleInfo(
        class_names=sorted(set(data.label)),
        input_dim=int(data.x.shape[1]),
        classifier=result.best_model.config.to_dict(),
        kind=result.best_model.kind,
        heads=list(result.best_model.heads),
        extractor=model,
        extractor_options=extractor_options(params, model, layout),
        clip_samples=int(first["clip_samples"]),
        train_set=train_set,
        protocol=params.data.protocol,
    ), layout.models(train_set) / model)
    write_csv(layout.confusion(train_set, model),
              pd.DataFrame(result.confusion, columns=["actual", "predicted"]))
    _log_curves(result.history, layout, train_set, model)
    return result
