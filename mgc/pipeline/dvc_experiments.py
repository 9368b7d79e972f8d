"""DVC experiments through DVC's command line: the one module that knows the JSON of
`dvc exp show --json` (DVC 3.x) and the `dvc` and `git` commands that queue, list and
snapshot experiments.

Everything DVC-shaped stays here, so a change in DVC's output is a change in this file:
the document is a list of commits (the `workspace` first, then the baseline commit), each
`{rev, name, data: {params, metrics, ...}, error, experiments}`, where `experiments` is a
list of `{name, executor, revs: [{rev, name, data, error}]}` and `executor.state` is
`queued`, `running`, `success` or `failed` (None once DVC no longer tracks the task).
Beware: a queued or failed experiment's `data.metrics` are its baseline's, so only finished
experiments count as results.

The rest of the library sees `ExperimentRecord`s (`mgc.pipeline.experiments` makes the
table of them).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgc.pipeline.params import PARAMS_FILE
from mgc.pipeline.sweeps import SweepExperiment

DONE, QUEUED, RUNNING, FAILED = "done", "queued", "running", "failed"

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
    """`exp_show` of every commit (`-A`: a commit made while the sweep runs must not hide
    its experiments), retried while queue workers run.

    Workers create and delete their temporary copies under `.dvc/tmp/exps`, and a
    `dvc exp show` that lists one as it vanishes fails ("directory ... does not exist",
    DVC 3.67); the next call sees a consistent state. A failure on every attempt is real
    and raised.
    """
    for _ in range(attempts - 1):
        try:
            return exp_show(repo, all_commits=True)
        except ExperimentsError:
            time.sleep(wait_s)
    return exp_show(repo, all_commits=True)


ABSENT = "absent"


def wait_for_experiments(names: Sequence[str], echo: Callable[[str], None],
                         poll_s: float = 5.0, absent_polls: int = 24,
                         show: Callable[[], list[dict[str, Any]]] | None = None,
                         ) -> dict[str, str]:
    """Poll `dvc exp show` until every experiment of `names` is done or failed; returns
    each name's state. `echo` hears a line whenever the counts change.

    `dvc exp show` can leave out a running experiment for a moment (its worker's copy
    vanishing under it), so a name missing from one listing is not taken as finished: only
    a name missing from `absent_polls` listings in a row is given up on (`ABSENT`).
    """
    show = show or exp_show_while_running
    started, last, missing = time.monotonic(), "", dict.fromkeys(names, 0)
    while True:
        listed = {r.name: r.state for r in parse_exp_show(show()) if r.name in missing}
        states = {}
        for name in names:
            missing[name] = 0 if name in listed else missing[name] + 1
            states[name] = listed.get(name, ABSENT if missing[name] >= absent_polls else QUEUED)
        counts = {state: list(states.values()).count(state) for state in set(states.values())}
        line = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        if line != last:
            echo(f"[{time.monotonic() - started:6.0f} s] {line}")
            last = line
        if all(state in (DONE, FAILED, ABSENT) for state in states.values()):
            return states
        time.sleep(poll_s)


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
