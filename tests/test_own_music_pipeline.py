"""Your own music end to end: a labelled folder in mixed formats becomes a trained model
with one `dvc exp run -S ...` (the command `mgc init-dataset` prints), and `mgc predict`
names the genre of a held-out file with the resulting bundle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import OWN_CLIP_SECONDS
from tests.dvc_project import scaffold_project

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MGC_CACHE": str(cwd / ".mgc-cache")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (f"{' '.join(args)} failed ({result.returncode}):\n"
                                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def test_a_labelled_folder_trains_with_one_experiment_and_predicts(
        own_music: Path, tmp_path: Path) -> None:
    def faster(params: dict[str, Any]) -> None:
        params["train"].update(seeds=[0, 1], epochs=30)

    project = scaffold_project(tmp_path / "project", faster)
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "baseline"], project)
    printed = _run([sys.executable, "-m", "mgc.cli", "init-dataset", str(own_music),
                    "--clip-seconds", str(OWN_CLIP_SECONDS)], project)
    command = next(line.strip() for line in printed.splitlines()
                   if line.strip().startswith("dvc exp run"))
    overrides = [part.strip("'") for part in command.split(" -S ")[1:]]
    _run(["dvc", "exp", "run", *(arg for o in overrides for arg in ("-S", o)),
          "-S", "embed.models=[mfcc]"], project)

    tracks = pd.read_parquet(project / "data/tracks/mylib.parquet")
    assert len(tracks) == 24 and set(tracks["status"]) == {"ok", "unreadable", "empty"}
    metrics = json.loads((project / "metrics/runs/mylib/mfcc.json").read_text())
    assert metrics["classes"] == 4 and metrics["n_excluded"] == 2
    assert metrics["dnn"]["mylib"]["accuracy"]["mean"] > 0.25   # 4 classes: chance is 0.25
    bundle = json.loads((project / "models/mylib/mfcc/bundle.json").read_text())
    assert bundle["class_names"] == ["blues", "classical", "metal", "reggae"]

    held_out = own_music.parent / "held_out" / "classical.flac"
    predicted = json.loads(_run([sys.executable, "-m", "mgc.cli", "predict", str(held_out),
                                 "--model", "models/mylib/mfcc", "--top-k", "4", "--json"],
                                project))
    genres = [entry["genre"] for entry in predicted[0]["genres"]]
    assert predicted[0]["error"] is None and sorted(genres) == bundle["class_names"]
    assert genres[0] == "classical", predicted
