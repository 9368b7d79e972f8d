"""The report stage: `metrics/summary.json`, `report.md` and `plots/summary.png` from every
train stage's run metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mgc.atomic import write_json, write_text
from mgc.pipeline.layout import Layout

if TYPE_CHECKING:
    from mgc.pipeline.params import Params
from mgc.report import (
    cross_dataset_markdown,
    markdown_table,
    plot_accuracy,
    summary_rows,
    twin_markdown,
    zero_shot_markdown,
)


def write_summary(params: Params, layout: Layout) -> pd.DataFrame:
    """One row per run x classifier x test set, written as JSON, Markdown and a bar chart."""
    runs = [layout.run_metrics(train_set, model)
            for train_set in params.train.sets for model in params.embed.models]
    rows = summary_rows(runs)
    write_json(layout.summary_metrics, {
        f"{r.train_set}/{r.model}/{r.classifier}/{r.test_set}": {
            "accuracy": r.accuracy, "macro_f1": r.macro_f1}
        for r in rows.itertuples()
    })
    spread = (f"{params.data.folds} folds (mean ± std over folds)"
              if params.data.protocol == "kfold" else "mean ± std over seeds")
    header = (f"# Results\n\nProtocol `{params.data.protocol}`, datasets "
              f"{', '.join(params.data.datasets)}, {len(params.train.seeds)} seeds, {spread}; "
              "the 95 % CI is a bootstrap interval over test tracks. "
              "Extractors marked *random weights* are untrained baselines, not the "
              "pretrained models.\n\n")
    write_text(layout.report, "\n".join(part for part in (
        header + markdown_table(rows), zero_shot_markdown(runs), cross_dataset_markdown(rows),
        twin_markdown(runs))
        if part))
    plot_accuracy(rows, layout.summary_plot)
    return rows
