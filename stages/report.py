"""Stage `report`: `metrics/summary.json`, `report.md` and `plots/summary.png` from every
train stage's metrics.
"""

from __future__ import annotations

from mgc.errors import exit_on_user_error
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params
from mgc.pipeline.summary import write_summary


def main() -> None:
    rows = write_summary(load_params(), Layout())
    print(f"report: {len(rows)} rows -> report.md, metrics/summary.json, plots/summary.png")


if __name__ == "__main__":
    exit_on_user_error(main)
