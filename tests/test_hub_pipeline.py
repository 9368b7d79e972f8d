"""The hub extractors through the whole pipeline, offline: `dvc exp run -S
'embed.models=[clap,mert,muq]'` with `weights: /path` to tiny test snapshots, CLAP's zero-shot
row beside the DNN, MuQ's weights licence in its bundle."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.dvc_project import scaffold_project

pytestmark = pytest.mark.slow
pytest.importorskip("transformers")


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MGC_CACHE": str(cwd / ".mgc-cache"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n"
                                    f"{result.stderr[-4000:]}")
    return result.stdout + result.stderr


def test_exp_run_with_clap_mert_and_muq_snapshots_runs_end_to_end(tmp_path: Path) -> None:
    from benchmarks.references import (
        random_clap_snapshot,
        random_mert_snapshot,
        random_muq_snapshot,
    )

    clap = random_clap_snapshot(tmp_path / "snapshots" / "clap")
    mert = random_mert_snapshot(tmp_path / "snapshots" / "mert")
    muq = random_muq_snapshot(tmp_path / "snapshots" / "muq")

    def tiny(params: dict[str, Any]) -> None:
        for source in ("synth_gtzan", "synth_fma"):
            params["data"]["sources"][source].update(clips_per_genre=6, clip_seconds=2)
        # One train set: the joint and FMA trainings would add four stages (a third of the
        # test's time) and exercise nothing hub-specific.
        params["train"].update(seeds=[0], epochs=3, sets=["synth_gtzan"])

    root = scaffold_project(tmp_path / "project", tiny)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "baseline"], root)
    _run(["dvc", "exp", "run", "-S", "embed.models=[clap,mert,muq]",
          "-S", "train.classifiers=[dnn,zeroshot]", "-S", f"embed.clap.weights={clap}",
          "-S", f"embed.mert.weights={mert}", "-S", f"embed.muq.weights={muq}",
          "-S", "embed.clap.device=cpu", "-S", "embed.mert.device=cpu",
          "-S", "embed.muq.device=cpu"], root)
    clap_run = json.loads((root / "metrics/runs/synth_gtzan/clap.json").read_text())
    mert_run = json.loads((root / "metrics/runs/synth_gtzan/mert.json").read_text())
    assert clap_run["weights"] == str(clap) and "zeroshot" in clap_run and "dnn" in clap_run
    assert "zeroshot" not in mert_run and "dnn" in mert_run
    for model, licence in (("mert", "CC-BY-NC-4.0"), ("muq", "CC-BY-NC-4.0"),
                           ("clap", "Apache-2.0")):
        bundle = json.loads((root / f"models/synth_gtzan/{model}/bundle.json").read_text())
        assert bundle["weights_licence"] == licence, model
    assert clap_run["zeroshot_setup"]["checkpoint"] == str(clap)
    assert clap_run["zeroshot_setup"]["text_tower_probe_mean_cosine"] < 0.95
    report = (root / "report.md").read_text()
    assert re.search(r"\| synth_gtzan \| clap \| .* \| zeroshot \| synth_gtzan \| \d+ \| "
                     r"\d+\.\d \| \d+\.\d-\d+\.\d \|", report), report
    assert "## Zero-shot (CLAP, nothing trained)" in report
