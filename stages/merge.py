"""Stage `merge`: the joint label space of all datasets (`merge.strategy`).

Outputs `data/labels/joint.parquet` and `data/labels/label_map.json`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mgc.atomic import write_json, write_parquet
from mgc.labels import merge_label_spaces
from stages.params import load_params


def main() -> None:
    params = load_params()
    splits = {name: pd.read_parquet(Path("data/splits") / f"{name}.parquet")
              for name in params.datasets}
    joint, label_map = merge_label_spaces(splits, params.merge_strategy)
    write_parquet(Path("data/labels/joint.parquet"), joint)
    write_json(Path("data/labels/label_map.json"),
               {"strategy": params.merge_strategy, "map": label_map})
    print(f"joint ({params.merge_strategy}): {joint['label'].nunique()} classes, "
          f"{len(joint)} tracks")


if __name__ == "__main__":
    main()
