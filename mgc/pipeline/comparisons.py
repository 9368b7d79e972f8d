"""Paired tests between experiments (`mgc report`): each experiment's DNN against the first
of its train set and extractor, on the same test tracks, from the per-track predictions the
train stage commits (`predictions/<set>/<model>.csv`) in each experiment's Git commit.

Differences are tested track by track (`mgc.statistics`): the exact McNemar test when both
runs have one seed, else the paired bootstrap over tracks of the seed-averaged scores; the
p-values of one report are then adjusted together (Benjamini-Hochberg), since a sweep makes
dozens of comparisons and some would pass p < 0.05 by chance alone.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mgc.pipeline.layout import Layout
from mgc.statistics import mcnemar_exact, paired_bootstrap, per_track_correct

SIGNIFICANCE = 0.05
CLASSIFIER = "dnn"

PredictionReader = Callable[[str, str, str], pd.DataFrame | None]
"""(rev, train set, model) -> that run's prediction table, or None where there is none."""


def git_predictions(repo: Path = Path(".")) -> PredictionReader:
    """Read prediction tables from Git commits (`git show <rev>:<path>`); a commit without
    the file (a run from before predictions were kept, or a rev Git does not know) gives
    None, and that row is left untested."""
    def read(rev: str, train_set: str, model: str) -> pd.DataFrame | None:
        path = Layout(Path(".")).predictions(train_set, model).as_posix()
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo,
                               capture_output=True, text=True, check=False)
        if shown.returncode != 0:
            return None
        return pd.read_csv(io.StringIO(shown.stdout), dtype=str, keep_default_na=False)
    return read


def _scores(table: pd.DataFrame, test_set: str) -> tuple[pd.Series, int]:
    """Per-track fraction of seeds right on one test set, indexed by (dataset, track_id),
    and the number of seeds."""
    part = table[table["test_set"] == test_set]
    seeds = [c for c in part.columns if c.startswith(f"{CLASSIFIER}_seed")]
    correct = (per_track_correct(part["label"].to_numpy(), part[seeds].to_numpy().T)
               if len(part) else np.empty(0))
    return pd.Series(correct, index=pd.MultiIndex.from_frame(
        part[["dataset", "track_id"]])), len(seeds)


def paired_comparisons(table: pd.DataFrame, read: PredictionReader) -> pd.DataFrame:
    """`table` (`experiment_table`'s rows) with `reference`, `difference` (accuracy points
    as a fraction), `p_value`, `q_value` (BH-adjusted), `test` and `significant` columns.

    Each row is compared with the first row of its train set, extractor and test set (a
    sweep's first experiment, or the baseline commit). Rows with another set of test tracks
    (another protocol) or no predictions get no test.
    """
    columns = {"reference": None, "difference": np.nan, "p_value": np.nan, "q_value": np.nan,
               "test": None, "significant": False}
    out = table.assign(**columns)
    if table.empty:
        return out
    for _, group in table.groupby(["train_set", "model", "test_set"], sort=False):
        first = group.iloc[0]
        reference = read(first["rev"], first["train_set"], first["model"])
        if reference is None:
            continue
        a, seeds_a = _scores(reference, first["test_set"])
        for index, row in group.iloc[1:].iterrows():
            other = read(row["rev"], row["train_set"], row["model"])
            if other is None:
                continue
            b, seeds_b = _scores(other, row["test_set"])
            if len(a) == 0 or set(a.index) != set(b.index):
                continue
            b = b.reindex(a.index)
            if seeds_a == 1 and seeds_b == 1:
                p_value, test = mcnemar_exact(a.to_numpy() == 1, b.to_numpy() == 1), "McNemar"
            else:
                p_value, test = paired_bootstrap(a.to_numpy(), b.to_numpy()).p_value, "bootstrap"
            out.loc[index, ["reference", "difference", "p_value", "test"]] = [
                first["experiment"], float(b.mean() - a.mean()), p_value, test]
    tested = out["p_value"].notna()
    if tested.any():
        out.loc[tested, "q_value"] = stats.false_discovery_control(
            out.loc[tested, "p_value"].astype(float).to_numpy())
        out.loc[tested, "significant"] = out.loc[tested, "q_value"] < SIGNIFICANCE
    return out
