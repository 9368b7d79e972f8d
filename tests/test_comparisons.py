"""mgc.pipeline.comparisons: experiments paired with the first of their group on the same
tracks, the test the seeds allow (two-level bootstrap, or McNemar with one seed each),
BH-adjusted significance, other datasets' test sets on request, and no test where the
tracks differ; and reading the predictions from Git commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mgc.pipeline.comparisons import git_predictions, paired_comparisons, with_own_comparisons
from mgc.statistics import SEED_PERMUTATION, mcnemar_exact, seed_permutation, two_level_bootstrap


def _predictions(right: list[list[bool]], ids: list[str] | None = None,
                 test_set: str = "synth") -> pd.DataFrame:
    """A prediction table: one column per seed, each track right or wrong as given."""
    ids = ids or [f"t{i}" for i in range(len(right[0]))]
    table = pd.DataFrame({"test_set": test_set, "dataset": test_set, "track_id": ids,
                          "label": "jazz"})
    for seed, column in enumerate(right):
        table[f"dnn_seed{seed}"] = ["jazz" if ok else "rock" for ok in column]
    return table


def _rows(*experiments: str) -> pd.DataFrame:
    return pd.DataFrame({"experiment": list(experiments), "rev": list(experiments),
                         "train_set": "synth", "model": "mfcc", "test_set": "synth"})


def test_one_seed_each_is_tested_with_exact_mcnemar_and_no_detectable_size() -> None:
    base = [True] * 10 + [False] * 10
    better = [True] * 19 + [False]  # 9 tracks only `better` gets right, none the other way
    tables = {"ref": _predictions([base]), "new": _predictions([better])}
    out = paired_comparisons(_rows("ref", "new"), lambda rev, s, m: tables[rev])
    assert len(out) == 1
    row = out.iloc[0]
    assert row["test"] == "McNemar" and row["reference"] == "ref" and row["experiment"] == "new"
    assert row["difference"] == pytest.approx(0.45)
    assert row["p_value"] == pytest.approx(mcnemar_exact(np.array(base), np.array(better)))
    assert row["p_value"] == pytest.approx(2 / 2**9)  # 9 discordant, all one way
    assert bool(row["significant"]) and np.isnan(row["minimum_detectable"])
    table = with_own_comparisons(_rows("ref", "new"), out)
    assert pd.isna(table.iloc[0]["p_value"]) and not table.iloc[0]["significant"]
    assert table.iloc[1]["difference"] == pytest.approx(0.45)


def test_several_seeds_are_tested_over_seeds_and_tracks_and_adjusted_together() -> None:
    rng = np.random.default_rng(0)
    ref = rng.random((5, 60)) < 0.7
    same = ref.copy()
    same[:, :2] = ~same[:, :2]  # a change on two tracks: not significant
    tables = {"ref": _predictions(ref.tolist()), "same": _predictions(same.tolist()),
              "all": _predictions(np.ones((5, 60), dtype=bool).tolist())}
    out = paired_comparisons(_rows("ref", "same", "all"), lambda rev, s, m: tables[rev])
    assert list(out["test"]) == [SEED_PERMUTATION, SEED_PERMUTATION]
    interval = two_level_bootstrap(ref.astype(float), same.astype(float))
    assert out.iloc[0]["p_value"] == pytest.approx(seed_permutation(ref.astype(float),
                                                                    same.astype(float)))
    assert out.iloc[0]["difference_low"] == pytest.approx(interval.low)
    assert out.iloc[0]["minimum_detectable"] > 0 and list(out["seeds"]) == [5, 5]
    q, p = out["q_value"].to_numpy(), out["p_value"].to_numpy()
    # Benjamini-Hochberg by hand for two p-values
    order = np.argsort(p)
    by_hand = np.minimum.accumulate((p[order] * 2 / np.array([1, 2]))[::-1])[::-1]
    np.testing.assert_allclose(q[order], np.minimum(by_hand, 1))
    assert list(out["significant"]) == [False, True]


def test_rows_on_other_tracks_or_without_predictions_get_no_test() -> None:
    tables = {"ref": _predictions([[True, False, True]]),
              "moved": _predictions([[True, True, True]], ids=["t0", "t1", "other"])}
    out = paired_comparisons(_rows("ref", "moved", "missing"),
                             lambda rev, s, m: tables.get(rev))
    assert out.empty
    assert with_own_comparisons(_rows("ref", "moved", "missing"), out)["p_value"].isna().all()


def test_every_test_set_compares_other_datasets_tracks_too() -> None:
    def run(right: list[list[bool]]) -> pd.DataFrame:
        return pd.concat([_predictions(right), _predictions(right, test_set="other")],
                         ignore_index=True)
    tables = {"ref": run([[True, False] * 5, [False, True] * 5]),
              "new": run([[True] * 10, [True] * 10])}
    rows = _rows("ref", "new")
    own = paired_comparisons(rows, lambda rev, s, m: tables[rev])
    every = paired_comparisons(rows, lambda rev, s, m: tables[rev], every_test_set=True)
    assert list(own["test_set"]) == ["synth"]
    assert sorted(every["test_set"]) == ["other", "synth"]
    assert dict(zip(every["test_set"], every["own"], strict=True)) == {"other": False,
                                                                       "synth": True}


def test_git_predictions_reads_the_file_of_a_commit(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.strip()
    git("init", "-q")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "ci")
    path = tmp_path / "predictions" / "synth" / "mfcc.csv"
    path.parent.mkdir(parents=True)
    _predictions([[True, False]]).to_csv(path, index=False)
    git("add", ".")
    git("commit", "-qm", "run")
    rev = git("rev-parse", "HEAD")
    path.unlink()  # the workspace no longer has it: the commit's copy is read
    read = git_predictions(tmp_path)
    table = read(rev, "synth", "mfcc")
    assert table is not None and list(table["dnn_seed0"]) == ["jazz", "rock"]
    assert read(rev, "synth", "panns") is None
    assert read("0" * 40, "synth", "mfcc") is None
