"""Faults: SIGKILL mid-stage, a full disk mid-write, a download or an unpack killed mid-way.

The promise under test: nothing an interrupted run leaves behind is taken for a finished
output, the next run completes with outputs identical to an uninterrupted run's, and
finished work (extraction parts, downloaded bytes) is reused rather than redone.

Kills are real SIGKILLs (no `finally`, no atexit) delivered by the process to itself at an
exact point: a launcher wraps one function so that its n-th call kills the process on
entry. The DVC tests run one tiny pipeline (50 clips of 2 s, mfcc, one seed, 3 epochs) and
kill the download, extract and train stages at a point drawn at random from each stage's
critical moments (before unpacking, before the unpacked tree is moved in, mid-index,
between a temp file's fsync and its rename, after some extraction parts, mid-training,
between the metrics and the model). MGC_FAULT_SEED fixes the draw; the seed and the
points are in every failure message.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from mgc import atomic, extractors
from mgc import bundle as bundle_module
from mgc.atomic import write_csv, write_json, write_parquet, write_text
from mgc.bundle import STATE_FILE, BundleInfo, save_bundle
from mgc.datasets import get_dataset
from mgc.download import CHUNK_BYTES, Checksum, fetch_file
from mgc.embeddings import clip_samples, extract_embeddings
from mgc.model import ClassifierConfig, GenreClassifier
from mgc.pipeline.corpus import build_dataset
from mgc.pipeline.layout import Layout
from tests.dvc_project import REPO, scaffold_project
from tests.http_server import FileServer

DATASET, MODEL = "synth_gtzan", "mfcc"
FAULT_SEED = int(os.environ.get("MGC_FAULT_SEED", random.SystemRandom().randrange(2**16)))
EXTRACT_GROUP = 8
"""Rows per extraction part in the killed run, so 49 clips make 7 parts to kill between."""

LAUNCHER = """
import importlib, os, signal, sys
target, nth, statement = sys.argv[1:]
names = target.split(".")
for split in range(len(names) - 1, 0, -1):
    try:
        owner = importlib.import_module(".".join(names[:split]))
        break
    except ModuleNotFoundError:
        continue
for name in names[split:-1]:
    owner = getattr(owner, name)
real, calls = getattr(owner, names[-1]), [0]
def killing(*args, **kwargs):
    calls[0] += 1
    if calls[0] == int(nth):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(owner, names[-1], killing)
exec(statement)
"""
"""`python -c LAUNCHER TARGET N STATEMENT`: run STATEMENT, SIGKILLed on entering the N-th
call of TARGET (a dotted name: module attribute, or class attribute such as a method)."""

KILL_POINTS: dict[str, list[tuple[str, int]]] = {
    f"download@{DATASET}": [
        ("mgc.datasets.indexing.safe_extract", 1),
        ("mgc.archive._replace_dir", 1),
        ("mgc.datasets.indexing.probe", 20),
        ("os.fsync", 1),
    ],
    f"extract@{DATASET}-{MODEL}": [
        ("mgc.embeddings.write_parquet", 4),
        ("os.fsync", 3),
        ("mgc.embeddings._join_parts", 1),
        ("os.fsync", 8),
    ],
    f"train@{DATASET}-{MODEL}": [
        ("mgc.seeds.train_classifier", 2),
        ("mgc.bundle.save_bundle", 1),
        ("os.fsync", 2),
        ("os.fsync", 3),
    ],
}
"""Per stage, its critical moments as (function, n-th call to die on entering)."""

STAGE_STATEMENTS = {
    f"download@{DATASET}": ("stages.download", ["--dataset", DATASET]),
    f"extract@{DATASET}-{MODEL}": ("stages.extract", ["--dataset", DATASET, "--model", MODEL]),
    f"train@{DATASET}-{MODEL}": ("stages.train", ["--set", DATASET, "--model", MODEL]),
    "report": ("stages.report", []),
}


def _env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MGC_CACHE": str(cwd / ".mgc-cache")}


def _run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, env=_env(cwd), capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout + result.stderr


def run_killed(cwd: Path, target: str, nth: int, statement: str) -> None:
    """Run `statement` in a fresh interpreter in `cwd`; it must die of SIGKILL at the point."""
    result = subprocess.run([sys.executable, "-c", LAUNCHER, target, str(nth), statement],
                            cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, (
        f"not killed at call {nth} of {target} (exit {result.returncode}, "
        f"MGC_FAULT_SEED={FAULT_SEED}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def _stage_statement(stage: str) -> str:
    module, argv = STAGE_STATEMENTS[stage]
    prelude = ""
    if stage.startswith("extract@"):
        prelude = ("import functools, mgc.embeddings as m; "
                   "m.extract_embeddings = functools.partial("
                   f"m.extract_embeddings, rows_per_group={EXTRACT_GROUP}); ")
    return f"{prelude}import sys; sys.argv = {[module, *argv]!r}; import {module}; {module}.main()"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every file the pipeline writes (data, models, metrics, plots, report)."""
    files = {"report.md": _sha256(root / "report.md")}
    for folder in ("data", "models", "metrics", "plots"):
        for path in (root / folder).rglob("*"):
            relative = path.relative_to(root)
            if path.is_file() and not relative.parts[1].startswith(".staging-"):
                files[str(relative)] = _sha256(path)
    return files


def _stage_outs(root: Path, stage: str) -> list[str]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return [out["path"] for out in lock["stages"][stage]["outs"]]


def _visible_files(root: Path, outs: list[str]) -> list[str]:
    """Files under `outs` that a reader would take as output (hidden temp names aside)."""
    found = []
    for out in outs:
        path = root / out
        candidates = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        for candidate in candidates:
            relative = candidate.relative_to(root)
            if candidate.is_file() and not any(part.startswith(".") for part in relative.parts):
                found.append(str(relative))
    return found


@dataclass
class Interrupted:
    """What the killed runs left, and what `dvc repro` made of it."""

    seed: int
    points: dict[str, tuple[str, int]]
    baseline: dict[str, str]
    left_behind: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per killed stage, sha256 of each output file in view right after the kill."""
    summary_after_kill: str = ""
    status_after_report_kill: dict[str, Any] = field(default_factory=dict)
    git_status_after_report_kill: str = ""
    status_after_kills: dict[str, Any] = field(default_factory=dict)
    part_rows: list[int] = field(default_factory=list)
    repro_output: str = ""
    after: dict[str, str] = field(default_factory=dict)
    status_after_repro: dict[str, Any] = field(default_factory=dict)
    git_status_after_repro: str = ""

    def context(self) -> str:
        return f"MGC_FAULT_SEED={self.seed}, kill points {self.points}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with tiny params (one dataset, one model, one seed), repro'd
    and committed: the uninterrupted run every interrupted one is compared with."""
    def tiny(params: dict[str, Any]) -> None:
        params["data"]["datasets"] = [DATASET]
        params["data"]["sources"][DATASET].update(clips_per_genre=5, clip_seconds=2)
        params["embed"]["models"] = [MODEL]
        # One process: a kill point inside train_classifier must fire in the stage's own
        # process, not in a spawned worker the launcher's patch never reaches.
        params["train"].update(sets=[DATASET], seeds=[0], epochs=3, workers=1)

    root = scaffold_project(tmp_path_factory.mktemp("fault_project"), tiny)
    _run(["dvc", "repro"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "uninterrupted run"], root)
    return root


@pytest.fixture(scope="module")
def interrupted(project: Path) -> Interrupted:
    """Kill the report while it replaces a finished output, then download, extract and
    train (latest first, so each still finds its inputs) after deleting their outputs as
    `dvc repro` does before running a stage; then `dvc repro` once.

    The DVC cache is emptied before that repro, as on a machine where these stages never
    finished: otherwise DVC would restore the uninterrupted run's outputs from it instead
    of running the stages, which would prove nothing.
    """
    rng = random.Random(FAULT_SEED)
    points = {stage: rng.choice(choices) for stage, choices in KILL_POINTS.items()}
    state = Interrupted(seed=FAULT_SEED, points=points, baseline=_fingerprint(project))

    run_killed(project, "os.fsync", 1, _stage_statement("report"))
    state.summary_after_kill = _sha256(project / "metrics/summary.json")
    state.status_after_report_kill = json.loads(_run(["dvc", "status", "--json"], project))
    state.git_status_after_report_kill = _run(["git", "status", "--porcelain"], project)

    for stage in reversed(list(KILL_POINTS)):
        outs = _stage_outs(project, stage)
        for out in outs:
            path = project / out
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        run_killed(project, *points[stage], _stage_statement(stage))
        state.left_behind[stage] = {path: _sha256(project / path)
                                    for path in _visible_files(project, outs)}
        if stage.startswith("extract@"):
            parts = sorted((project / "data/embeddings" / MODEL).glob(
                f".{DATASET}.parquet.parts.tmp/part-*.parquet"))
            state.part_rows = [pq.read_metadata(part).num_rows for part in parts]

    state.status_after_kills = json.loads(_run(["dvc", "status", "--json"], project))
    shutil.rmtree(project / ".dvc" / "cache")
    state.repro_output = _run(["dvc", "repro"], project)
    state.after = _fingerprint(project)
    state.status_after_repro = json.loads(_run(["dvc", "status", "--json"], project))
    state.git_status_after_repro = _run(["git", "status", "--porcelain"], project)
    return state


@pytest.mark.slow
def test_killed_stages_leave_no_output_dvc_takes_as_valid(interrupted: Interrupted) -> None:
    """Each killed stage is one `dvc status` will rerun, and every output file it left in
    view is whole and exactly the uninterrupted run's; the rest is absent."""
    for stage in KILL_POINTS:
        assert stage in interrupted.status_after_kills, interrupted.context()
        for path, digest in interrupted.left_behind[stage].items():
            assert digest == interrupted.baseline.get(path), (
                f"{stage} left a partial or wrong {path}; {interrupted.context()}")


@pytest.mark.slow
def test_killed_overwrite_keeps_the_previous_output(interrupted: Interrupted) -> None:
    """Killed between writing the new summary's temp file and renaming it: the old summary
    is intact, DVC rightly sees it as up to date, and git sees no stray file."""
    assert interrupted.summary_after_kill == interrupted.baseline["metrics/summary.json"]
    assert interrupted.status_after_report_kill == {}
    assert interrupted.git_status_after_report_kill == ""


@pytest.mark.slow
def test_extraction_resumes_from_complete_parts(interrupted: Interrupted) -> None:
    rows = interrupted.part_rows
    assert rows and all(n == EXTRACT_GROUP for n in rows[:-1]), interrupted.context()
    match = re.search(rf"{DATASET}/{MODEL}: (\d+) embedded, (\d+) resumed",
                      interrupted.repro_output)
    assert match, interrupted.repro_output[-3000:]
    embedded, resumed = int(match.group(1)), int(match.group(2))
    assert resumed == sum(rows) > 0, interrupted.context()
    assert embedded + resumed == 49


@pytest.mark.slow
def test_repro_after_kills_matches_the_uninterrupted_run(interrupted: Interrupted,
                                                        project: Path) -> None:
    """Same bytes for every track table, split, embedding, model, metric, plot and report;
    DVC and git see nothing to do. Temp files of killed writers that were not written
    again since are the only extra files, and both git and DVC ignore them."""
    ran = {line.split("'")[1] for line in interrupted.repro_output.splitlines()
           if line.startswith("Running stage '")}
    assert set(KILL_POINTS) <= ran, interrupted.context()
    extra = sorted(set(interrupted.after) - set(interrupted.baseline))
    for path in extra:
        assert re.fullmatch(r"\..+\.\d+\.tmp", Path(path).name), f"left behind: {path}"
        _run(["git", "check-ignore", "-q", path], project)
        _run(["dvc", "check-ignore", "-q", path], project)
    after = {path: digest for path, digest in interrupted.after.items() if path not in extra}
    changed = sorted(path for path in interrupted.baseline
                     if after.get(path) != interrupted.baseline[path])
    assert changed == [], interrupted.context()
    assert interrupted.status_after_repro == {}, interrupted.context()
    assert interrupted.git_status_after_repro == "", interrupted.context()


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fill_then_fail(destination: Any) -> None:
    """Write a few bytes where the real writer would, then hit a full disk."""
    if hasattr(destination, "write"):
        destination.write(b"partial")
    else:
        with open(destination, "wb") as handle:
            handle.write(b"partial")
    raise _no_space()


def _small_model() -> tuple[GenreClassifier, BundleInfo]:
    config = ClassifierConfig(hidden_layers=1)
    torch.manual_seed(0)
    model = GenreClassifier(4, 2, config)
    info = BundleInfo(class_names=["a", "b"], input_dim=4, classifier=config.to_dict(),
                      kind="dnn", heads=["anchor"], extractor="mfcc",
                      extractor_options={}, clip_samples=100, train_set="synth_gtzan",
                      protocol="paper")
    return model, info


def _full_disk_in(owner: Any, name: str, destination_arg: int
                  ) -> Callable[[pytest.MonkeyPatch], None]:
    """A patch making `owner.name` write a little to its destination, then fail."""
    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(owner, name,
                            lambda *args, **kwargs: _fill_then_fail(args[destination_arg]))
    return patch


FRAME = pd.DataFrame({"track_id": ["a", "b"], "value": [1.0, 2.0]})
WRITERS: dict[str, tuple[Callable[[Path], None], Callable[[pytest.MonkeyPatch], None]]] = {
    "json": (lambda path: write_json(path, {"new": True}), _full_disk_in(Path, "write_text", 0)),
    "text": (lambda path: write_text(path, "new"), _full_disk_in(Path, "write_text", 0)),
    "csv": (lambda path: write_csv(path, FRAME), _full_disk_in(pd.DataFrame, "to_csv", 1)),
    "parquet": (lambda path: write_parquet(path, FRAME),
                _full_disk_in(atomic.pq, "write_table", 1)),
    "model bundle": (lambda path: save_bundle(*_small_model(), path.parent),
                     _full_disk_in(bundle_module.torch, "save", 1)),
}
"""Each atomic writer, and where the bytes really hit the disk inside it."""


@pytest.mark.parametrize("kind", list(WRITERS))
def test_full_disk_mid_write_keeps_the_previous_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     kind: str) -> None:
    write, fill_disk = WRITERS[kind]
    path = tmp_path / ("out" if kind != "model bundle" else "bundle") / (
        STATE_FILE if kind == "model bundle" else f"out.{kind}")
    write(path)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    with monkeypatch.context() as patch:
        fill_disk(patch)
        with pytest.raises(OSError, match="No space left on device") as caught:
            write(path)
    assert caught.value.errno == errno.ENOSPC
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before


def test_temp_file_of_a_killed_writer_goes_with_the_next_write(tmp_path: Path) -> None:
    """SIGKILL between fsync and rename: the old file stays whole beside the new one's
    temp file; the next write of the same file removes that leftover (its writer is dead)
    but never another file's temp or a live writer's."""
    path = tmp_path / "metrics.json"
    write_json(path, {"old": True})
    old = path.read_bytes()
    run_killed(REPO, "os.fsync", 1, "from pathlib import Path; from mgc.atomic import "
               f"write_json; write_json(Path({str(path)!r}), {{'new': True}})")
    leftovers = sorted(tmp_path.glob(".metrics.json.*.tmp"))
    assert len(leftovers) == 1 and json.loads(leftovers[0].read_text()) == {"new": True}
    assert path.read_bytes() == old
    live = tmp_path / f".metrics.json.{os.getppid()}.tmp"
    other = tmp_path / f".other.json.{leftovers[0].name.split('.')[-2]}.tmp"
    live.write_text("a live writer's")
    other.write_text("another file's")
    write_json(path, {"again": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["metrics.json", live.name, other.name])


@pytest.fixture(scope="module")
def mfcc() -> extractors.Extractor:
    return extractors.load(MODEL, weights="none")


def _extract(corpus: Any, extractor: extractors.Extractor, out_path: Path) -> Any:
    return extract_embeddings(
        corpus.tracks, corpus.raw_dir, extractor, out_path,
        n_samples=clip_samples("full", corpus.dataset.nominal_clip_seconds,
                               extractor.sample_rate),
        metadata={**extractor.describe(), "clip": "full"}, batch_size=4,
        rows_per_group=EXTRACT_GROUP, progress=False)


def test_full_disk_mid_extraction_keeps_complete_parts_and_resumes(
        synth_gtzan: Any, mfcc: extractors.Extractor, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    clean = tmp_path / "clean.parquet"
    _extract(synth_gtzan, mfcc, clean)
    out_path = tmp_path / "mfcc.parquet"
    real_write, calls = atomic.pq.write_table, [0]

    def third_write_fills_the_disk(table: Any, where: Any, **options: Any) -> None:
        calls[0] += 1
        if calls[0] == 3:
            _fill_then_fail(where)
        real_write(table, where, **options)

    with monkeypatch.context() as patch:
        patch.setattr(atomic.pq, "write_table", third_write_fills_the_disk)
        with pytest.raises(OSError, match="No space left on device"):
            _extract(synth_gtzan, mfcc, out_path)
    assert not out_path.exists()
    parts_dir = tmp_path / ".mfcc.parquet.parts.tmp"
    assert sorted(p.name for p in parts_dir.iterdir()) == [
        "config.json", "part-000000.parquet", "part-000001.parquet"]
    assert [pq.read_table(p).num_rows for p in sorted(parts_dir.glob("part-*"))] == [8, 8]

    report = _extract(synth_gtzan, mfcc, out_path)
    assert report.n_resumed == 2 * EXTRACT_GROUP
    assert out_path.read_bytes() == clean.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.parquet", "mfcc.parquet"]


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def test_killed_download_resumes_from_its_part(http_server: FileServer, tmp_path: Path) -> None:
    """SIGKILL after two chunks reached the disk: no dest, the .part kept; the next run asks
    only for the rest, verifies the whole, and leaves just the file."""
    body = random.Random(3).randbytes(3 * CHUNK_BYTES + 12345)
    url = http_server.serve("/big.bin", body)
    checksum = Checksum("sha256", hashlib.sha256(body).hexdigest())
    dest = tmp_path / "big.bin"
    run_killed(REPO, "mgc.download.tqdm.update", 2,
               "from pathlib import Path; from mgc.download import Checksum, fetch_file; "
               f"fetch_file([{url!r}], Path({str(dest)!r}), Checksum('sha256', "
               f"{checksum.hexdigest!r}), progress=False)")
    part = tmp_path / "big.bin.part"
    assert not dest.exists()
    assert part.read_bytes() == body[:2 * CHUNK_BYTES]

    served_before = http_server.bytes_served
    fetch_file([url], dest, checksum, progress=False)
    assert dest.read_bytes() == body
    assert http_server.requests_for("/big.bin")[-1].range == f"bytes={2 * CHUNK_BYTES}-"
    assert http_server.bytes_served - served_before == len(body) - 2 * CHUNK_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]


def test_unpack_killed_mid_way_is_not_indexed_twice(synth_gtzan: Any, tmp_path: Path) -> None:
    """Killed with the unpacked tree complete but not yet moved into place: the rerun must
    not index that hidden `.genres.<id>.partial` copy as a second set of tracks."""
    data = tmp_path / "data"
    run_killed(REPO, "mgc.archive._replace_dir", 1,
               "from pathlib import Path; from mgc.datasets import get_dataset; "
               "from mgc.pipeline.corpus import build_dataset; "
               "from mgc.pipeline.layout import Layout; "
               f"build_dataset(get_dataset({DATASET!r}, clips_per_genre=5, clip_seconds=2.0, "
               f"seed=0, corrupt_tracks=1), Layout(data_dir=Path({str(data)!r})), "
               "progress=False)")
    raw = data / "raw" / DATASET
    assert [p.name.endswith(".partial") for p in raw.iterdir()] == [True]
    assert len(list(data.glob(".staging-*"))) == 1  # the killed run's rendered archives

    tracks = build_dataset(get_dataset(DATASET, clips_per_genre=5, clip_seconds=2.0, seed=0,
                                       corrupt_tracks=1), Layout(data_dir=data),
                           progress=False)
    assert tracks["track_id"].is_unique
    # Reasons quote the file's absolute path, which differs between the two trees.
    pd.testing.assert_frame_equal(tracks.drop(columns="reason"),
                                  synth_gtzan.tracks.drop(columns="reason"))
    assert [p.name for p in raw.iterdir()] == ["genres"]
    assert list(data.glob(".staging-*")) == []


def test_debris_of_killed_runs_is_ignored_by_dvc_and_git(tmp_path: Path) -> None:
    """What a killed run can leave (a writer's temp file, an extraction's parts, a download's
    staging folder) matches .dvcignore and .gitignore, so it never enters the hash of a
    folder a stage depends on (a leftover part in data/embeddings/<model>/ made DVC
    retrain); a staging folder of a process that is gone is removed by the next run."""
    import pathspec

    from mgc.embeddings import _parts_dir
    from mgc.pipeline.corpus import remove_dead_staging

    out = Path("data/embeddings/mfcc/synth_gtzan.parquet")
    debris = [str(_parts_dir(out) / "part-000000.parquet"), str(_parts_dir(out) / "config.json"),
              "data/tracks/.synth_gtzan.parquet.4242.tmp", "data/.staging-4242-abc/x.tar.gz"]
    for ignore in (".dvcignore", ".gitignore"):
        lines = (REPO / ignore).read_text().splitlines()
        spec = pathspec.PathSpec.from_lines("gitwildmatch", lines)
        assert [path for path in debris if not spec.match_file(path)] == [], ignore
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f".staging-{dead}-x1").mkdir()
    (tmp_path / f".staging-{os.getpid()}-x2").mkdir()
    (tmp_path / ".staging-old").mkdir()
    removed = remove_dead_staging(tmp_path)
    assert sorted(p.name for p in removed) == sorted([".staging-old", f".staging-{dead}-x1"])
    assert [p.name for p in tmp_path.iterdir()] == [f".staging-{os.getpid()}-x2"]


def test_saving_the_same_model_twice_gives_identical_bytes(tmp_path: Path) -> None:
    """The same model saved by two processes is the same file; otherwise DVC reports every
    rerun of training as a changed output (handed a path, torch.save names its zip's
    folder after the temp file, whose name holds the pid)."""
    model, info = _small_model()
    save_bundle(model, info, tmp_path / "here")
    subprocess.run([sys.executable, "-c", "from pathlib import Path; from mgc.bundle import "
                    "save_bundle; from tests.test_faults import _small_model; "
                    f"save_bundle(*_small_model(), Path({str(tmp_path / 'there')!r}))"],
                   cwd=REPO, check=True, timeout=120)
    assert (tmp_path / "here" / STATE_FILE).read_bytes() == (
        tmp_path / "there" / STATE_FILE).read_bytes()
    state = torch.load(tmp_path / "there" / STATE_FILE, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert np.isfinite(state["trunk.0.weight"].numpy()).all()
