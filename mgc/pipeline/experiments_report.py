"""The experiments report (`mgc report`): the table of DVC experiments that
`mgc.pipeline.experiments` builds, as Markdown, CSV, one accuracy plot per ablation axis
(each axis a params key, so this lives with the pipeline) and accuracy against layer depth
(`sweeps/layers.yaml`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mgc.atomic import atomic_path, write_csv, write_text
from mgc.layers import WEIGHTED
from mgc.report import interval, mean_std


@dataclass(frozen=True)
class Factor:
    """One ablation axis of the experiments report: accuracy against the param `x`.

    Rows plotted are those whose params differ from their baseline only under `prefixes`
    (one factor at a time); `series` draws one line per value of that column, and a series
    whose value is `flat` (e.g. noise off, where the SNR means nothing) a horizontal line.
    """

    name: str
    x: str
    prefixes: tuple[str, ...]
    label: str
    series: str | None = None
    flat: str | None = None


EXPERIMENT_FACTORS = (
    Factor("alpha", "alpha", ("loss",), "alpha = metric losses' share of the loss weight",
           series="loss_heads"),
    Factor("depth", "train.classifier.hidden_layers", ("train.classifier.hidden_layers",),
           "hidden layers"),
    Factor("width", "train.classifier.width_multiplier", ("train.classifier.width_multiplier",),
           "width multiplier"),
    Factor("dropout", "train.classifier.dropout", ("train.classifier.dropout",), "dropout"),
    Factor("activation", "train.classifier.activation", ("train.classifier.activation",),
           "activation"),
    Factor("batchnorm", "train.classifier.batchnorm", ("train.classifier.batchnorm",),
           "batch normalisation"),
    Factor("snr", "train.noise.snr_db", ("train.noise",), "noise SNR (dB)",
           series="train.noise.mode", flat="off"),
)
"""The paper's ablations (Table 2's loss weights, Fig. 2's classifier and noise)."""


def own_score(table: pd.DataFrame, stat: str, classifier: str = "dnn",
              score: str = "accuracy") -> pd.Series:
    """One statistic (`mean`, `std`, `ci95_low`, ...) of `score` on each row's own test
    split (`test_set`); NaN where the run did not record it."""
    def pick(row: pd.Series) -> float:
        return row.get(f"{classifier}.{row['test_set']}.{score}.{stat}", float("nan"))

    return table.apply(pick, axis=1).astype(float) if len(table) else pd.Series(dtype=float)


def own_scores(table: pd.DataFrame, classifier: str = "dnn",
               score: str = "accuracy") -> tuple[pd.Series, pd.Series]:
    """Mean and std of `score` on each row's own test split (`test_set`)."""
    return (own_score(table, "mean", classifier, score),
            own_score(table, "std", classifier, score))


def factor_rows(table: pd.DataFrame, factor: Factor) -> pd.DataFrame:
    """The rows that differ from their baseline only in `factor` (one per train set,
    extractor, series and x value), with `accuracy`, `accuracy_std` and `series` columns."""
    def inside(changed: str) -> bool:
        return all(any(key == p or key.startswith(f"{p}.") for p in factor.prefixes)
                   for key in changed.split())

    rows = table[table["changed"].fillna("").map(inside)].copy()
    rows["accuracy"], rows["accuracy_std"] = own_scores(rows)
    rows["series"] = rows[factor.series].astype(str) if factor.series in rows else ""
    return rows.drop_duplicates(["train_set", "model", "series", factor.x])


def plot_experiment_factor(table: pd.DataFrame, factor: Factor, path: Path) -> bool:
    """DNN accuracy (own test split, mean ± std over seeds) against `factor.x`, one panel per
    train set x extractor; returns False (and writes nothing) when the experiments do not
    vary that factor over two values or more."""
    if table.empty or factor.x not in table.columns:
        return False
    rows = factor_rows(table, factor)
    if rows[factor.x].nunique() < 2:
        return False
    categorical = not all(isinstance(v, int | float) and not isinstance(v, bool)
                          for v in rows[factor.x])
    if categorical:
        rows[factor.x] = rows[factor.x].astype(str)
    panels = sorted(rows.groupby(["train_set", "model"]).groups)
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8),
                                squeeze=False, sharey=True)
    for axis, (train_set, model) in zip(axes[0], panels, strict=True):
        panel = rows[(rows["train_set"] == train_set) & (rows["model"] == model)]
        for series, line in panel.groupby("series", sort=True):
            label = series or None
            if factor.flat is not None and series == factor.flat:
                mean = line["accuracy"].mean()
                axis.axhline(mean, linestyle="--", color="grey", label=label)
                continue
            line = line.sort_values(factor.x)
            axis.errorbar(line[factor.x], line["accuracy"], yerr=line["accuracy_std"],
                          marker="o", capsize=2, label=label)
        axis.set_title(f"{train_set} / {model}")
        axis.set_xlabel(factor.label)
        axis.grid(alpha=0.3)
        if not categorical and all(float(v).is_integer() for v in rows[factor.x]):
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("DNN test accuracy (own split)")
    figure.suptitle(f"DNN accuracy vs {factor.label} (mean ± std over seeds)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if any(labels):
        figure.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)),
                      fontsize="small", bbox_to_anchor=(0.5, 0.0))
        figure.tight_layout(rect=(0, 0.06 * (1 + (len(labels) - 1) // 3), 1, 1))
    else:
        figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return True


LAYER_PARAM = "train.layer"
LAYER_PLOT = "accuracy_vs_layer"


def layer_depth_figure(table: pd.DataFrame) -> Figure | None:
    """DNN accuracy (own test split) against layer depth, one panel per train set and one
    line per extractor, with 95 % bootstrap intervals over test tracks as error bars; each
    extractor's `weighted` probe is a dashed line in its colour. Depth is the layer's
    position over the extractor's layer count (1 = its output), so extractors with 4 and
    7 layers share the axis; every point is labelled with its layer's name. None when no
    run trained on a named layer."""
    if table.empty or "layer_count" not in table.columns:
        return None
    rows = table[table["layer_count"].notna()].copy()
    names = rows[LAYER_PARAM] if LAYER_PARAM in rows else pd.Series("", index=rows.index)
    rows["layer_name"] = names.fillna("").astype(str)
    rows["accuracy"] = own_score(rows, "mean")
    rows["low"], rows["high"] = own_score(rows, "ci95_low"), own_score(rows, "ci95_high")
    depth = rows["layer_depth"] if "layer_depth" in rows else pd.Series(np.nan, rows.index)
    rows["relative_depth"] = depth / rows["layer_count"]
    if rows["relative_depth"].notna().sum() == 0:
        return None
    panels = sorted(rows["train_set"].unique())
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2),
                                squeeze=False, sharey=True)
    colours = dict(zip(sorted(rows["model"].unique()), plt.rcParams["axes.prop_cycle"]
                       .by_key()["color"] * 4, strict=False))
    for axis, train_set in zip(axes[0], panels, strict=True):
        panel = rows[rows["train_set"] == train_set]
        for model, line in panel.groupby("model", sort=True):
            colour = colours[model]
            points = line[line["relative_depth"].notna()].sort_values("relative_depth")
            points = points.drop_duplicates("relative_depth")
            if not points.empty:
                errors = np.array([points["accuracy"] - points["low"],
                                   points["high"] - points["accuracy"]]).clip(min=0)
                axis.errorbar(points["relative_depth"], points["accuracy"],
                              yerr=np.nan_to_num(errors), marker="o", capsize=3,
                              color=colour, label=model)
                for _, point in points.iterrows():
                    axis.annotate(point["layer_name"], (point["relative_depth"],
                                                        point["accuracy"]),
                                  textcoords="offset points", xytext=(3, 4),
                                  fontsize="x-small", color=colour)
            weighted = line[line["layer_name"] == WEIGHTED]
            if not weighted.empty:
                axis.axhline(weighted["accuracy"].mean(), linestyle="--", color=colour,
                             alpha=0.8, label=f"{model} weighted")
        axis.set_title(train_set)
        axis.set_xlabel("layer depth / layers (1 = the extractor's output)")
        axis.set_xlim(0, 1.08)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("DNN test accuracy (own split)")
    axes[0][0].legend(fontsize="small")
    figure.suptitle("DNN accuracy vs layer (95 % bootstrap interval over test tracks)")
    figure.tight_layout()
    return figure


def plot_layer_depth(table: pd.DataFrame, path: Path) -> bool:
    """`layer_depth_figure` as a PNG at `path`; False (nothing written) without layer runs."""
    figure = layer_depth_figure(table)
    if figure is None:
        return False
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return True


def _versus(row: pd.Series) -> str:
    """The paired difference from the reference row in points, its 95 % interval, p and
    BH-adjusted q (starred if significant), and the smallest difference the design detects."""
    if pd.isna(row.get("p_value", float("nan"))):
        return ""
    star = " *" if row["significant"] else ""
    interval_text = ("" if pd.isna(row.get("difference_low", float("nan"))) else
                     f" [{100 * row['difference_low']:+.1f}, {100 * row['difference_high']:+.1f}]")
    detectable = row.get("minimum_detectable", float("nan"))
    detects = "" if pd.isna(detectable) else f"; detects ±{100 * detectable:.1f}"
    q_text = "" if pd.isna(row.get("q_value", float("nan"))) else f" q {row['q_value']:.3f}"
    return (f"{100 * row['difference']:+.1f}{interval_text} (p {row['p_value']:.3f}{q_text})"
            f"{star}{detects}")


def study_markdown(table: pd.DataFrame) -> str:
    """The compact table of a study that README quotes: per extractor, one row per
    experiment and, per train set, the DNN accuracy on its own test split (mean ± std over
    seeds, [95 % bootstrap interval over tracks]) and its difference from the extractor's
    first experiment on the same tracks, in points ([95 % interval], BH-adjusted q; * =
    q < 0.05; `mgc.pipeline.comparisons`); the last row is each train set's median smallest
    difference the design detects with 80 % power. A study of one experiment (k-fold) has
    nothing to compare, so it gets the accuracy columns alone."""
    if table.empty:
        return "No finished experiments with run metrics.\n"
    mean, std = own_scores(table)
    low, high = own_score(table, "ci95_low"), own_score(table, "ci95_high")
    table = table.assign(_mean=mean, _std=std, _low=low, _high=high)
    lines = []
    for model, group in table.groupby("model", sort=True):
        sets = list(dict.fromkeys(group["train_set"]))
        experiments = list(dict.fromkeys(group["experiment"]))
        per_set = 2 if len(experiments) > 1 else 1     # accuracy, and the comparison
        columns = [f"{s} | vs {experiments[0]}" if per_set == 2 else s for s in sets]
        lines += [f"**{model}**" if table["model"].nunique() > 1 else "", "",
                  "| experiment | " + " | ".join(columns) + " |",
                  "|---" * (per_set * len(sets) + 1) + "|"]
        for experiment in experiments:
            cells = []
            for train_set in sets:
                found = group[(group["experiment"] == experiment)
                              & (group["train_set"] == train_set)]
                if found.empty:
                    cells += [""] * per_set
                    continue
                row = found.iloc[0]
                accuracy = mean_std(row["_mean"], row["_std"])
                if not pd.isna(row["_low"]):
                    accuracy += f" [{100 * row['_low']:.0f}-{100 * row['_high']:.0f}]"
                cells.append(accuracy)
                if per_set == 2:
                    cells.append("reference" if experiment == experiments[0] else
                                 _difference_cell(row))
            lines.append(f"| {experiment} | " + " | ".join(cells) + " |")
        if per_set == 1:
            lines.append("")
            continue
        detectable = []
        for train_set in sets:
            values = group.loc[group["train_set"] == train_set, "minimum_detectable"] if (
                "minimum_detectable" in group) else pd.Series(dtype=float)
            detectable += ["", "" if values.dropna().empty else
                           f"±{100 * values.median():.1f}"]
        lines += ["| detectable difference (80 % power, median) | " + " | ".join(detectable)
                  + " |", ""]
    return "\n".join(line for line in lines).lstrip("\n") + "\n"


def _difference_cell(row: pd.Series) -> str:
    if pd.isna(row.get("p_value", float("nan"))):
        return ""
    return (f"{100 * row['difference']:+.1f} [{100 * row['difference_low']:+.1f}, "
            f"{100 * row['difference_high']:+.1f}]{_q_text(row)}")


def _q_text(compared: pd.Series) -> str:
    """` q 0.41`, starred where the difference is significant after BH."""
    return f" q {compared['q_value']:.2f}" + (" *" if compared["significant"] else "")


DOMAIN_KEY = "train.domain"
_ACCURACY = re.compile(r"^(?P<classifier>[a-z]+)\.(?P<test_set>.+)\.accuracy\.mean$")


def domain_markdown(table: pd.DataFrame, classifier: str = "dnn",
                    comparisons: pd.DataFrame | None = None) -> str:
    """When the experiments vary `train.domain` (`sweeps/domain.yaml`): per extractor, one
    row per method and one column per train set -> test dataset (in-domain ones included),
    accuracy mean ± std over seeds, cross-dataset cells on the shared genres; with
    `comparisons` (`paired_comparisons(..., every_test_set=True)`) each cell also gets its
    difference from the reference method in points and its q (* = significant)."""
    if table.empty or DOMAIN_KEY not in table.columns:
        return ""
    lines = ["## Domain adaptation: train set -> test dataset", "",
             f"{classifier.upper()} accuracy % (mean ± std over seeds); `A -> B` with B "
             "another dataset is scored on B's test tracks of the genres A shares with it.", ""]
    for model, group in table.groupby("model", sort=True):
        cells: dict[str, dict[str, str]] = {}
        for _, row in group.iterrows():
            method = "none" if pd.isna(row[DOMAIN_KEY]) else str(row[DOMAIN_KEY])
            for column, value in row.items():
                found = _ACCURACY.match(str(column))
                if (found is None or found["classifier"] != classifier
                        or found["test_set"] == "all" or pd.isna(value)):
                    continue
                std = row.get(column.replace(".mean", ".std"), float("nan"))
                cells.setdefault(method, {})[f"{row['train_set']} -> {found['test_set']}"] = (
                    mean_std(value, std) + _compared(comparisons, row, found["test_set"]))
        pairs = sorted({pair for by_pair in cells.values() for pair in by_pair})
        lines += [f"### {model}", "", "| train.domain | " + " | ".join(pairs) + " |",
                  "|---" * (len(pairs) + 1) + "|"]
        lines += [f"| {method} | " + " | ".join(cells[method].get(p, "") for p in pairs) + " |"
                  for method in sorted(cells)]
        lines.append("")
    return "\n".join(lines)


def _compared(comparisons: pd.DataFrame | None, row: pd.Series, test_set: str) -> str:
    """` / +2.0 q 0.41` for a cell that has a comparison, else nothing."""
    if comparisons is None or comparisons.empty or "experiment" not in row:
        return ""
    found = comparisons[(comparisons["experiment"] == row["experiment"])
                        & (comparisons["train_set"] == row["train_set"])
                        & (comparisons["model"] == row["model"])
                        & (comparisons["test_set"] == test_set)]
    if found.empty:
        return ""
    compared = found.iloc[0]
    return f" / {100 * compared['difference']:+.1f}{_q_text(compared)}"


def experiments_markdown(table: pd.DataFrame, unfinished: Mapping[str, str] | None = None,
                         plots: Sequence[Path] = ()) -> str:
    """One table per train set x extractor: each experiment's varied params, DNN accuracy
    on the own test split with its bootstrap interval and its paired difference from the
    group's first row (`mgc.pipeline.comparisons`), linear accuracy, DNN macro-F1 and the
    paper's number where it applies."""
    lines = []
    if table.empty:
        lines.append("No finished experiments with run metrics.\n")
    else:
        columns = list(table.columns)
        params = columns[columns.index("baseline") + 1:columns.index("train_set")]
        dnn, dnn_std = own_scores(table)
        low, high = own_score(table, "ci95_low"), own_score(table, "ci95_high")
        linear, linear_std = own_scores(table, "linear")
        f1, _ = own_scores(table, score="macro_f1")
        for (train_set, model), group in table.groupby(["train_set", "model"], sort=True):
            lines += [f"### {train_set} / {model}", "",
                      "| experiment | " + " | ".join(params) + " | test set | DNN accuracy % | "
                      f"95 % CI | vs {group.iloc[0]['experiment']} (points) | "
                      "linear accuracy % | DNN macro-F1 | paper % |",
                      "|---" * (len(params) + 8) + "|"]
            for index, row in group.iterrows():
                values = ["" if pd.isna(row[c]) else str(row[c]) for c in params]
                paper = "" if pd.isna(row["paper_accuracy"]) else f"{row['paper_accuracy']:.1f}"
                score = "" if pd.isna(f1[index]) else f"{f1[index]:.3f}"
                lines.append(
                    f"| {row['experiment']} | " + " | ".join(values) + f" | {row['test_set']} | "
                    f"{mean_std(dnn[index], dnn_std[index])} | "
                    f"{interval(low[index], high[index])} | {_versus(row)} | "
                    f"{mean_std(linear[index], linear_std[index])} | {score} | {paper} |")
            lines.append("")
    if domain := domain_markdown(table):
        lines.append(domain)
    if unfinished:
        lines += ["Not finished (no results): " + ", ".join(
            f"{name} ({state})" for name, state in sorted(unfinished.items())) + ".", ""]
    lines += [f"![{Path(plot).stem}]({Path(plot).name})" for plot in plots]
    return "\n".join(lines).rstrip() + "\n"


def write_experiments_report(table: pd.DataFrame, out_dir: Path, title: str, intro: str = "",
                             unfinished: Mapping[str, str] | None = None) -> list[Path]:
    """`experiments.md`, `experiments.csv` and one PNG per factor the experiments vary, in
    `out_dir`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [out_dir / f"accuracy_vs_{factor.name}.png" for factor in EXPERIMENT_FACTORS
             if plot_experiment_factor(table, factor, out_dir / f"accuracy_vs_{factor.name}.png")]
    if plot_layer_depth(table, out_dir / f"{LAYER_PLOT}.png"):
        plots.append(out_dir / f"{LAYER_PLOT}.png")
    csv = out_dir / "experiments.csv"
    write_csv(csv, table)
    markdown = out_dir / "experiments.md"
    preamble = (
        "Accuracy is the mean ± std over seeds on each run's own test split (a joint model: "
        "all datasets' test tracks together), with its 95 % bootstrap interval over test "
        "tracks. `vs` is the paired difference from each table's first row on the same "
        "tracks, in points, with its 95 % interval, p and q (a two-level bootstrap over "
        "seeds and tracks; exact McNemar with one seed each, which cannot see training "
        "noise; * = significant at 5 % after Benjamini-Hochberg over the whole report), "
        "and the smallest difference the design detects with 80 % power (2.8 standard "
        "errors of the difference, from its seed and track variance). `paper %` is the paper's "
        "number where the row is its configuration (protocol and DNN: "
        "mgc.pipeline.experiments.PAPER_CONFIGURATION). Every metric: experiments.csv.")
    write_text(markdown, "\n\n".join(part for part in (
        f"# {title}", intro.strip(), preamble, experiments_markdown(table, unfinished, plots))
        if part))
    return [markdown, csv, *plots]
