"""DVC experiments as a table: one row per finished experiment x per-run metrics file
(`metrics/runs/<set>/<model>.json`), with the params that differ between experiments as
columns and the metrics flattened to dotted keys (`dnn.<test_set>.accuracy.mean`).

The records come from `mgc.pipeline.dvc_experiments` (DVC's command line and JSON); this
module knows only what a run's metrics and params mean.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from mgc.paper import PAPER_CLASSIFIER, PAPER_PROTOCOL, paper_accuracy
from mgc.pipeline.dvc_experiments import DONE, ExperimentRecord, flatten
from mgc.pipeline.loss_labels import loss_heads, loss_weight_keys, metric_share

PAPER_CONFIGURATION: dict[str, Any] = {
    "data.protocol": PAPER_PROTOCOL,
    **{f"train.classifier.{key}": value for key, value in PAPER_CLASSIFIER.items()},
}
"""The params of the paper's DNN and its splits: a row whose params match these gets the
paper's number beside ours."""

_SKIPPED_METRICS = ("per_class_f1",)


def _ran_in(record: ExperimentRecord, metrics: Mapping[str, Any]) -> bool:
    """Whether a run metrics file belongs to the experiment's own runs: an experiment that
    narrows `embed.models` or `train.sets` keeps its baseline's other run files in its
    commit, untouched, and they must not be reported as its results."""
    models, sets = record.params.get("embed.models"), record.params.get("train.sets")
    return ((not isinstance(models, list) or metrics["model"] in models)
            and (not isinstance(sets, list) or metrics["train_set"] in sets))


def is_run_metrics(metrics: Any) -> bool:
    """Whether a metrics file is one train stage's run (not e.g. the summary)."""
    return (isinstance(metrics, Mapping) and isinstance(metrics.get("train_set"), str)
            and isinstance(metrics.get("model"), str))


def own_test_set(metrics: Mapping[str, Any], classifier: str = "dnn") -> str | None:
    """The test split a run is scored on first: its own dataset, or `all` for `joint`."""
    scores = metrics.get(classifier) or {}
    for test_set in (metrics["train_set"], "all"):
        if test_set in scores:
            return test_set
    return None


def is_paper_configuration(params: Mapping[str, Any]) -> bool:
    """Whether params match `PAPER_CONFIGURATION`."""
    return all(key in params and params[key] == value
               for key, value in PAPER_CONFIGURATION.items())


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def varied_params(records: Iterable[ExperimentRecord]) -> list[str]:
    """Params keys whose values differ between the records, in params order."""
    records = list(records)
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record.params))
    return [key for key in keys
            if any(not _same(r.params.get(key), records[0].params.get(key)) for r in records)]


def changed_params(record: ExperimentRecord) -> list[str]:
    """The params keys whose values differ from the record's baseline commit."""
    keys = dict.fromkeys([*record.baseline_params, *record.params])
    return [key for key in keys
            if not _same(record.params.get(key), record.baseline_params.get(key))]


def shared_changes(records: Sequence[ExperimentRecord]) -> set[str]:
    """Params keys that every experiment (two or more) changes from its baseline to the
    same value: a sweep-wide override (`mgc sweep fig2 --set 'embed.models=[mfcc]'`),
    which is part of the sweep's reference point, not one of its factors."""
    experiments = [r for r in records if not r.is_baseline]
    if len(experiments) < 2:
        return set()
    first = experiments[0]
    return {key for key in changed_params(first)
            if all(key in changed_params(r) and _same(r.params.get(key), first.params.get(key))
                   for r in experiments[1:])}


def _display(value: Any) -> Any:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return value


def experiment_table(records: Iterable[ExperimentRecord],
                     names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per finished experiment x run metrics file.

    Columns: `experiment`, `rev`, `baseline`, the params that differ between the chosen
    experiments (dotted keys; with `alpha` and `loss_heads` when loss weights differ),
    `train_set`, `model`, `weights`, `protocol`, `test_set` (the run's own test split),
    `metrics_file`, `changed` (the params keys that differ from the baseline, space-separated,
    less the overrides every chosen experiment shares: `shared_changes`),
    every numeric metric flattened (`dnn.<test_set>.accuracy.mean`; per-class F1 stays in
    the metrics files) and `paper_accuracy` (%) where the row is the paper's configuration
    on a dataset the paper reports. `names` keeps those experiments only, in that order.
    """
    chosen = [r for r in records if r.state == DONE]
    if names is not None:
        order = {name: i for i, name in enumerate(names)}
        chosen = sorted((r for r in chosen if r.name in order and not r.is_baseline),
                        key=lambda r: order[r.name])
    varied = varied_params(chosen)
    shared = shared_changes(chosen)
    with_loss = any(key in loss_weight_keys() for key in varied)
    rows = []
    for record in chosen:
        for path, metrics in sorted(record.metrics.items()):
            if not is_run_metrics(metrics) or not _ran_in(record, metrics):
                continue
            test_set = own_test_set(metrics)
            paper = paper_accuracy(metrics["train_set"], metrics["model"])
            row: dict[str, Any] = {
                "experiment": record.name, "rev": record.rev[:7], "baseline": record.baseline,
                **{key: _display(record.params.get(key)) for key in varied},
            }
            if with_loss:
                row.update(alpha=round(metric_share(record.params), 6),
                           loss_heads=loss_heads(record.params))
            row.update({
                "train_set": metrics["train_set"], "model": metrics["model"],
                "weights": metrics.get("weights"), "protocol": metrics.get("protocol"),
                "test_set": test_set, "metrics_file": path,
                "changed": " ".join(k for k in changed_params(record) if k not in shared),
            })
            row.update({key: value for key, value in flatten(metrics).items()
                        if isinstance(value, int | float) and not isinstance(value, bool)
                        and not any(part in _SKIPPED_METRICS for part in key.split("."))})
            row["paper_accuracy"] = (paper if paper is not None and test_set == metrics[
                "train_set"] and is_paper_configuration(record.params) else None)
            rows.append(row)
    return pd.DataFrame(rows)
