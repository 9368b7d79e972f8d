"""mgc.pipeline.studies: a sweep's experiments collected into results/<sweep>/ (tables,
comparisons, the compact README table, the A/A calibration when the sweep asks for it),
from records and prediction tables, without DVC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mgc.calibration import AADesign
from mgc.pipeline.dvc_experiments import DONE, FAILED, ExperimentRecord
from mgc.pipeline.studies import collect_study, latest_records
from mgc.pipeline.sweeps import Sweep, SweepExperiment


def _predictions(right: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame({"test_set": "synth", "dataset": "synth",
                          "track_id": [f"t{i}" for i in range(right.shape[1])], "label": "jazz"})
    for seed, column in enumerate(right):
        table[f"dnn_seed{seed}"] = np.where(column, "jazz", "rock")
    return table


def _record(name: str, weight: float, accuracy: float, state: str = DONE) -> ExperimentRecord:
    scores = {"accuracy": {"mean": accuracy, "std": 0.02, "ci95_low": accuracy - 0.1,
                           "ci95_high": accuracy + 0.1}, "macro_f1": {"mean": 0.5, "std": 0.0}}
    metrics = {"train_set": "synth", "model": "mfcc", "weights": "none", "dnn": {"synth": scores}}
    return ExperimentRecord(name=name, rev=name, baseline="main", is_baseline=False, state=state,
                            params={"loss.w_ce": weight}, metrics={"metrics/runs/x.json": metrics},
                            baseline_params={"loss.w_ce": 1.0})


def test_a_study_writes_its_tables_comparisons_and_calibration(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    right = {"ref": rng.random((8, 30)) < 0.6, "new": rng.random((8, 30)) < 0.9}
    sweep = Sweep("fx", "A reference and a change.", (
        SweepExperiment("ref", {"loss.w_ce": 1.0}), SweepExperiment("new", {"loss.w_ce": 0.5}),
        SweepExperiment("lost", {"loss.w_ce": 0.2})),
        calibration=AADesign(seeds_per_set=(1, 2), pairs=5, test_tracks=(200,),
                             difference=0.02, seed=0))
    records = [_record("ref", 1.0, right["ref"].mean()), _record("new", 0.5, right["new"].mean()),
               _record("new", 0.5, 0.1), _record("lost", 0.2, 0.0, FAILED)]
    assert [r.metrics["metrics/runs/x.json"]["dnn"]["synth"]
            ["accuracy"]["mean"] for r in latest_records(records)][:2] == [
        right["ref"].mean(), right["new"].mean()]  # the first listing of a name wins
    _, unfinished, written = collect_study(
        records, lambda rev, s, m: _predictions(right[rev]), tmp_path, sweep)
    assert unfinished == {"lost": FAILED}
    assert {p.name for p in written} >= {"experiments.md", "experiments.csv", "experiments.json",
                                         "comparisons.csv", "table.md", "calibration.json",
                                         "calibration.md"}
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    assert list(comparisons["experiment"]) == ["new"] and comparisons["significant"].item()
    compact = (tmp_path / "table.md").read_text()
    assert compact.startswith("Partial: 2 of 3 experiments have results; without: lost.")
    assert "| ref | " in compact and "reference" in compact and " * |" in compact
    assert "detectable difference" in compact
    rows = json.loads((tmp_path / "experiments.json").read_text())
    assert [row["experiment"] for row in rows] == ["ref", "new"]
    calibration = json.loads((tmp_path / "calibration.json").read_text())
    assert set(calibration["false_positive_rate"]) == {
        "mcnemar", "track_bootstrap", "two_level_bootstrap", "seed_permutation"}
    assert calibration["power"]["by_table"]["synth/mfcc"]["seeds"] == 8
    assert "| seed_permutation |" in (tmp_path / "calibration.md").read_text()


def test_a_study_without_finished_experiments_says_so(tmp_path: Path) -> None:
    table, unfinished, _ = collect_study([], lambda *_: None, tmp_path,
                                         Sweep("fx", "Nothing ran.", (SweepExperiment("a", {}),)))
    assert table.empty and unfinished == {"a": "not queued"}
    assert "No finished experiments" in (tmp_path / "table.md").read_text()


def test_a_study_of_one_experiment_has_no_comparison_columns(tmp_path: Path) -> None:
    right = np.random.default_rng(1).random((1, 30)) < 0.7
    collect_study([_record("folds", 1.0, right.mean())], lambda *_: _predictions(right),
                  tmp_path, Sweep("kf", "One experiment.", (SweepExperiment("folds", {}),)))
    compact = (tmp_path / "table.md").read_text()
    assert compact.splitlines()[:2] == ["| experiment | synth |", "|---|---|"]
    assert "| folds | " in compact
    assert "vs folds" not in compact and "detectable difference" not in compact
