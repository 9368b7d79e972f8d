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


def test_a_genre_of_one_track_stops_the_split_with_one_sentence_or_is_left_out(
        tmp_path: Path) -> None:
    import numpy as np
    import soundfile
    import yaml

    from mgc.datasets.synthesis import render_clip

    music = tmp_path / "music"
    for genre, files in (("blues", 4), ("metal", 4), ("polka", 1)):
        (music / genre).mkdir(parents=True)
        for index in range(files):
            wave = render_clip("reggae" if genre == "polka" else genre, 2.0, 16000, seed=index)
            soundfile.write(music / genre / f"{index}.wav", wave.astype(np.float32), 16000)

    def mine(params: dict[str, Any]) -> None:
        params["data"].update(datasets=["mylib"], sources={
            "mylib": {"kind": "folder", "path": str(music), "clip_seconds": 2.0}})
        params["train"]["sets"] = ["mylib"]

    project = scaffold_project(tmp_path / "project", mine)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MGC_CACHE": str(project / ".mgc-cache")}
    stopped = subprocess.run(["dvc", "repro", "split@mylib"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=300)
    output = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0
    assert ("error: mylib: too few usable tracks to split class(es) 'polka' (1); each needs "
            "at least 3") in output and "set data.min_class_tracks" in output
    assert "Traceback" not in output, output

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["min_class_tracks"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = subprocess.run(["dvc", "repro", "split@mylib"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("warning: mylib: class 'polka' left out (1 usable track(s), fewer than "
            "data.min_class_tracks=3)") in done.stderr
    split = pd.read_parquet(project / "data/splits/mylib.parquet")
    assert sorted(set(split["label"])) == ["blues", "metal"] and len(split) == 8
