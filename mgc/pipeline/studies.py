"""A study: a sweep's finished DVC experiments collected into `results/<sweep>/`, the files
README's tables are generated from (`mgc.pipeline.readme_blocks`) and that Git keeps.

`mgc sweep NAME --run` queues, runs and then collects (`collect_study`); `mgc report
--sweep NAME` collects again from what DVC recorded. A study writes:

- `experiments.csv`, `experiments.json`: one row per experiment x train set x extractor,
  every metric (`mgc.pipeline.experiments.experiment_table`) with its comparison;
- `comparisons.csv`: every paired comparison with its interval, p, q and detectable size
  (`mgc.pipeline.comparisons`), on every test set for a study that varies `train.domain`;
- `experiments.md`: the full report with one plot per factor the experiments vary;
- `table.md`: the compact table README quotes (`study_markdown`);
- `domain.md`: the cross-dataset matrix of every `train.domain` method side by side,
  when the experiments vary it;
- `calibration.json`, `calibration.md`: the A/A study and power estimate, for a sweep with
  a `calibration:` block (`mgc.calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mgc.atomic import write_json, write_text
from mgc.calibration import TESTS, AADesign, aa_study, power_table
from mgc.evaluate import correct_by_seed
from mgc.pipeline.comparisons import (
    CLASSIFIER,
    PredictionReader,
    paired_comparisons,
    with_own_comparisons,
)
from mgc.pipeline.dvc_experiments import DONE, ExperimentRecord
from mgc.pipeline.experiments import experiment_table
from mgc.pipeline.experiments_report import (
    DOMAIN_KEY,
    domain_markdown,
    study_markdown,
    write_experiments_report,
)
from mgc.pipeline.sweeps import Sweep

RESULTS_DIR = Path("results")


def study_dir(name: str, root: Path = Path(".")) -> Path:
    """Where the study of sweep `name` writes: `results/<name>/`."""
    return root / RESULTS_DIR / name


def latest_records(records: Sequence[ExperimentRecord]) -> list[ExperimentRecord]:
    """One record per experiment name, the first `dvc exp show` lists (its newest commit
    first with `-A`), so a sweep rerun on a later commit replaces the earlier run."""
    seen: set[str] = set()
    kept = []
    for record in records:
        if record.is_baseline or record.name not in seen:
            kept.append(record)
            seen.add(record.name)
    return kept


def seed_tables(table: pd.DataFrame, read: PredictionReader) -> dict[str, np.ndarray]:
    """Each row's (seeds, tracks) right/wrong on its own test split, by `<train set>/<model>`
    (the first experiment's where several rows share it)."""
    tables: dict[str, np.ndarray] = {}
    for _, row in table.iterrows():
        name = f"{row['train_set']}/{row['model']}"
        predictions = read(row["rev"], row["train_set"], row["model"])
        if name in tables or predictions is None:
            continue
        correct = correct_by_seed(predictions, row["test_set"], CLASSIFIER)
        if not correct.empty:
            tables[name] = correct.to_numpy(float).T
    return tables


def calibration_markdown(calibration: Mapping[str, object]) -> str:
    """The A/A false-positive rate of every test, per seed-set size, and the power estimate
    per train set and extractor."""
    aa, power = calibration["aa"], calibration["power"]
    sizes = [str(size) for size in aa["seeds_per_set"]]
    lines = ["| test | " + " | ".join(f"{size} seed{'s' * (size != '1')} a side"
                                      for size in sizes) + " | all pairs |",
             "|---" * (len(sizes) + 2) + "|"]
    for name, test in aa["tests"].items():
        cells = []
        for size in sizes:
            rate = test["by_seeds_per_set"].get(size)
            cells.append("" if rate is None else
                         f"{100 * rate['false_positive_rate']:.1f} % "
                         f"({rate['significant']}/{rate['pairs']})")
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {100 * test['false_positive_rate']:.1f} % |")
    tracks = list(next(iter(power["by_table"].values()))["seeds_needed"]) if (
        power["by_table"]) else []
    detectable = next((key for key in next(iter(power["by_table"].values()), {})
                       if key.startswith("minimum_detectable_at_")), None)
    seeds_label = detectable.removeprefix("minimum_detectable_at_").split("_")[0] if (
        detectable) else ""
    lines += ["", f"| train set / extractor | test tracks | seeds | seed accuracy sd "
              f"(points) | detectable at {seeds_label} seeds (points) | "
              + " | ".join(f"seeds for {100 * power['difference']:.0f} points on {t} tracks"
                           for t in tracks) + " |",
              "|---" * (5 + len(tracks)) + "|"]
    for name, row in power["by_table"].items():
        needed = ["not with seeds alone" if n is None else str(n)
                  for n in row["seeds_needed"].values()]
        lines.append(f"| {name} | {row['tracks']} | {row['seeds']} | "
                     f"{100 * row['seed_accuracy_sd']:.1f} | "
                     f"{100 * row[detectable]:.1f} | " + " | ".join(needed) + " |")
    return "\n".join(lines) + "\n"


def write_calibration(design: AADesign, tables: Mapping[str, np.ndarray],
                      out_dir: Path) -> list[Path]:
    """`calibration.json` (each test's `false_positive_rate`, the power estimate) and
    `calibration.md` in `out_dir`."""
    aa = aa_study(tables, design.seeds_per_set, design.pairs, seed=design.seed)
    power = power_table(tables, design.test_tracks, design.difference,
                        seeds=max(design.seeds_per_set))
    calibration = {"tests_described": {name: test.description for name, test in TESTS.items()},
                   "false_positive_rate": {name: test["false_positive_rate"]
                                           for name, test in aa["tests"].items()},
                   "aa": aa, "power": power}
    json_path, md_path = out_dir / "calibration.json", out_dir / "calibration.md"
    write_json(json_path, calibration)
    write_text(md_path, calibration_markdown(calibration))
    return [json_path, md_path]


def collect_study(records: Sequence[ExperimentRecord], read: PredictionReader,
                  out_dir: Path, sweep: Sweep | None = None,
                  ) -> tuple[pd.DataFrame, dict[str, str], list[Path]]:
    """Every file of the study of `sweep`'s experiments (all finished experiments without
    one) in `out_dir`; returns the experiment table with its comparisons, the experiments
    without results (name -> state) and the files."""
    records = latest_records(records)
    names = [e.name for e in sweep.experiments] if sweep else None
    table = experiment_table(records, names)
    comparisons = paired_comparisons(table, read, every_test_set=DOMAIN_KEY in table.columns)
    table = with_own_comparisons(table, comparisons)
    unfinished = {r.name: r.state for r in records
                  if r.state != DONE and (names is None or r.name in names)}
    if names is not None:
        known = {r.name for r in records}
        unfinished.update({n: "not queued" for n in names if n not in known})
    title = f"Experiments: sweep {sweep.name}" if sweep else "Experiments"
    written = write_experiments_report(table, out_dir, title,
                                       sweep.description if sweep else "", unfinished)
    experiments_json, comparisons_csv = out_dir / "experiments.json", out_dir / "comparisons.csv"
    write_text(experiments_json, table.to_json(orient="records", indent=1) + "\n")
    write_text(comparisons_csv, comparisons.to_csv(index=False))
    compact = out_dir / "table.md"
    partial = ""
    if unfinished and names is not None:
        partial = (f"Partial: {len(names) - len(unfinished)} of {len(names)} experiments have "
                   f"results; without: {', '.join(sorted(unfinished))}.\n\n")
    write_text(compact, partial + study_markdown(table))
    written += [experiments_json, comparisons_csv, compact]
    if domain := domain_markdown(table, comparisons=comparisons):
        write_text(out_dir / "domain.md", domain)
        written.append(out_dir / "domain.md")
    if sweep is not None and sweep.calibration is not None and len(table):
        written += write_calibration(sweep.calibration, seed_tables(table, read), out_dir)
    return table, unfinished, written
