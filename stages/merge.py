"""Stage `merge`: the joint label space of all datasets (`merge.strategy`).

Outputs `data/labels/joint.parquet` and `data/labels/label_map.json`.
"""

from __future__ import annotations

from mgc.errors import exit_on_user_error
from mgc.pipeline.labelling import merge_datasets
from mgc.pipeline.layout import Layout
from mgc.pipeline.params import load_params


def main() -> None:
    params = load_params()
    joint = merge_datasets(params, Layout())
    print(f"joint ({params.merge.strategy}): {joint['label'].nunique()} classes, "
          f"{len(joint)} tracks")


if __name__ == "__main__":
    exit_on_user_error(main)
