"""DVC experiments as a table: the one module that knows the JSON of `dvc exp show --json`
(DVC 3.x) and the `dvc` and `git` commands that queue, list and snapshot experiments.

Everything DVC-shaped stays here, so a change in DVC's output is a change in this file:
the document is a list of commits (the `workspace` first, then the baseline commit), each
`{rev, name, data: {params, metrics, ...}, error, experiments}`, where `experiments` is a
list of `{name, executor, revs: [{rev, name, data, error}]}` and `executor.state` is
`queued`, `running`, `success` or `failed` (None once DVC no longer tracks the task).
Beware: a queued or failed experiment's `data.metrics` are its baseline's, so only finished
experiments count as results.

The rest of the library sees `ExperimentRecord`s and a pandas table: one row per finished
experiment x per-run metrics file (`metrics/runs/<set>/<model>.json`), with the params that
differ between experiments as columns and the metrics flattened to dotted keys
(`dnn.<test_set>.accuracy.mean`).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mgc.losses import ANCHOR_TERM, TERMS
from mgc.paper import PAPER_CLASSIFIER, PAPER_PROTOCOL, paper_accuracy
from mgc.pipeline.params import PARAMS_FILE
from mgc.pipeline.sweeps import SweepExperiment

DONE, QUEUED, RUNNING, FAILED = "done", "queued", "running", "failed"

PAPER_CONFIGURATION: dict[str, Any] = {
    "data.protocol": PAPER_PROTOCOL,
    **{f"train.classifier.{key}": value for key, value in PAPER_CLASSIFIER.items()},
}
"""The params of the paper's DNN and its splits: a row whose params match these gets the
paper's number beside ours."""

_SKIPPED_METRICS = ("per_class_f1",)


class ExperimentsError(RuntimeError):
    """DVC could not list or queue experiments, or its output was not what we expect."""


@dataclass(frozen=True)
class ExperimentRecord:
    """One DVC experiment, or a baseline commit, as `dvc exp show` describes it.

    `params` are params.yaml's flattened to dotted keys (other params files' keys are
    prefixed `<file>:`); `metrics` maps each metrics file to its parsed JSON.
    `baseline_params` are the params of the commit the experiment branches from.
    """

    name: str
    rev: str
    baseline: str
    is_baseline: bool
    state: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    baseline_params: dict[str, Any]
    error: str | None = None


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> {dotted key: leaf value}; lists are leaves."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _file_results(files: Any) -> dict[str, Any]:
    """`{path: {"data": ...}}` -> {path: data}; files DVC could not read are left out."""
    if not isinstance(files, Mapping):
        return {}
    return {path: result["data"] for path, result in files.items()
            if isinstance(result, Mapping) and isinstance(result.get("data"), Mapping)}


def _params(data: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for path, values in _file_results(data.get("params")).items():
        flat.update(flatten(values, "" if path == str(PARAMS_FILE) else f"{path}:"))
    return flat


def _error(state: Mapping[str, Any]) -> str | None:
    error = state.get("error")
    if isinstance(error, Mapping):
        return str(error.get("msg") or error.get("type") or error)
    return str(error) if error else None


def parse_exp_show(document: Any) -> list[ExperimentRecord]:
    """Every baseline commit and its experiments from `dvc exp show --json` output.

    The `workspace` entry is left out: it is uncommitted state, not a result.
    """
    if not isinstance(document, list):
        raise ExperimentsError("dvc exp show --json: expected a list of commits, got "
                               f"{type(document).__name__}")
    records = []
    for commit in document:
        if not isinstance(commit, Mapping) or commit.get("rev") == "workspace":
            continue
        data = commit.get("data") or {}
        baseline = commit.get("name") or str(commit.get("rev", ""))[:7]
        baseline_params = _params(data)
        records.append(ExperimentRecord(
            name=baseline, rev=str(commit.get("rev")), baseline=baseline, is_baseline=True,
            state=FAILED if _error(commit) else DONE, params=baseline_params,
            metrics=_file_results(data.get("metrics")), baseline_params=baseline_params,
            error=_error(commit)))
        for experiment in commit.get("experiments") or []:
            revs = experiment.get("revs") or []
            if not revs:
                continue
            latest = revs[0]
            executor = experiment.get("executor") or {}
            error = _error(latest)
            state = executor.get("state") or (FAILED if error else DONE)
            state = {"success": DONE}.get(state, state)
            exp_data = latest.get("data") or {}
            records.append(ExperimentRecord(
                name=experiment.get("name") or latest.get("name") or str(latest["rev"])[:7],
                rev=str(latest.get("rev")), baseline=baseline, is_baseline=False,
                state=FAILED if error else state, params=_params(exp_data),
                metrics=_file_results(exp_data.get("metrics")),
                baseline_params=baseline_params, error=error))
    return records


def _run_dvc(args: Sequence[str], repo: Path) -> str:
    """Run `dvc args...` and return its stdout.

    Output goes through temporary files, not pipes: `dvc queue start` leaves worker processes
    behind that inherit them, and reading a pipe would wait until those workers exit.
    """
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        try:
            code = subprocess.run(["dvc", *args], cwd=repo, stdout=stdout, stderr=stderr,
                                  stdin=subprocess.DEVNULL, check=False).returncode
        except FileNotFoundError:
            raise ExperimentsError("the `dvc` command is not on PATH: activate the project's "
                                   "environment (source .venv/bin/activate)") from None
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    if code != 0:
        raise ExperimentsError(f"dvc {' '.join(args)} failed ({code}):\n"
                               f"{errors.strip() or output.strip()}")
    return output


def exp_show(repo: Path = Path("."), all_commits: bool = False) -> list[dict[str, Any]]:
    """Run `dvc exp show --json` in `repo` and return its document: the experiments of
    HEAD, or with `all_commits` those of every commit (`-A`), for a sweep whose
    experiments were run before the last commit."""
    output = _run_dvc(["exp", "show", "--json", *(["-A"] if all_commits else [])], repo)
    try:
        return json.loads(output)
    except json.JSONDecodeError as error:
        raise ExperimentsError(f"dvc exp show --json printed no JSON ({error}): "
                               f"{output[:200]!r}") from None


def exp_show_while_running(repo: Path = Path("."), attempts: int = 5,
                           wait_s: float = 2.0) -> list[dict[str, Any]]:
    """`exp_show`, retried while queue workers run.

    Workers create and delete their temporary copies under `.dvc/tmp/exps`, and a
    `dvc exp show` that lists one as it vanishes fails ("directory ... does not exist",
    DVC 3.67); the next call sees a consistent state. A failure on every attempt is real
    and raised.
    """
    for _ in range(attempts - 1):
        try:
            return exp_show(repo)
        except ExperimentsError:
            time.sleep(wait_s)
    return exp_show(repo)


def uncommitted_changes(repo: Path = Path(".")) -> list[str]:
    """Tracked files with uncommitted changes: a queued experiment snapshots them too."""
    result = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                            capture_output=True, text=True, check=False)
    return [line[3:] for line in result.stdout.splitlines()] if result.returncode == 0 else []


def queue_command(experiment: SweepExperiment, force: bool = False) -> list[str]:
    """`dvc exp run --queue -n <name> -S key=value ...` for one sweep experiment."""
    command = ["dvc", "exp", "run", "--queue", "-n", experiment.name]
    for override in experiment.set_params():
        command += ["-S", override]
    return [*command, "-f"] if force else command


def queue_experiment(experiment: SweepExperiment, repo: Path = Path("."),
                     force: bool = False) -> None:
    """Queue one experiment (it runs on `dvc queue start`)."""
    _run_dvc(queue_command(experiment, force)[1:], repo)


def start_queue(jobs: int, repo: Path = Path(".")) -> None:
    """Start `jobs` DVC queue workers; they run in the background and exit when it is empty."""
    _run_dvc(["queue", "start", "-j", str(jobs)], repo)


def loss_weight_keys() -> tuple[str, ...]:
    """The params key of every registered loss term's weight (`loss.w_ce`, ...)."""
    return tuple(f"loss.{key}" for key in TERMS)


def _weights(params: Mapping[str, Any]) -> dict[str, float]:
    return {key: float(params.get(f"loss.{key}") or 0.0) for key in TERMS}


def metric_share(params: Mapping[str, Any]) -> float:
    """alpha: the metric losses' share of the total loss weight (0 for CE only)."""
    weights = _weights(params)
    total = sum(weights.values())
    metric = sum(weight for key, weight in weights.items() if TERMS[key].metric)
    return metric / total if total else 0.0


def loss_heads(params: Mapping[str, Any]) -> str:
    """The paper's head configuration a loss setting stands for, e.g. `contrastive, 3 heads,
    CE anchor share 0.5`: a head per metric term and for the anchor CE, and CE on partners
    counts one head per partner role of the metric terms (a triplet's: positive, negative)."""
    weights = _weights(params)
    active = [TERMS[key] for key, weight in weights.items() if weight > 0]
    metric = [term for term in active if term.metric]
    ce_terms = [term for term in active if not term.metric and term.weight_key != ANCHOR_TERM]
    ce_weight = sum(weights[term.weight_key] for term in ce_terms)
    share = (f", CE anchor share {weights[ANCHOR_TERM] / (weights[ANCHOR_TERM] + ce_weight):.2g}"
             if ce_terms else "")
    if not metric:
        return "CE only" + share
    roles = max(term.partner_roles for term in metric)
    heads = 1 + len(metric) + roles * len(ce_terms)
    return f"{' + '.join(term.name for term in metric)}, {heads} heads{share}"


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
