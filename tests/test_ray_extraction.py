"""mgc.ray_extraction on a real Ray cluster this module starts: two nodes on 127.0.0.1.

The cluster is `ray.cluster_utils.Cluster`, Ray's own way to run several nodes on one
machine, rather than `ray start`: the CLI resolves 127.0.0.1 to the machine's address and
then listens on every interface, and refuses a second node in Ray's single-machine mode,
the one mode in which Ray binds 127.0.0.1 only. Each node has one CPU, each worker one
CPU (one torch thread, as the local runs here: tests/conftest.py), so the Ray runs must
write the local runs' bytes. Faults are real: a worker's process is SIGKILLed, a driver
process is SIGKILLed.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
import yaml

from mgc import extractors
from mgc.embeddings import (
    ClipPlan,
    EmbeddedBatch,
    ExtractionReport,
    clip_samples,
    extract_embeddings,
)
from mgc.ray_extraction import (
    CONNECT_TIMEOUT_S,
    STARTED_HERE,
    RayClusterError,
    RayEngine,
    RayOptions,
    import_ray,
    ray_session,
)
from tests.dvc_project import REPO, one_model_one_dataset, runner, scaffold_project
from tests.http_server import unused_port
from tests.test_faults import run_killed

_STARTING_ENV = dict(os.environ)
"""The environment as this module found it (the benchmark must leave it so)."""
BATCH = 4
CLIPS_PER_TASK = 6
"""Rounded up to 8 (two windows of 4): 50 tracks make 7 tasks."""
GROUP = 8


@dataclass(frozen=True)
class Job:
    """What to embed and how: the same for the local reference, the Ray runs and a driver
    run in another process."""

    tracks: Path
    raw_dir: Path
    model: str
    options: dict[str, Any]

    def extract(self, out_path: Path, ray: RayOptions | None = None,
                engine: Any = None) -> ExtractionReport:
        extractor = extractors.load(self.model, **self.options)
        if ray is not None:
            engine = RayEngine(ray, functools.partial(extractors.load, self.model,
                                                      **self.options))
        return extract_embeddings(
            pd.read_parquet(self.tracks), self.raw_dir, extractor, out_path,
            n_samples=clip_samples("full", 2.0, extractor.sample_rate),
            metadata={**extractor.describe(), "clip": "full"}, batch_size=BATCH,
            rows_per_group=GROUP, engine=engine, progress=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and a worker node, one CPU each, on 127.0.0.1, with the settings of a Ray mgc
    starts (single-machine mode, token authentication); its address."""
    import_ray(STARTED_HERE)
    from ray.cluster_utils import Cluster

    started = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    started.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    try:
        yield started.address
    finally:
        started.shutdown()


def _options(address: str, **changes: Any) -> RayOptions:
    return RayOptions(**{"address": address, "workers": 2, "cpus_per_worker": 1.0,
                         "clips_per_task": CLIPS_PER_TASK, **changes})


@pytest.fixture(scope="module")
def job(synth_gtzan, tmp_path_factory: pytest.TempPathFactory) -> Job:
    """synth_gtzan's 50 tracks, the unreadable jazz file included, for mfcc."""
    tracks = tmp_path_factory.mktemp("job") / "tracks.parquet"
    synth_gtzan.tracks.to_parquet(tracks)
    return Job(tracks, synth_gtzan.raw_dir, "mfcc", {"weights": "none"})


@pytest.fixture(scope="module")
def local(job: Job, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractionReport]:
    out_path = tmp_path_factory.mktemp("local") / "mfcc.parquet"
    return out_path, job.extract(out_path)


@pytest.fixture(scope="module")
def on_ray(cluster: str, job: Job, tmp_path_factory: pytest.TempPathFactory,
           ) -> tuple[Path, ExtractionReport, RayEngine]:
    """The same job on the cluster's two workers, audio sent as bytes."""
    out_path = tmp_path_factory.mktemp("ray") / "mfcc.parquet"
    engine = RayEngine(_options(cluster), functools.partial(extractors.load, job.model,
                                                            **job.options))
    return out_path, job.extract(out_path, engine=engine), engine


def test_ray_writes_the_bytes_local_extraction_writes(local, on_ray) -> None:
    (local_path, local_report), (ray_path, ray_report, engine) = local, on_ray
    assert ray_path.read_bytes() == local_path.read_bytes()
    assert ray_report.n_embedded == local_report.n_embedded == 49
    assert len(engine.stats.tasks) == 7
    assert len({task.node_id for task in engine.stats.tasks}) == 2, "one node did it all"
    assert sum(task.clips for task in engine.stats.tasks) == 50


def test_a_corrupt_file_is_recorded_as_local_records_it(local, on_ray,
                                                        synth_gtzan) -> None:
    (_, local_report), (_, ray_report, _) = local, on_ray
    corrupt = synth_gtzan.tracks.loc[synth_gtzan.tracks["status"] == "unreadable", "track_id"]
    assert list(ray_report.skipped) == list(corrupt) == ["jazz.00000"]
    assert ray_report.skipped == local_report.skipped
    assert str(synth_gtzan.raw_dir / "genres" / "genres" / "jazz" / "jazz.00000.au") in (
        ray_report.skipped["jazz.00000"]), "the reason names a temporary copy"


def test_a_batch_dependent_model_reading_shared_paths_writes_the_local_bytes(
        cluster: str, synth_gtzan, tmp_path: Path) -> None:
    """VGGish's floats change with a clip's batch neighbours (7e-9): equal bytes mean the
    workers embedded the local run's windows, the one after the corrupt file included."""
    tracks = tmp_path / "tracks.parquet"
    synth_gtzan.tracks.to_parquet(tracks)
    vggish = Job(tracks, synth_gtzan.raw_dir, "vggish",
                 {"weights": "random", "postprocess": False, "device": "cpu"})
    vggish.extract(tmp_path / "local.parquet")
    report = vggish.extract(tmp_path / "ray.parquet", _options(cluster, audio="paths"))
    assert (tmp_path / "ray.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()
    assert list(report.skipped) == ["jazz.00000"]


class KillingFirstWorker:
    """The Ray engine, SIGKILLing the process of the worker that ran the first task as soon
    as that task's result arrives: the worker is then computing its second task."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine
        self.killed: int | None = None

    def embed(self, extractor: extractors.Extractor, plan: ClipPlan) -> Iterator[EmbeddedBatch]:
        for batch in self.engine.embed(extractor, plan):
            if self.killed is None:
                self.killed = self.engine.stats.tasks[0].pid
                os.kill(self.killed, signal.SIGKILL)
            yield batch


def test_a_killed_worker_is_restarted_and_its_tasks_retried(cluster: str, job: Job, local,
                                                             tmp_path: Path) -> None:
    # Tasks of 12 clips, so the killed worker is surely still computing its second one.
    engine = RayEngine(_options(cluster, clips_per_task=12),
                       functools.partial(extractors.load, job.model, **job.options))
    killing = KillingFirstWorker(engine)
    out_path = tmp_path / "mfcc.parquet"
    report = job.extract(out_path, engine=killing)
    assert out_path.read_bytes() == local[0].read_bytes()
    assert report.n_embedded == 49 and report.skipped == local[1].skipped
    pids = [task.pid for task in engine.stats.tasks]
    # Tasks go to the worker with the fewest: 0, 2, 4, ... to the first one, which held
    # task 2 when it was killed; its successor (a new process) ran it again.
    assert pids[0] == killing.killed and killing.killed not in pids[1:]
    assert pids[2] not in (pids[0], pids[1]), "task 2 was not retried by a restarted worker"


def test_a_killed_driver_is_resumed_from_the_parts_it_wrote(cluster: str, job: Job, local,
                                                             tmp_path: Path) -> None:
    out_path = tmp_path / "mfcc.parquet"
    statement = (f"from tests.test_ray_extraction import Job, _options; from pathlib import "
                 f"Path; Job(Path({str(job.tracks)!r}), Path({str(job.raw_dir)!r}), "
                 f"{job.model!r}, {job.options!r}).extract(Path({str(out_path)!r}), "
                 f"_options({cluster!r}))")
    run_killed(REPO, "mgc.embeddings.write_parquet", 3, statement)
    parts = sorted(out_path.with_name(f".{out_path.name}.parts.tmp").glob("part-*.parquet"))
    assert len(parts) == 2 and not out_path.exists()

    report = job.extract(out_path, _options(cluster))
    assert report.n_resumed == 2 * GROUP
    assert report.n_resumed + report.n_embedded == 49
    assert out_path.read_bytes() == local[0].read_bytes()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_cluster_fails_at_once_naming_its_address(scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{unused_port()}"
    ray = import_ray()
    started = time.perf_counter()
    with (pytest.raises(RayClusterError, match=f"no Ray cluster answers at {address} "),
          ray_session(RayOptions(address=address))):
        pass
    assert time.perf_counter() - started < CONNECT_TIMEOUT_S
    assert not ray.is_initialized()


class ListeningSockets:
    """The Ray engine, noting when the first result arrives (so while Ray and its workers
    run) every listening TCP socket of this process and its children, by (address, port,
    process name)."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine
        self.sockets: list[tuple[str, int, str]] = []

    def embed(self, extractor: extractors.Extractor, plan: ClipPlan) -> Iterator[EmbeddedBatch]:
        for batch in self.engine.embed(extractor, plan):
            if not self.sockets:
                tree = {os.getpid(), *(child.pid for child in
                                       psutil.Process().children(recursive=True))}
                self.sockets = sorted({(c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name())
                                       for c in psutil.net_connections("inet")
                                       if c.status == psutil.CONN_LISTEN and c.pid in tree})
            yield batch


def run_on_a_ray_of_its_own(job: Job, out_path: Path) -> None:
    """In a fresh process: extract `job` on a Ray that mgc starts (no address), and print
    the sockets it listened on, its authentication mode and the count embedded as JSON."""
    engine = ListeningSockets(RayEngine(RayOptions(workers=1), functools.partial(
        extractors.load, job.model, **job.options)))
    report = job.extract(out_path, engine=engine)
    print(json.dumps({"sockets": engine.sockets, "auth_mode": os.environ.get("RAY_AUTH_MODE"),
                      "embedded": report.n_embedded}))


def test_a_ray_started_for_the_run_listens_on_loopback_only(job: Job, local,
                                                           tmp_path: Path) -> None:
    """No address: mgc starts Ray itself, in a fresh process as the extract stage does; while
    its worker runs, every listening socket of that process and its children (GCS, raylet,
    agents, workers, driver) is on 127.0.0.1, no dashboard, token authentication on."""
    out_path = tmp_path / "mfcc.parquet"
    statement = (f"from pathlib import Path; from tests.test_ray_extraction import Job, "
                 f"run_on_a_ray_of_its_own as run; run(Job(Path({str(job.tracks)!r}), "
                 f"Path({str(job.raw_dir)!r}), {job.model!r}, {job.options!r}), "
                 f"Path({str(out_path)!r}))")
    result = subprocess.run([sys.executable, "-c", statement], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.splitlines()[-1])
    sockets = [tuple(entry) for entry in seen["sockets"]]
    assert {name for _, _, name in sockets} >= {"gcs_server", "raylet"}, sockets
    assert [s for s in sockets if s[0] not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")] == []
    assert 8265 not in {port for _, port, _ in sockets}, "a dashboard listens"
    assert seen["auth_mode"] == "token"
    assert seen["embedded"] == 49 and out_path.read_bytes() == local[0].read_bytes()


@pytest.mark.slow
def test_switching_engines_reextracts_nothing_and_a_forced_rerun_on_ray_changes_nothing(
        cluster: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`embed.engine` is no stage's param: after `-S embed.engine=ray`, `dvc status` is
    clean; forcing the extract stage to run again, on the cluster, writes the same file,
    so nothing downstream is out of date and dvc.lock does not change."""
    root = scaffold_project(tmp_path_factory.mktemp("engines"), one_model_one_dataset)
    run = runner(root)
    run("dvc", "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "local run")
    lock = (root / "dvc.lock").read_text()
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["embed"]["engine"] = "ray"
    params["embed"]["ray"].update(address=cluster, workers=2, cpus_per_worker=1.0)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert json.loads(run("dvc", "status", "--json")) == {}
    output = run("dvc", "repro", "--force", "--single-item", "extract@synth_gtzan-mfcc")
    assert "synth_gtzan/mfcc: 49 embedded, 0 resumed, 0 skipped" in output
    assert f"Connecting to existing Ray cluster at address: {cluster}" in output
    assert json.loads(run("dvc", "status", "--json")) == {}
    assert (root / "dvc.lock").read_text() == lock


def test_the_scaling_benchmark_runs_and_writes_every_number(cluster: str,
                                                            tmp_path: Path) -> None:
    """benchmarks/ray_scaling.py at its smallest, on this module's cluster: a smoke run of
    every path it times (no timing is asserted)."""
    from benchmarks import ray_scaling

    out = tmp_path / "ray_scaling.json"
    returned = ray_scaling.main(["--clips", "4", "--model", "mfcc", "--address", cluster,
                                 "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(returned))
    assert set(written["runs"]) == {"local", "ray, 1 worker", "ray, 2 workers"}
    for name in ("ray, 1 worker", "ray, 2 workers"):
        run = written["runs"][name]
        assert run["identical_to_local"] is True, name
        assert run["steady_clips_per_s"] > 0 and run["driver_overhead_s_per_clip"] > 0
    assert written["runs"]["ray, 2 workers"]["nodes"] == 2
    assert written["scaling_efficiency"] > 0
    hours = written["fma_large_hours"]["by_model"]["mert (3.2 s/clip)"]
    assert sorted(hours, key=int) == ["1", "2", "4", "8", "16", "32", "64"]
    assert hours["1"] >= hours["64"] > 0
    assert len(written["machine"]["load_average_at_end"]) == 3
    assert all(os.environ.get(name) == _STARTING_ENV.get(name)
               for name in ray_scaling.ONE_THREAD), "the benchmark left its thread settings"


def test_the_default_pipeline_never_imports_ray_and_its_absence_is_named() -> None:
    """`make repro` does not need Ray: the extract stage's modules load without it, and a
    run that asks for it where it is not installed says what to install."""
    probe = ("import sys; sys.modules['ray'] = None\n"
             "import mgc, mgc.pipeline.params, mgc.pipeline.embedding, stages.extract\n"
             "from mgc.ray_extraction import import_ray\n"
             "try:\n    import_ray()\nexcept ImportError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pip install 'mgc[ray]'" in result.stdout
