"""mgc.report: the summary table, the zero-shot note, the cross-dataset matrix and the joint
model's twin-genre table."""

from __future__ import annotations

import json
from pathlib import Path

from mgc.report import (
    cross_dataset_markdown,
    markdown_table,
    summary_rows,
    twin_markdown,
    zero_shot_markdown,
)


def _scores(accuracy: float, matched_by: str) -> dict[str, object]:
    return {"accuracy": {"mean": accuracy, "std": 0.01}, "macro_f1": {"mean": 0.5},
            "top2": {"mean": 0.9}, "matched_by": matched_by, "n_test": 10}


def _run(path: Path, train_set: str, scores: dict[str, dict[str, object]],
         **extra: object) -> Path:
    path.write_text(json.dumps({"train_set": train_set, "model": "mfcc", "weights": "none",
                                "dnn": scores, **extra}))
    return path


def test_matrix_has_train_sets_as_rows_and_test_datasets_as_columns(tmp_path: Path) -> None:
    shared = {**_scores(0.4, "shared genres"), "shared_argmax_accuracy": {"mean": 0.6}}
    files = [_run(tmp_path / "a.json", "a", {"a": _scores(0.8, "own"), "b": shared},
                  domain="coral"),
             _run(tmp_path / "b.json", "b", {"b": _scores(0.7, "own")}, domain="coral")]
    markdown = cross_dataset_markdown(summary_rows(files))
    assert "train.domain: coral" in markdown
    assert "| a | 80.0 ± 1.0 *own* | 40.0 ± 1.0 / 60.0 |" in markdown
    assert "| b |  | 70.0 ± 1.0 *own* |" in markdown


def test_twin_table_per_source_dataset_and_a_canonical_note(tmp_path: Path) -> None:
    disjoint = _run(tmp_path / "joint.json", "joint", {}, twin_confusion={
        "merge_strategy": "disjoint",
        "by_kind": {"dnn": {"a": {"n_test": 4, "true": 0.5, "twin": 0.25, "other": 0.25}}}})
    assert "| mfcc | dnn | a | 4 | 50.0 | 25.0 | 25.0 |" in twin_markdown([disjoint])
    canonical = _run(tmp_path / "joint.json", "joint", {}, twin_confusion={
        "merge_strategy": "canonical", "by_kind": {}})
    assert "canonical: the twins are one class" in twin_markdown([canonical])
    assert twin_markdown([_run(tmp_path / "a.json", "a", {})]) == ""


def test_zero_shot_rows_have_an_interval_and_no_seed_spread_and_a_setup_note(
        tmp_path: Path) -> None:
    zero_shot = {**_scores(0.55, "own"), "accuracy": {"mean": 0.55, "std": 0.0,
                                                      "ci95_low": 0.3, "ci95_high": 0.8}}
    setup = {"checkpoint": "laion/clap-htsat-unfused@abc", "text_tower_probe_mean_cosine": 0.21,
             "collapsed_above": 0.95, "prompt_templates": ["This is a {genre} song."]}
    run = _run(tmp_path / "a.json", "a", {"a": _scores(0.8, "own")}, zeroshot={"a": zero_shot},
               zeroshot_setup=setup)
    table = markdown_table(summary_rows([run]))
    assert "| a | mfcc | none | zeroshot | a | 10 | 55.0 | 30.0-80.0 |" in table
    assert "| a | mfcc | none | dnn | a | 10 | 80.0 ± 1.0 |" in table
    note = zero_shot_markdown([run])
    assert ("| a | mfcc | laion/clap-htsat-unfused@abc | 0.210 | `This is a {genre} song.` |"
            in note)
    assert "64-73 %" in note and "at most 0.95" in note
    assert zero_shot_markdown([_run(tmp_path / "b.json", "b", {})]) == ""
