"""Summary of all runs: one table (Markdown + JSON) and one bar chart, with the paper's
numbers beside ours, read from the run metrics files the train stage writes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from mgc.atomic import atomic_path
from mgc.paper import paper_accuracy
from mgc.zeroshot import ZERO_SHOT


def summary_rows(metrics_files: Iterable[Path]) -> pd.DataFrame:
    """One row per (train set, extractor, classifier, test set) with mean and std scores."""
    rows = []
    for path in sorted(metrics_files):
        run = json.loads(Path(path).read_text())
        for classifier in ("dnn", "linear", ZERO_SHOT):
            for test_set, scores in run.get(classifier, {}).items():
                rows.append({
                    "train_set": run["train_set"], "model": run["model"],
                    "domain": run.get("domain", "none"),
                    "weights": run["weights"], "classifier": classifier, "test_set": test_set,
                    "matched_by": scores["matched_by"], "n_test": scores["n_test"],
                    "accuracy": scores["accuracy"]["mean"],
                    "accuracy_std": scores["accuracy"]["std"],
                    "ci95_low": scores["accuracy"].get("ci95_low"),
                    "ci95_high": scores["accuracy"].get("ci95_high"),
                    "macro_f1": scores["macro_f1"]["mean"], "top2": scores["top2"]["mean"],
                    "shared_argmax": scores.get("shared_argmax_accuracy", {}).get("mean"),
                    "paper_accuracy": (paper_accuracy(test_set, run["model"])
                                       if classifier == "dnn" and run["train_set"] == test_set
                                       else None),
                })
    return pd.DataFrame(rows)


def markdown_table(rows: pd.DataFrame) -> str:
    """Accuracy (mean +- std over seeds, and its 95 % bootstrap interval over test tracks)
    per run, the paper's number where it has one; zero-shot, which trains nothing and so
    has no seeds, as its one accuracy."""
    lines = [
        "| train set | extractor | weights | classifier | test set | n | accuracy % | "
        "95 % CI | macro-F1 | top-2 % | paper % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.itertuples():
        weights = "random weights" if row.weights == "random" else row.weights
        paper = "" if pd.isna(row.paper_accuracy) else f"{row.paper_accuracy:.1f}"
        test_set = row.test_set + (" (shared genres)" if row.matched_by == "shared genres" else "")
        accuracy = (f"{100 * row.accuracy:.1f}" if row.classifier == ZERO_SHOT
                    else mean_std(row.accuracy, row.accuracy_std))
        lines.append(
            f"| {row.train_set} | {row.model} | {weights} | {row.classifier} | {test_set} | "
            f"{row.n_test} | {accuracy} | "
            f"{interval(row.ci95_low, row.ci95_high)} | "
            f"{row.macro_f1:.3f} | {100 * row.top2:.1f} | {paper} |"
        )
    return "\n".join(lines) + "\n"


def cross_dataset_markdown(rows: pd.DataFrame) -> str:
    """Per extractor and classifier, accuracy (mean ± std over seeds) with rows the train
    set and columns the test dataset: the in-domain scores (the diagonal, and a joint
    model's per-dataset rows) marked *own*, the others scored on the genres the two datasets
    share (canonical names); the domain adaptation of the runs in the heading."""
    if rows.empty:
        return ""
    methods = ", ".join(sorted(set(rows["domain"])))
    tested = rows[rows["test_set"] != "all"]
    datasets = sorted(set(tested["test_set"]))
    lines = [f"## Cross-dataset accuracy (train.domain: {methods})", "",
             "Train on the row's set, test on the column's dataset: *own* cells are "
             "in-domain test splits, the others that dataset's test tracks of the genres "
             "the train set shares with it (see `n` in the table above); after the slash, "
             "the accuracy when the model may answer only those shared genres (its argmax "
             "over them), which leaves out the genres the test set cannot have.", ""]
    for (model, classifier), group in tested.groupby(["model", "classifier"], sort=True):
        lines += [f"### {model} / {classifier}", "",
                  "| train set \\ test set | " + " | ".join(datasets) + " |",
                  "|---" * (len(datasets) + 1) + "|"]
        for train_set, runs in group.groupby("train_set", sort=True):
            cells = []
            for dataset in datasets:
                cell = runs[runs["test_set"] == dataset]
                if cell.empty:
                    cells.append("")
                    continue
                row = cell.iloc[0]
                own = " *own*" if row["matched_by"] == "own" else ""
                shared = ("" if pd.isna(row.get("shared_argmax"))
                          else f" / {100 * row['shared_argmax']:.1f}")
                cells.append(mean_std(row["accuracy"], row["accuracy_std"]) + own + shared)
            lines.append(f"| {train_set} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def twin_markdown(metrics_files: Iterable[Path]) -> str:
    """The joint model's confusion between the genres the `disjoint` space counts twice:
    per extractor, classifier and source dataset, the share of twin-genre test tracks (over
    seeds) predicted as their own class, as the twin (same genre, other dataset) or as
    anything else."""
    lines: list[str] = []
    for path in sorted(metrics_files):
        run = json.loads(Path(path).read_text())
        twins = run.get("twin_confusion")
        if twins is None:
            continue
        if not lines:
            lines = ["## Joint model: the genres counted twice", "",
                     "Test tracks of a genre both datasets have (under `disjoint` one class "
                     "per dataset): predicted as their own class, as the twin class (right "
                     "genre, wrong dataset: an error only the 18-class space makes) or as "
                     "anything else, over every seed.", "",
                     "| extractor | classifier | source dataset | n | own class % | twin % | "
                     "other % |", "|---|---|---|---|---|---|---|"]
        if not twins["by_kind"]:
            lines.append(f"| {run['model']} | | | | merge.strategy "
                         f"{twins['merge_strategy']}: the twins are one class | | |")
        for kind, by_dataset in twins["by_kind"].items():
            for dataset, share in by_dataset.items():
                lines.append(f"| {run['model']} | {kind} | {dataset} | {share['n_test']} | "
                             f"{100 * share['true']:.1f} | {100 * share['twin']:.1f} | "
                             f"{100 * share['other']:.1f} |")
    return "\n".join(lines) + "\n" if lines else ""


PUBLISHED_ZERO_SHOT_GTZAN = "64-73 %"
"""LAION-AI/CLAP's README: zero-shot GTZAN accuracy of its music checkpoints (README
"Zero-shot with CLAP" has the rows)."""


def zero_shot_markdown(metrics_files: Iterable[Path]) -> str:
    """How the zero-shot rows were made, per run: the checkpoint, its text tower's check,
    the prompt templates averaged per genre, and the published numbers to compare with."""
    lines: list[str] = []
    for path in sorted(metrics_files):
        run = json.loads(Path(path).read_text())
        setup = run.get(f"{ZERO_SHOT}_setup")
        if setup is None:
            continue
        if not lines:
            lines = ["## Zero-shot (CLAP, nothing trained)", "",
                     "Each genre's text embedding is the mean over the prompt templates; a "
                     "clip takes the genre of the closest one (cosine). Zero-shot trains "
                     "nothing, so its rows have no ± over seeds; the interval is over test "
                     "tracks. A checkpoint is used only if its text tower embeds eight "
                     "unrelated prompts apart (mean pairwise cosine at most "
                     f"{setup['collapsed_above']}). For comparison, LAION's own music "
                     f"checkpoints score {PUBLISHED_ZERO_SHOT_GTZAN} zero-shot on GTZAN "
                     "(README).", "",
                     "| train set | extractor | checkpoint | text-tower probe cosine | "
                     "prompt templates |", "|---|---|---|---|---|"]
        templates = "; ".join(f"`{t}`" for t in setup["prompt_templates"])
        lines.append(f"| {run['train_set']} | {run['model']} | {setup['checkpoint']} | "
                     f"{setup['text_tower_probe_mean_cosine']:.3f} | {templates} |")
    return "\n".join(lines) + "\n" if lines else ""


def mean_std(mean: float, std: float) -> str:
    """A score's mean ± std over seeds in percent, or nothing where the run has none."""
    return "" if pd.isna(mean) else f"{100 * mean:.1f} ± {100 * std:.1f}"


def interval(low: float | None, high: float | None) -> str:
    """A 95 % interval in percent, or nothing for a run recorded before intervals were."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f"{100 * low:.1f}-{100 * high:.1f}"


def plot_accuracy(rows: pd.DataFrame, path: Path) -> None:
    """Bar chart: own-test-split accuracy per train set and extractor, DNN vs linear probe
    (a joint model on all datasets' test tracks together)."""
    own = rows[(rows["test_set"] == rows["train_set"])
               | ((rows["train_set"] == "joint") & (rows["test_set"] == "all"))].copy()
    own["run"] = own["train_set"] + "\n" + own["model"]
    pivot = own.pivot_table(index="run", columns="classifier", values="accuracy")
    errors = own.pivot_table(index="run", columns="classifier", values="accuracy_std")
    figure, axis = plt.subplots(figsize=(max(6, 0.9 * len(pivot)), 4))
    pivot.plot.bar(ax=axis, yerr=errors, rot=0, capsize=2)
    axis.set_ylabel("test accuracy (mean ± std over seeds)")
    axis.set_ylim(0, 1)
    axis.set_title("Genre classification accuracy per train set and extractor")
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
