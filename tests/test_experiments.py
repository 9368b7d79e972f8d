"""DVC experiments as a table, and the experiments report, from a recorded `dvc exp show`.

`tests/data/dvc_exp_show.json` was recorded with DVC 3.67 from this pipeline on a tiny
synthetic corpus (6 clips per genre, 2 s, mfcc, seeds [0, 1], 3 epochs): the baseline
commit `main`, nine finished experiments from a sweep (loss weights, depth, noise), one
that failed (`fx-noise-off`) and one still queued (`fx-queued`); only the `deps` and `outs`
sections were dropped and the temporary paths renamed. Expected values are read from that
document independently of the code under test.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mgc.cli import app
from mgc.pipeline.dvc_experiments import (
    DONE,
    FAILED,
    QUEUED,
    ExperimentsError,
    exp_show,
    parse_exp_show,
    queue_command,
)
from mgc.pipeline.experiments import changed_params, experiment_table, is_paper_configuration
from mgc.pipeline.experiments_report import (
    EXPERIMENT_FACTORS,
    domain_markdown,
    factor_rows,
    write_experiments_report,
)
from mgc.pipeline.loss_labels import loss_heads, metric_share
from mgc.pipeline.sweeps import SweepExperiment

REPO = Path(__file__).resolve().parents[1]
RECORDED = Path(__file__).parent / "data" / "dvc_exp_show.json"
RUN_FILES = ("metrics/runs/joint/mfcc.json", "metrics/runs/synth_fma/mfcc.json",
             "metrics/runs/synth_gtzan/mfcc.json")
FINISHED = ["fx-ce-only", "fx-2h-contrastive-a0.5", "fx-2h-contrastive-a0.25",
            "fx-2h-triplet-a0.5", "fx-3h-contrastive-a0.3", "fx-depth-1", "fx-depth-2",
            "fx-noise-once-snr10", "fx-noise-every_epoch-snr10"]


@pytest.fixture(scope="module")
def document() -> list[dict[str, Any]]:
    return json.loads(RECORDED.read_text())


def _raw_experiments(document: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> the recorded rev entry, straight from the JSON."""
    baseline = document[1]
    return {exp["name"]: exp["revs"][0] for exp in baseline["experiments"]}


def test_parse_reads_states_params_and_metrics(document: list[dict[str, Any]]) -> None:
    records = {r.name: r for r in parse_exp_show(document)}
    assert "workspace" not in records
    assert records["main"].is_baseline and records["main"].state == DONE
    assert sorted(n for n, r in records.items() if r.state == DONE and not r.is_baseline) == \
        sorted(FINISHED)
    assert records["fx-noise-off"].state == FAILED
    assert records["fx-noise-off"].error == "Experiment run failed"
    assert records["fx-queued"].state == QUEUED
    raw = _raw_experiments(document)
    depth = records["fx-depth-1"]
    assert depth.rev == raw["fx-depth-1"]["rev"] and depth.baseline == "main"
    assert depth.params["train.classifier.hidden_layers"] == 1
    assert depth.baseline_params["train.classifier.hidden_layers"] == 4
    assert depth.params["data.datasets"] == ["synth_gtzan", "synth_fma"]
    assert depth.metrics[RUN_FILES[2]] == raw["fx-depth-1"]["data"]["metrics"][RUN_FILES[2]][
        "data"]
    assert changed_params(depth) == ["train.classifier.hidden_layers"]
    assert changed_params(records["fx-noise-every_epoch-snr10"]) == [
        "train.noise.mode", "train.noise.snr_db"]
    assert changed_params(records["main"]) == []


def test_parse_rejects_what_is_not_an_exp_show_document() -> None:
    with pytest.raises(ExperimentsError, match="expected a list of commits"):
        parse_exp_show({"rev": "workspace"})


def test_table_has_a_row_per_finished_experiment_and_run_file(
        document: list[dict[str, Any]]) -> None:
    table = experiment_table(parse_exp_show(document))
    assert len(table) == (len(FINISHED) + 1) * len(RUN_FILES)
    assert set(table["experiment"]) == {*FINISHED, "main"}
    assert sorted(set(table["metrics_file"])) == list(RUN_FILES)
    varied = list(table.columns[list(table.columns).index("baseline") + 1:
                                list(table.columns).index("train_set")])
    assert varied == ["train.classifier.hidden_layers", "train.noise.mode", "train.noise.snr_db",
                      "loss.w_ce", "loss.w_ce_pair", "loss.w_contrastive", "loss.w_triplet",
                      "alpha", "loss_heads"]
    assert not any("per_class_f1" in column for column in table.columns)
    raw = _raw_experiments(document)
    for name in FINISHED:
        for path in RUN_FILES:
            metrics = raw[name]["data"]["metrics"][path]["data"]
            row = table[(table["experiment"] == name) & (table["metrics_file"] == path)].iloc[0]
            own = metrics["train_set"] if metrics["train_set"] != "joint" else "all"
            assert row["test_set"] == own
            for classifier in ("dnn", "linear"):
                for test_set, scores in metrics[classifier].items():
                    assert row[f"{classifier}.{test_set}.accuracy.mean"] == \
                        scores["accuracy"]["mean"]
                    assert row[f"{classifier}.{test_set}.macro_f1.std"] == \
                        scores["macro_f1"]["std"]
            params = raw[name]["data"]["params"]["params.yaml"]["data"]
            weights = [params["loss"][k] for k in ("w_ce", "w_ce_pair", "w_contrastive",
                                                   "w_triplet")]
            assert math.isclose(row["alpha"], (weights[2] + weights[3]) / sum(weights),
                                abs_tol=1e-6)


def test_table_keeps_a_sweeps_experiments_in_its_order(document: list[dict[str, Any]]) -> None:
    names = ["fx-depth-2", "fx-noise-off", "fx-ce-only", "not-run"]
    table = experiment_table(parse_exp_show(document), names)
    assert list(dict.fromkeys(table["experiment"])) == ["fx-depth-2", "fx-ce-only"]
    assert list(table.columns[3:5]) == ["train.classifier.hidden_layers", "train_set"]


def test_loss_labels_and_alpha() -> None:
    assert metric_share({"loss.w_ce": 0.5, "loss.w_contrastive": 0.25}) == pytest.approx(1 / 3)
    assert metric_share({"loss.w_ce": 1.0}) == 0.0
    assert loss_heads({"loss.w_ce": 1.0, "loss.w_ce_pair": 0.0}) == "CE only"
    assert loss_heads({"loss.w_ce": 0.7, "loss.w_contrastive": 0.3}) == "contrastive, 2 heads"
    assert loss_heads({"loss.w_ce": 0.35, "loss.w_ce_pair": 0.35, "loss.w_contrastive": 0.3}) \
        == "contrastive, 3 heads, CE anchor share 0.5"
    assert loss_heads({"loss.w_ce": 0.2, "loss.w_ce_pair": 0.4, "loss.w_triplet": 0.4}) \
        == "triplet, 4 heads, CE anchor share 0.33"


def _as_real_data(document: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded document with synth_gtzan renamed gtzan and mfcc renamed byola."""
    text = json.dumps(document).replace("synth_gtzan", "gtzan").replace('"mfcc"', '"byola"')
    return json.loads(text.replace("/mfcc.json", "/byola.json"))


def test_paper_number_only_beside_the_papers_configuration(
        document: list[dict[str, Any]]) -> None:
    records = parse_exp_show(_as_real_data(copy.deepcopy(document)))
    assert is_paper_configuration(next(r for r in records if r.name == "main").params)
    table = experiment_table(records).set_index(["experiment", "train_set"])
    assert table.loc[("fx-ce-only", "gtzan"), "paper_accuracy"] == 81.5
    assert table.loc[("fx-noise-once-snr10", "gtzan"), "paper_accuracy"] == 81.5
    assert pd.isna(table.loc[("fx-depth-1", "gtzan"), "paper_accuracy"])
    assert pd.isna(table.loc[("fx-ce-only", "synth_fma"), "paper_accuracy"])
    assert pd.isna(table.loc[("fx-ce-only", "joint"), "paper_accuracy"])


def test_factor_rows_hold_one_factor_at_a_time(document: list[dict[str, Any]]) -> None:
    table = experiment_table(parse_exp_show(document))
    factors = {factor.name: factor for factor in EXPERIMENT_FACTORS}
    depth = factor_rows(table, factors["depth"])
    gtzan = depth[depth["train_set"] == "synth_gtzan"]
    assert sorted(gtzan["train.classifier.hidden_layers"]) == [1, 2, 4]
    assert set(gtzan["experiment"]) <= {"fx-depth-1", "fx-depth-2", "main", "fx-ce-only"}
    alpha = factor_rows(table, factors["alpha"])
    assert "fx-depth-1" not in set(alpha["experiment"])
    assert set(alpha["series"]) == {"CE only", "contrastive, 2 heads", "triplet, 2 heads",
                                    "contrastive, 3 heads, CE anchor share 0.5"}
    snr = factor_rows(table, factors["snr"])
    assert set(zip(snr["series"], snr["train.noise.snr_db"], strict=True)) == {
        ("once", 20.0), ("once", 10.0), ("every_epoch", 10.0)}
    row = depth[(depth["experiment"] == "fx-depth-1") & (depth["train_set"] == "synth_fma")]
    assert row["accuracy"].item() == row["dnn.synth_fma.accuracy.mean"].item()


def test_report_writes_tables_and_the_plots_that_apply(
        document: list[dict[str, Any]], tmp_path: Path) -> None:
    table = experiment_table(parse_exp_show(document))
    written = write_experiments_report(table, tmp_path, "Experiments", "Intro text.",
                                       {"fx-noise-off": FAILED, "fx-queued": QUEUED})
    assert sorted(p.name for p in written) == [
        "accuracy_vs_alpha.png", "accuracy_vs_depth.png", "accuracy_vs_snr.png",
        "experiments.csv", "experiments.md"]
    for png in tmp_path.glob("*.png"):
        assert matplotlib.image.imread(png).shape[0] > 100
    markdown = (tmp_path / "experiments.md").read_text()
    assert markdown.startswith("# Experiments\n\nIntro text.\n")
    for name in FINISHED:
        assert markdown.count(f"| {name} |") == len(RUN_FILES)
    assert "Not finished (no results): fx-noise-off (failed), fx-queued (queued)." in markdown
    row = table[(table["experiment"] == "fx-depth-1") & (table["train_set"] == "synth_gtzan")]
    accuracy = 100 * row["dnn.synth_gtzan.accuracy.mean"].item()
    std = 100 * row["dnn.synth_gtzan.accuracy.std"].item()
    assert f"| synth_gtzan | {accuracy:.1f} ± {std:.1f} |" in markdown
    csv = pd.read_csv(tmp_path / "experiments.csv")
    assert len(csv) == len(table)
    assert list(csv.columns) == list(table.columns)


def test_report_command_from_a_saved_document(tmp_path: Path) -> None:
    sweep = tmp_path / "fx.yaml"
    sweep.write_text("description: Depth and a failed run.\nexperiments:\n"
                     "  - name: fx-depth-{train.classifier.hidden_layers}\n"
                     "    grid: {train.classifier.hidden_layers: [1, 2]}\n"
                     "  - {name: fx-noise-off, set: {train.noise.mode: 'off'}}\n"
                     "  - {name: fx-never-queued, set: {train.classifier.dropout: 0.2}}\n")
    result = CliRunner().invoke(app, [
        "report", "--from-json", str(RECORDED), "--out", str(tmp_path / "out"),
        "--sweep", str(sweep), "--params", str(REPO / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert "2 experiments, 6 rows; 2 unfinished" in result.stdout
    markdown = (tmp_path / "out" / "experiments.md").read_text()
    assert "Depth and a failed run." in markdown
    assert "fx-never-queued (not queued)" in markdown and "fx-noise-off (failed)" in markdown
    assert (tmp_path / "out" / "accuracy_vs_depth.png").exists()
    assert not (tmp_path / "out" / "accuracy_vs_alpha.png").exists()


def test_queue_command_quotes_nothing_dvc_would_misread() -> None:
    experiment = SweepExperiment("paper-protocol-standard", {
        "data.datasets": ["gtzan", "fma_small"], "data.protocol": "standard",
        "train.noise.snr_db": 20.0, "data.sources.gtzan.archive": "/data/my genres.tar.gz"})
    assert queue_command(experiment) == [
        "dvc", "exp", "run", "--queue", "-n", "paper-protocol-standard",
        "-S", "data.datasets=[gtzan,fma_small]", "-S", "data.protocol=standard",
        "-S", "train.noise.snr_db=20.0",
        "-S", "data.sources.gtzan.archive='/data/my genres.tar.gz'"]
    assert queue_command(experiment, force=True)[-1] == "-f"


def test_polling_while_workers_run_retries_a_transient_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC's `exp show` can fail on a worker's temporary copy vanishing under it; polling
    retries, and gives up (raising) only when every attempt fails."""
    from mgc.pipeline import dvc_experiments as experiments

    calls: list[int] = []

    def flaky(repo: Path, all_commits: bool = False) -> list[dict]:
        calls.append(1)
        if len(calls) < 3:
            raise ExperimentsError("directory '.dvc/tmp/exps/tmpx/.dvc' does not exist")
        return [{"rev": "workspace"}]

    monkeypatch.setattr(experiments, "exp_show", flaky)
    assert experiments.exp_show_while_running(Path("."), attempts=5, wait_s=0) == [
        {"rev": "workspace"}]
    assert len(calls) == 3
    calls.clear()

    def down(repo: Path, all_commits: bool = False) -> list[dict]:
        calls.append(1)
        raise ExperimentsError("down")

    monkeypatch.setattr(experiments, "exp_show", down)
    with pytest.raises(ExperimentsError, match="down"):
        experiments.exp_show_while_running(Path("."), attempts=4, wait_s=0)
    assert len(calls) == 4


def test_exp_show_outside_a_dvc_repository_names_the_failure(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    with pytest.raises(ExperimentsError, match=r"dvc exp show --json failed \(\d+\):\n.+"):
        exp_show(tmp_path)


@pytest.mark.slow
def test_sweep_runs_as_dvc_experiments_and_reports(tmp_path: Path) -> None:
    """End to end in a throw-away DVC project: `mgc sweep --run` queues, runs and waits for
    a two-point grid; `mgc report` tabulates what DVC recorded for each experiment."""
    import os
    import shutil
    import sys

    import yaml

    root = tmp_path / "project"
    for name in ("mgc", "stages", "dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots",
                 ".dvcignore", ".gitignore"):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["datasets"] = ["synth_gtzan"]
    params["data"]["sources"]["synth_gtzan"].update(clips_per_genre=5, clip_seconds=2)
    params["embed"]["models"] = ["mfcc"]
    params["train"].update(sets=["synth_gtzan"], seeds=[0], epochs=2)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "sweeps").mkdir()
    (root / "sweeps" / "depth.yaml").write_text(
        "description: depth 1 and 2\nexperiments:\n"
        "  - name: depth-{train.classifier.hidden_layers}\n"
        "    grid: {train.classifier.hidden_layers: [1, 2]}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MGC_CACHE": str(tmp_path / "cache")}

    def run(*args: str) -> str:
        result = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    run("git", "init", "-q", "-b", "main")
    run("git", "config", "user.email", "ci@example.invalid")
    run("git", "config", "user.name", "CI")
    run("dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    output = run(sys.executable, "-m", "mgc.cli", "sweep", "depth", "--run", "-j", "2")
    assert "queued depth-1: train.classifier.hidden_layers=1" in output
    assert "sweep depth: 2 finished, 0 not (none)" in output
    assert "wrote results/depth/table.md" in output  # --run collected the study
    run(sys.executable, "-m", "mgc.cli", "report", "--sweep", "depth", "--out", "reports")
    table = pd.read_csv(root / "reports" / "experiments.csv")
    assert list(table["experiment"]) == ["depth-1", "depth-2"]
    assert list(table["train.classifier.hidden_layers"]) == [1, 2]
    shown = {r.name: r for r in parse_exp_show(json.loads(run("dvc", "exp", "show", "--json")))}
    for row in table.to_dict("records"):
        metrics = shown[row["experiment"]].metrics["metrics/runs/synth_gtzan/mfcc.json"]
        assert metrics["dnn"]["synth_gtzan"]["accuracy"]["mean"] == pytest.approx(
            row["dnn.synth_gtzan.accuracy.mean"])
    run("dvc", "queue", "stop")
    status = run("dvc", "queue", "status")
    assert "Running" not in status and "Queued" not in status


def test_a_narrowed_experiment_reports_only_its_own_runs(
        document: list[dict[str, Any]]) -> None:
    """An experiment run with `embed.models` or `train.sets` narrowed keeps the baseline's
    other run files in its commit; they are not its results."""
    records = parse_exp_show(document)
    narrowed = [replace(r, params={**r.params, "train.sets": ["synth_gtzan", "joint"]})
                if r.name == "fx-depth-1" else r for r in records]
    table = experiment_table(narrowed)
    depth = table[table["experiment"] == "fx-depth-1"]
    assert sorted(depth["train_set"]) == ["joint", "synth_gtzan"]
    other = [replace(r, params={**r.params, "embed.models": ["byola"]})
             if r.name == "fx-depth-1" else r for r in records]
    assert "fx-depth-1" not in set(experiment_table(other)["experiment"])


def test_a_sweep_wide_override_is_part_of_the_reference_point(
        document: list[dict[str, Any]]) -> None:
    """`mgc sweep fig2 --set 'embed.models=[mfcc]'` changes that key in every experiment:
    it must not count as a second factor, or no row would be one factor at a time."""
    records = parse_exp_show(document)
    narrowed = [r if r.is_baseline else replace(r, params={**r.params, "train.threads": 3})
                for r in records]
    names = [r.name for r in records if not r.is_baseline and r.state == DONE]
    table = experiment_table(narrowed, names)
    assert not any("train.threads" in changed.split() for changed in table["changed"])
    depth = factor_rows(table, {f.name: f for f in EXPERIMENT_FACTORS}["depth"])
    gtzan = depth[depth["train_set"] == "synth_gtzan"]
    assert sorted(gtzan["train.classifier.hidden_layers"]) == [1, 2, 4]
    one_differs = [replace(r, params={**r.params, "train.threads": 2})
                   if r.name == "fx-depth-1" else r for r in narrowed]
    changed = experiment_table(one_differs, names).set_index("experiment")["changed"]
    assert "train.threads" in changed["fx-depth-1"].iloc[0].split()
    assert "train.threads" in changed["fx-depth-2"].iloc[0].split()


def test_report_reads_every_commits_experiments_when_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mgc.pipeline import dvc_experiments as experiments

    seen: list[list[str]] = []

    def run(args: list[str], repo: Path) -> str:
        seen.append(list(args))
        return "[]"

    monkeypatch.setattr(experiments, "_run_dvc", run)
    assert exp_show(Path("."), all_commits=True) == []
    assert exp_show(Path(".")) == []
    assert seen == [["exp", "show", "--json", "-A"], ["exp", "show", "--json"]]


def _layer_rows() -> pd.DataFrame:
    """Run rows as `experiment_table` gives them for sweeps/layers.yaml: two extractors,
    each layer with its depth and a weighted probe, on two train sets."""
    rows = []
    for train_set in ("synth_gtzan", "joint"):
        for model, names in (("byola", ["conv1", "conv2", "fc", "stacked"]),
                             ("panns", ["block1", "block6", "fc1"])):
            for depth, layer in enumerate([*names, "weighted"], 1):
                accuracy = 0.3 + 0.1 * depth if layer != "weighted" else 0.75
                test_set = "all" if train_set == "joint" else train_set
                rows.append({
                    "experiment": f"layers-{model}-{layer}", "rev": "abc1234",
                    "baseline": "main", "train.layer": layer, "train_set": train_set,
                    "model": model, "weights": "random", "protocol": "paper",
                    "test_set": test_set, "metrics_file": f"metrics/runs/{model}.json",
                    "changed": "train.layer", "layer_count": len(names),
                    "layer_depth": depth if layer != "weighted" else float("nan"),
                    f"dnn.{test_set}.accuracy.mean": accuracy,
                    f"dnn.{test_set}.accuracy.std": 0.01,
                    f"dnn.{test_set}.accuracy.ci95_low": accuracy - 0.05,
                    f"dnn.{test_set}.accuracy.ci95_high": accuracy + 0.04,
                    "paper_accuracy": None})
    return pd.DataFrame(rows)


def test_layer_plot_has_one_line_per_extractor_with_intervals(tmp_path: Path) -> None:
    from matplotlib.container import ErrorbarContainer

    from mgc.pipeline.experiments_report import layer_depth_figure, plot_layer_depth

    table = _layer_rows()
    figure = layer_depth_figure(table)
    assert figure is not None and len(figure.axes) == 2
    for axis in figure.axes:
        lines = [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
        assert len(lines) == 2                                    # byola, panns
        byola = lines[0]
        x, y = byola.lines[0].get_data()
        assert list(x) == [0.25, 0.5, 0.75, 1.0]
        assert list(y) == pytest.approx([0.4, 0.5, 0.6, 0.7])
        segments = byola.lines[2][0].get_segments()
        np.testing.assert_allclose([s[:, 1] for s in segments],
                                   [(a - 0.05, a + 0.04) for a in (0.4, 0.5, 0.6, 0.7)])
        dashed = [line for line in axis.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 2 and {line.get_ydata()[0] for line in dashed} == {0.75}
        assert {t.get_text() for t in axis.texts} >= {"conv1", "stacked", "block6", "fc1"}
    assert plot_layer_depth(table, tmp_path / "layers.png")
    assert matplotlib.image.imread(tmp_path / "layers.png").shape[0] > 100
    assert not plot_layer_depth(table.drop(columns=["layer_count"]), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    written = write_experiments_report(table, tmp_path / "report", "Layers")
    assert "accuracy_vs_layer.png" in [p.name for p in written]


def test_layer_runs_reach_the_plot_through_the_experiment_table() -> None:
    """Run metrics as the train stage writes them for a named layer (`layer_depth`,
    `layer_count`) and for `weighted` become table columns the layer plot reads."""
    from mgc.pipeline.dvc_experiments import DONE, ExperimentRecord
    from mgc.pipeline.experiments_report import layer_depth_figure

    base = {"train.layer": "last", "embed.models": ["vggish"]}

    def record(layer: str, depth: int | None, accuracy: float) -> ExperimentRecord:
        scores = {"accuracy": {"mean": accuracy, "std": 0.01, "ci95_low": accuracy - 0.1,
                               "ci95_high": accuracy + 0.1}}
        metrics = {"train_set": "synth_gtzan", "model": "vggish", "layer": layer,
                   "layer_count": 7, **({"layer_depth": depth} if depth else {}),
                   "dnn": {"synth_gtzan": scores}}
        return ExperimentRecord(name=f"layers-vggish-{layer}", rev="0123456789", baseline="main",
                                is_baseline=False, state=DONE,
                                params={**base, "train.layer": layer},
                                metrics={"metrics/runs/synth_gtzan/vggish.json": metrics},
                                baseline_params=base)

    table = experiment_table([record("conv2", 2, 0.4), record("fc3", 7, 0.6),
                              record("weighted", None, 0.7)])
    assert {"train.layer", "layer_depth", "layer_count"} <= set(table.columns)
    figure = layer_depth_figure(table)
    assert figure is not None
    x, y = figure.axes[0].containers[0].lines[0].get_data()
    assert list(x) == pytest.approx([2 / 7, 1.0]) and list(y) == pytest.approx([0.4, 0.6])


def test_domain_table_has_a_row_per_method_and_a_column_per_direction() -> None:
    table = pd.DataFrame([
        {"experiment": f"domain-{method}", "train.domain": method, "train_set": train_set,
         "model": "mfcc", f"dnn.{train_set}.accuracy.mean": 0.8,
         f"dnn.{train_set}.accuracy.std": 0.01, f"dnn.{other}.accuracy.mean": accuracy,
         f"dnn.{other}.accuracy.std": 0.1}
        for method, accuracy in (("none", 0.4), ("coral", 0.7))
        for train_set, other in (("a", "b"), ("b", "a"))])
    markdown = domain_markdown(table)
    assert "| train.domain | a -> a | a -> b | b -> a | b -> b |" in markdown
    assert "| coral | 80.0 ± 1.0 | 70.0 ± 10.0 | 70.0 ± 10.0 | 80.0 ± 1.0 |" in markdown
    assert "| none | 80.0 ± 1.0 | 40.0 ± 10.0 | 40.0 ± 10.0 | 80.0 ± 1.0 |" in markdown
    assert domain_markdown(table.drop(columns="train.domain")) == ""
    compared = pd.DataFrame([{"experiment": "domain-coral", "train_set": "a", "model": "mfcc",
                              "test_set": "b", "difference": 0.3, "q_value": 0.01,
                              "significant": True}])
    assert "| coral | 80.0 ± 1.0 | 70.0 ± 10.0 / +30.0 q 0.01 * | 70.0 ± 10.0 |" in (
        domain_markdown(table, comparisons=compared))


def test_waiting_outlasts_a_listing_that_leaves_a_running_experiment_out() -> None:
    """`dvc exp show` can drop a running experiment from one listing: waiting goes on until
    every experiment is done or failed, and gives up on one only after many listings."""
    from mgc.pipeline.dvc_experiments import ABSENT, wait_for_experiments

    def listing(states: dict[str, str]) -> list[dict[str, Any]]:
        executor = {"done": "success"}
        return [{"rev": "abc", "name": "main", "data": {}, "experiments": [
            {"name": name, "executor": {"state": executor.get(state, state)},
             "revs": [{"rev": name, "name": name, "data": {},
                       "error": {"msg": "boom"} if state == "failed" else None}]}
            for name, state in states.items()]}]

    listings = iter([listing({"a": "running", "b": "queued"}), listing({}),
                     listing({"b": "running"}), listing({"a": "done", "b": "failed"})])
    lines: list[str] = []
    states = wait_for_experiments(["a", "b"], lines.append, poll_s=0,
                                  show=lambda: next(listings))
    assert states == {"a": DONE, "b": FAILED}
    assert len(lines) >= 2 and lines[-1].endswith("1 done, 1 failed")
    never = wait_for_experiments(["x"], lines.append, poll_s=0, absent_polls=3,
                                 show=lambda: listing({}))
    assert never == {"x": ABSENT}
