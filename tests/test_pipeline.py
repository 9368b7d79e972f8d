"""End to end: the DVC pipeline in a throw-away git repository, as a new user would run it.

Asserts the promises of the README: `dvc repro` runs offline to the end, metrics and plots
are readable by DVC, a second repro does nothing, and a training-only change reruns
training and the report but no download, split, extraction or merge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.dvc_project import scaffold_project

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MGC_CACHE": str(cwd / ".mgc-cache")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout + result.stderr


def _ran_stages(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines()
            if line.startswith("Running stage '")}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with tiny params, `dvc repro` already run and committed."""
    def tiny(params: dict[str, Any]) -> None:
        for source in ("synth_gtzan", "synth_fma"):
            params["data"]["sources"][source].update(clips_per_genre=6, clip_seconds=2)
        # One neural extractor (the cheapest), with the normalisation fitted on the
        # training split, so the fit stage and the weights plumbing run end to end.
        params["embed"]["models"] = ["mfcc", "byola"]
        params["embed"]["byola"].update(normalisation="train", batch_size=4)
        params["train"].update(seeds=[0, 1], epochs=6)

    root = scaffold_project(tmp_path_factory.mktemp("project"), tiny)
    output = _run(["dvc", "repro"], root)
    assert {"download@synth_gtzan", "extract@synth_fma-mfcc", "merge",
            "train@joint-mfcc", "report"} <= _ran_stages(output)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "baseline"], root)
    return root


def test_repro_writes_metrics_for_every_train_set(project: Path) -> None:
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], project))
    files = next(iter(shown.values()))["data"]
    for train_set in ("synth_gtzan", "synth_fma", "joint"):
        metrics = files[f"metrics/runs/{train_set}/mfcc.json"]["data"]
        accuracy = metrics["dnn"][train_set if train_set != "joint" else "all"]["accuracy"]
        assert 0.0 <= accuracy["mean"] <= 1.0
        assert "macro_f1" in metrics["linear"][train_set if train_set != "joint" else "all"]
    joint = files["metrics/runs/joint/mfcc.json"]["data"]
    assert joint["classes"] == 18
    tracks = (project / "data/tracks/synth_gtzan.parquet")
    assert tracks.exists()
    assert (project / "models/joint/mfcc/bundle.json").exists()
    report = (project / "report.md").read_text()
    for train_set in ("synth_gtzan", "synth_fma", "joint"):
        assert f"| {train_set} | mfcc | none | dnn |" in report


def test_unreadable_files_are_recorded_not_fatal(project: Path) -> None:
    import pandas as pd

    gtzan = pd.read_parquet(project / "data/tracks/synth_gtzan.parquet")
    fma = pd.read_parquet(project / "data/tracks/synth_fma.parquet")
    assert (gtzan["status"] == "unreadable").sum() == 1
    assert (fma["status"] == "empty").sum() == 1
    assert gtzan.loc[gtzan["status"] == "unreadable", "reason"].str.len().min() > 0
    metrics = json.loads((project / "metrics/runs/synth_gtzan/mfcc.json").read_text())
    assert metrics["n_excluded"] == 1


def test_plots_show_renders_confusion_matrix_and_dvclive_curves(project: Path) -> None:
    curves = project / "plots/curves/synth_gtzan/mfcc/metrics"
    val_loss = curves / "val_loss.tsv"
    rows = val_loss.read_text().splitlines()
    assert rows[0] == "step\tval_loss" and rows[1].startswith("1\t")
    assert {"train_loss.tsv", "val_accuracy.tsv"} <= {p.name for p in curves.iterdir()}
    _run(["dvc", "plots", "show", "-o", "plots_html"], project)
    page = (project / "plots_html" / "index.html").read_text()
    assert "confusion" in page and "synth_gtzan" in page
    assert "plots/curves/synth_gtzan/mfcc/metrics/val_loss.tsv" in page


def test_second_repro_does_nothing(project: Path) -> None:
    output = _run(["dvc", "repro"], project)
    assert _ran_stages(output) == set()


def test_loss_experiment_reruns_only_training(project: Path) -> None:
    output = _run(["dvc", "exp", "run", "-S", "loss.w_ce=0.7", "-S", "loss.w_contrastive=0.3"],
                  project)
    ran = _ran_stages(output)
    assert {"train@synth_gtzan-mfcc", "train@joint-mfcc", "report"} <= ran
    assert not any(stage.split("@")[0] in {"download", "split", "extract", "merge"}
                   for stage in ran)
    diff = json.loads(_run(["dvc", "metrics", "diff", "--json"], project))
    changed = diff["metrics/runs/synth_gtzan/mfcc.json"]
    assert any(entry["diff"] != 0 for entry in changed.values())


def test_neural_embeddings_record_random_weights_and_fitted_normalisation(project: Path) -> None:
    from mgc.embeddings import read_embeddings

    fitted = json.loads((project / "data/fit/byola.json").read_text())
    mean, std = fitted["fitted_options"]["normalisation"]
    assert std > 0 and fitted["n_tracks"] > 0
    assert json.loads((project / "data/fit/mfcc.json").read_text())["fitted_options"] == {}
    ids, vectors, metadata = read_embeddings(project / "data/embeddings/byola/synth_fma.parquet")
    assert vectors.shape == (len(ids), 3072)
    assert metadata["weights"] == "random" and metadata["normalisation"] == [mean, std]
    bundle = json.loads((project / "models/joint/byola/bundle.json").read_text())
    assert bundle["extractor_options"]["normalisation"] == [mean, std]
    assert "| synth_gtzan | byola | random weights | dnn |" in (project / "report.md").read_text()


def test_extractor_param_reruns_only_that_extractor(project: Path) -> None:
    output = _run(["dvc", "exp", "run", "-S", "embed.byola.pooling=mean"], project)
    ran = _ran_stages(output)
    assert {"extract@synth_gtzan-byola", "extract@synth_fma-byola", "train@joint-byola",
            "report"} <= ran
    assert not any("mfcc" in stage or stage.split("@")[0] in {"download", "split", "merge"}
                   for stage in ran)


def test_a_new_split_reextracts_only_what_was_fitted_on_it(project: Path) -> None:
    """A protocol change refits BYOL-A's normalisation (so BYOL-A re-extracts) while the
    MFCC features, which fit nothing, come from the cache."""
    output = _run(["dvc", "exp", "run", "-S", "data.protocol=standard"], project)
    ran = _ran_stages(output)
    assert {"split@synth_gtzan", "fit@byola", "fit@mfcc", "extract@synth_gtzan-byola",
            "train@synth_gtzan-mfcc"} <= ran
    assert not any(stage.startswith("extract@") and stage.endswith("-mfcc") for stage in ran)


def test_predict_with_a_random_weights_byola_bundle_rebuilds_the_same_embeddings(
        project: Path) -> None:
    """The bundle names the extractor, its seed and its fitted normalisation: `mgc predict`
    rebuilds exactly the network the stored embeddings came from."""
    import numpy as np
    import pandas as pd

    from mgc.audio import fit_length, load_audio
    from mgc.embeddings import read_embeddings
    from mgc.predict import GenrePredictor

    predictor = GenrePredictor(project / "models/synth_gtzan/byola")
    ids, vectors, metadata = read_embeddings(
        project / "data/embeddings/byola/synth_gtzan.parquet")
    tracks = pd.read_parquet(project / "data/tracks/synth_gtzan.parquet").set_index("track_id")
    for index in (0, len(ids) // 2):
        path = project / "data/raw/synth_gtzan" / tracks.loc[ids[index], "path"]
        clip = fit_length(load_audio(path, predictor.extractor.sample_rate),
                          metadata["clip_samples"])
        rebuilt = predictor.extractor.embed(clip[None])
        assert np.abs(rebuilt[0] - vectors[index]).max() < 1e-5
        prediction = predictor.predict_file(path)
        assert prediction.error is None and len(prediction.genres) == 10


def test_a_bad_param_fails_the_first_stage_that_runs_before_it_works(project: Path) -> None:
    """A misspelt option added with Hydra's `+` (DVC itself refuses a plain `-S` for a key
    params.yaml lacks) reruns the mfcc stages only; the first of them (fit@mfcc) refuses the
    whole params file at once, naming the key and the valid ones, and nothing else runs."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MGC_CACHE": str(project / ".mgc-cache")}
    embeddings = project / "data/embeddings/mfcc/synth_gtzan.parquet"
    before = embeddings.read_bytes()
    result = subprocess.run(["dvc", "exp", "run", "-S", "+embed.mfcc.n_ffft=1024"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=300)
    try:
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert ("embed.mfcc.n_ffft: unknown key; allowed: batch_size, clip, hop_length, "
                "layers, n_fft") in output
        assert _ran_stages(output) == {"fit@mfcc"}, output[-2000:]
        assert embeddings.read_bytes() == before
    finally:
        _run(["git", "checkout", "--", "params.yaml"], project)
