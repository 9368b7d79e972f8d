"""A throw-away copy of this project in its own git repository, for tests that run DVC."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = ["mgc", "stages", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvc/config",
          ".dvc/plots", ".dvcignore", ".gitignore"]


def scaffold_project(root: Path, edit_params: Callable[[dict[str, Any]], None]) -> Path:
    """Copy the pipeline into `root`, let `edit_params` shrink params.yaml, `git init` it.

    Outputs, dvc.lock and the DVC cache are not copied, so the first `dvc repro` there runs
    every stage from nothing, as on a fresh clone.
    """
    for name in COPIED:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    edit_params(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    for command in (["git", "init", "-q", "-b", "main"],
                    ["git", "config", "user.email", "ci@example.invalid"],
                    ["git", "config", "user.name", "CI"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return root
