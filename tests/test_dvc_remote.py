"""A team shares results through a DVC remote (README "Sharing results: a DVC remote"): one
clone runs the pipeline and pushes, another pulls and has nothing left to run.

The remote is a local folder, the one kind this machine can reach; S3, GCS, SSH and the
rest differ only in the URL given to `dvc remote add`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.dvc_project import one_model_one_dataset, runner, scaffold_project

pytestmark = pytest.mark.slow


def test_a_second_clone_pulls_the_embeddings_and_reruns_nothing(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    first = scaffold_project(tmp_path_factory.mktemp("first"), one_model_one_dataset)
    remote = tmp_path_factory.mktemp("remote")
    run_first = runner(first)
    run_first("dvc", "remote", "add", "--default", "shared", str(remote))
    run_first("dvc", "repro")
    run_first("dvc", "push")
    run_first("git", "add", "-A")
    run_first("git", "commit", "-qm", "pipeline run, outputs pushed to the shared remote")

    second = tmp_path_factory.mktemp("second") / "clone"
    subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)
    run_second = runner(second)
    embeddings = Path("data/embeddings/mfcc/synth_gtzan.parquet")
    assert not (second / embeddings).exists()
    run_second("dvc", "pull")
    assert (second / embeddings).read_bytes() == (first / embeddings).read_bytes()
    assert json.loads(run_second("dvc", "status", "--json")) == {}
    output = run_second("dvc", "repro")
    assert "Running stage" not in output, output[-3000:]
    assert "extract@synth_gtzan-mfcc' didn't change, skipping" in output
