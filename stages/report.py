"""Stage `report`: `metrics/summary.json`, `report.md` and `plots/summary.png` from every
train stage's metrics.
"""

from __future__ import annotations

from pathlib import Path

from mgc.atomic import write_json, write_text
from mgc.report import markdown_table, plot_accuracy, summary_rows
from stages.params import load_params


def main() -> None:
    params = load_params()
    files = [Path("metrics/runs") / train_set / f"{model}.json"
             for train_set in params.train_sets for model in params.models]
    rows = summary_rows(files)
    write_json(Path("metrics/summary.json"), {
        f"{r.train_set}/{r.model}/{r.classifier}/{r.test_set}": {
            "accuracy": r.accuracy, "macro_f1": r.macro_f1}
        for r in rows.itertuples()
    })
    header = (f"# Results\n\nProtocol `{params.protocol}`, datasets "
              f"{', '.join(params.datasets)}, {len(params.seeds)} seeds (mean ± std). "
              "Extractors marked *random weights* are untrained baselines, not the "
              "pretrained models.\n\n")
    write_text(Path("report.md"), header + markdown_table(rows))
    plot_accuracy(rows, Path("plots/summary.png"))
    print(f"report: {len(rows)} rows -> report.md, metrics/summary.json, plots/summary.png")


if __name__ == "__main__":
    main()
