"""The train stage: classifiers on one extractor's embeddings for one train set (a dataset, or
`joint`), several seeds, scored on every test split they can label.

Writes the run's metrics JSON, the bundle of its best DNN seed for `mgc predict`, the
confusion rows for DVC's confusion template, and the learning curves in DVCLive's format.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dvclive.plots import Metric

from mgc import extractors
from mgc.atomic import atomic_path, write_csv, write_json
from mgc.bundle import BundleInfo, save_bundle
from mgc.embeddings import read_embeddings
from mgc.evaluate import align, twin_confusion
from mgc.layers import LAST, WEIGHTED
from mgc.pipeline.fitted import extractor_options
from mgc.pipeline.layout import JOINT, Layout
from mgc.pipeline.params import Params
from mgc.train import SeedsResult, ZeroShotScorer, train_over_folds, train_over_seeds
from mgc.zeroshot import ZERO_SHOT, ZeroShotClassifier, supports_zero_shot


def _log_curves(history: list[dict[str, float]], directory: Path) -> None:
    """The best seed's per-epoch values in DVCLive's plot format (`metrics/<name>.tsv`,
    `step` = epoch), each file written atomically.

    DVCLive's own `Metric` writer, without a `Live` session: a session probes the Git
    repository (it raises in one without commits, and runs `dvc init` outside a DVC
    project), and a stage that only logs curves needs none of that.
    """
    with tempfile.TemporaryDirectory() as scratch:
        writers: dict[str, Metric] = {}
        for row in history:
            for name, value in row.items():
                if name != "epoch":
                    writer = writers.setdefault(name, Metric(name, scratch))
                    writer.step = int(row["epoch"])
                    writer.dump(value)
        for writer in writers.values():
            target = directory / Metric.subfolder / writer.output_path.name
            with atomic_path(target) as temp:
                shutil.copyfile(writer.output_path, temp)


def zero_shot_scorer(params: Params, model: str, layout: Layout) -> ZeroShotScorer | None:
    """CLAP's zero-shot classifier over the class names, when `zeroshot` is asked for and
    `model` embeds text; None otherwise (the row is then absent for that extractor)."""
    if (ZERO_SHOT not in params.train.classifiers
            or not supports_zero_shot(extractors.REGISTRY[model])):
        return None
    extractor = extractors.load(model, **extractor_options(params, model, layout))
    return lambda x, class_names: ZeroShotClassifier(extractor, class_names).predict_proba(x)


def layer_record(layer: str, names: list[str]) -> dict[str, object]:
    """What the run metrics say of `train.layer` (nothing for `last`, so those files stay as
    they were): the layer, and for one layer its depth (1 = first) out of how many, which
    the report plots accuracy against."""
    if layer == LAST:
        return {}
    record: dict[str, object] = {"layer": layer, "layer_count": len(names)}
    if layer != WEIGHTED:
        record["layer_depth"] = names.index(layer) + 1
    return record


def train_set_model(params: Params, train_set: str, model: str, layout: Layout) -> SeedsResult:
    """Train and score every classifier kind over the seeds; write every output of the stage."""
    torch.set_num_threads(params.train.threads)
    torch.use_deterministic_algorithms(True)
    datasets = params.data.datasets
    layer = params.train.layer
    embeddings, metadata = {}, {}
    for dataset in datasets:
        ids, vectors, metadata[dataset] = read_embeddings(layout.embeddings(model, dataset),
                                                          layer)
        embeddings[dataset] = (ids, vectors)
    layers = {entry["name"]: int(entry["dim"])
              for entry in metadata[datasets[0]].get("layers") or []}
    splits = {dataset: pd.read_parquet(layout.split(dataset)).assign(dataset=dataset)
              for dataset in datasets}
    members = list(datasets) if train_set == JOINT else [train_set]
    table = pd.read_parquet(layout.joint_labels) if train_set == JOINT else splits[train_set]
    data = align(table, embeddings)
    class_names = sorted(set(data.label))
    others = {dataset: align(splits[dataset], embeddings)
              for dataset in datasets if dataset not in members}
    settings = (params.train.classifiers, params.train.seeds, params.train.classifier,
                params.loss, params.train.training)
    run = {"workers": params.train.workers, "zero_shot": zero_shot_scorer(params, model, layout),
           "layer_dims": layers if layer == WEIGHTED else None,
           "domain": params.train.adaptation}
    result = (train_over_folds(data, others, params.data.folds, *settings, **run)
              if params.data.protocol == "kfold" else train_over_seeds(data, others, *settings,
                                                                        **run))

    n_tracks = sum(len(pd.read_parquet(layout.tracks(d))) for d in members)
    first = metadata[members[0]]
    write_json(layout.run_metrics(train_set, model), {
        "train_set": train_set,
        "model": model,
        "weights": first.get("weights", "none"),
        "protocol": params.data.protocol,
        "seeds": len(params.train.seeds),
        "best_seed": result.best_seed,
        **layer_record(layer, list(layers)),
        **({"n_tracks": len(data.x)} if params.data.protocol == "kfold" else
           {f"n_{part}": int(np.sum(data.split == part)) for part in ("train", "val", "test")}),
        "n_excluded": int(n_tracks - len(data.x)),
        **({"domain": params.train.domain} if params.train.domain != "none" else {}),
        **result.metrics,
        **({"twin_confusion": {"merge_strategy": params.merge.strategy, "by_kind": twin_confusion(
            result.predictions, class_names, params.train.classifiers)}}
           if train_set == JOINT else {}),
    })
    save_bundle(result.best_model, BundleInfo(
        class_names=class_names,
        input_dim=int(data.x.shape[1]),
        classifier=result.best_model.config.to_dict(),
        kind=result.best_model.kind,
        heads=list(result.best_model.heads),
        extractor=model,
        extractor_options=extractor_options(params, model, layout),
        clip_samples=int(first["clip_samples"]),
        train_set=train_set,
        protocol=params.data.protocol,
        layer=layer,
        layer_dims=layers if layer == WEIGHTED else None,
        domain=({"method": params.train.domain, "datasets": members, "default": members[0]}
                if result.domain_maps else None),
        weights_licence=first.get("weights_licence"),
    ), layout.models(train_set) / model,
        {name: domain_map for name, domain_map in result.domain_maps.items() if name in members})
    write_csv(layout.predictions(train_set, model), result.predictions)
    write_csv(layout.confusion(train_set, model),
              pd.DataFrame(result.confusion, columns=["actual", "predicted"]))
    _log_curves(result.history, layout.curves(train_set, model))
    return result
