"""Paired tests between experiments (`mgc report`, a study's results): each experiment's
DNN against the first of its train set and extractor, on the same test tracks, from the
per-track predictions the train stage commits (`predictions/<set>/<model>.csv`) in each
experiment's Git commit.

Each comparison resamples both sources of noise (`mgc.statistics.compare_configurations`:
a two-level bootstrap over seeds and tracks, and the smallest difference the design
detects); with a single seed on a side training noise cannot be measured and only a
track-only test is possible (exact McNemar with one seed each). The p-values of one table
are adjusted together (Benjamini-Hochberg), since a sweep makes dozens of comparisons and
some would pass p < 0.05 by chance alone.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from mgc.evaluate import correct_by_seed
from mgc.pipeline.layout import Layout
from mgc.statistics import SIGNIFICANCE, compare_configurations

CLASSIFIER = "dnn"
KEYS = ["experiment", "train_set", "model", "test_set"]
RESULT_COLUMNS = ["reference", "own", "tracks", "seeds", "reference_seeds", "test",
                  "difference", "difference_low", "difference_high", "p_value", "q_value",
                  "significant", "minimum_detectable"]

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


def paired_comparisons(table: pd.DataFrame, read: PredictionReader,
                       every_test_set: bool = False) -> pd.DataFrame:
    """One row per experiment x train set x extractor x test set compared with its
    reference, the first row of its train set and extractor in `table`
    (`experiment_table`'s rows: a sweep's first experiment, or the baseline commit).

    Columns: `KEYS`, then `reference`, `own` (the run's own test split), `tracks`, `seeds`
    and `reference_seeds`, `test`, `difference` (B minus the reference, accuracy as a
    fraction) with its 95 % interval (`difference_low`, `difference_high`), `p_value`,
    `q_value` (Benjamini-Hochberg over every row) and `significant` (q < 0.05), and
    `minimum_detectable` (the difference the design finds with 80 % power; NaN with one
    seed). Only the own test split is compared unless `every_test_set` (also other
    datasets' tracks of shared genres: the domain study); rows on other tracks (another
    protocol) or without predictions get no row.
    """
    rows = []
    if table.empty:
        return pd.DataFrame(rows, columns=[*KEYS, *RESULT_COLUMNS])
    for (train_set, model), group in table.groupby(["train_set", "model"], sort=False):
        first = group.iloc[0]
        reference = read(first["rev"], train_set, model)
        if reference is None:
            continue
        for _, row in group.iloc[1:].iterrows():
            other = read(row["rev"], train_set, model)
            if other is None:
                continue
            test_sets = (sorted(set(reference["test_set"]) & set(other["test_set"]))
                         if every_test_set else [row["test_set"]])
            for test_set in test_sets:
                a = correct_by_seed(reference, test_set, CLASSIFIER)
                b = correct_by_seed(other, test_set, CLASSIFIER)
                if a.empty or b.empty or set(a.index) != set(b.index):
                    continue
                result = compare_configurations(a.to_numpy(float).T,
                                                b.reindex(a.index).to_numpy(float).T)
                rows.append({
                    "experiment": row["experiment"], "train_set": train_set, "model": model,
                    "test_set": test_set, "reference": first["experiment"],
                    "own": test_set == row["test_set"], "tracks": result.tracks,
                    "seeds": result.seeds_b, "reference_seeds": result.seeds_a,
                    "test": result.test, "difference": result.difference,
                    "difference_low": result.low, "difference_high": result.high,
                    "p_value": result.p_value, "q_value": np.nan, "significant": False,
                    "minimum_detectable": result.minimum_detectable})
    out = pd.DataFrame(rows, columns=[*KEYS, *RESULT_COLUMNS])
    if len(out):
        out["q_value"] = stats.false_discovery_control(out["p_value"].astype(float).to_numpy())
        out["significant"] = out["q_value"] < SIGNIFICANCE
    return out


def with_own_comparisons(table: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """`table` with each row's comparison on its own test split as columns
    (`RESULT_COLUMNS` less `own`); rows without one get NaN and `significant` False."""
    if table.empty:
        return table
    own = comparisons[comparisons["own"]].drop(columns="own") if len(comparisons) else (
        comparisons.drop(columns="own"))
    merged = table.drop(columns=[c for c in RESULT_COLUMNS if c in table.columns]).merge(
        own, on=KEYS, how="left")
    merged["significant"] = merged["significant"].fillna(False).astype(bool)
    return merged
