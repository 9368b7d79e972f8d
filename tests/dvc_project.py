"""A throw-away copy of this project in its own git repository, for tests that run DVC."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def one_model_one_dataset(params: dict[str, Any]) -> None:
    """The smallest pipeline worth running: synth_gtzan (5 clips of 2 s a genre), mfcc, one
    seed of 3 epochs, one training process."""
    params["data"]["datasets"] = ["synth_gtzan"]
    params["data"]["sources"]["synth_gtzan"].update(clips_per_genre=5, clip_seconds=2)
    params["embed"]["models"] = ["mfcc"]
    params["train"].update(sets=["synth_gtzan"], seeds=[0], epochs=3, workers=1)


def runner(root: Path) -> Callable[..., str]:
    """A function that runs a command in `root` (this interpreter's tools first on PATH, a
    download cache of its own) and returns its output, failing with the output's tail."""
    env = {**os.environ, "MGC_CACHE": str(root / ".mgc-cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str) -> str:
        result = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        return result.stdout + result.stderr

    return run
