"""Extraction on a Ray cluster: an `Engine` of `mgc.embeddings` whose batches Ray actors embed.

One actor per worker builds the extractor once and embeds tasks of whole batch windows
(`ClipPlan`): it decodes and embeds them with the very `LocalEngine` this process would use,
with this process's thread counts (torch's, and each BLAS and OpenMP library's: their
rounding follows the thread count, measured up to 4e-6 for mfcc), so every clip meets the
same batch neighbours and the same kernels, and the Parquet file, which the driver writes
with the usual writer in track order, is byte for byte the file a local run writes (on the
same kind of device). The driver streams the audio: each file's bytes go through Ray's
object store, or with `audio: paths` only its path, for audio on storage every node mounts
at the same place.

Faults are Ray's to handle, as its users expect: a worker process that dies is restarted
(`max_restarts`) and its tasks retried (`max_task_retries`); a driver that dies leaves the
parts it wrote, which the next run resumes from (`extract_embeddings`); a file that does not
decode is recorded with the reason local extraction gives; an address nothing answers at
fails within `CONNECT_TIMEOUT_S`, naming it.

A Ray started here (no `address`) is one machine's, bound to 127.0.0.1 with no dashboard:
a Ray head without authentication runs whatever job reaches it (ShadowRay,
CVE-2023-48022). Ray itself resolves 127.0.0.1 to the machine's address and then listens on
every interface, except in its single-machine mode (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`,
what Ray does on macOS and Windows), which is set for it, with token authentication on and
usage reporting off. Ray is imported only here and only when used: `pip install 'mgc[ray]'`.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mgc import __version__
from mgc.config import check_range, invalid
from mgc.embeddings import ClipPlan, EmbeddedBatch, LocalEngine
from mgc.errors import UserError

if TYPE_CHECKING:
    from mgc.extractors import Extractor

AUDIO_TRANSPORTS = ("bytes", "paths")
CONNECT_TIMEOUT_S = 10.0
"""How long an address may take to accept a TCP connection before the run fails."""
TASKS_AHEAD = 2
"""Tasks in flight or waiting to be written per worker: one computing, one queued behind it
so a worker never idles while the driver reads the next task's audio."""
SINGLE_MACHINE = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Ray's single-machine mode: node address 127.0.0.1, every server bound to it. Needed to
start such a Ray, and to join one (elsewhere Ray turns 127.0.0.1 into the machine's
address, where such a cluster does not listen)."""
STARTED_HERE = {**SINGLE_MACHINE, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
"""What a Ray started here runs under: single-machine mode, token authentication, no usage
report sent anywhere."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class RayClusterError(UserError, ConnectionError):
    """A Ray cluster that cannot be reached, or that would not be safe to start."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide extraction runs on Ray (`embed.ray.*` in the pipeline).

    `address`: none starts a Ray on this machine for the run (127.0.0.1 only, stopped
    after); `auto` joins the cluster `ray start` left on this machine (or `RAY_ADDRESS`);
    `host:port` joins a cluster's head; `ray://host:port` connects through Ray Client.
    """

    address: str | None = None
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    clips_per_task: int = 32
    """Clips a task carries at least; rounded up to whole batch windows."""
    audio: str = "bytes"
    """`bytes`: the driver reads each file and sends it; `paths`: workers read the path."""
    retries: int = 3
    """Restarts of a worker that dies, and retries of each task it held."""

    def __post_init__(self) -> None:
        if self.address is not None and not self.address.strip():
            raise invalid("address", self.address, "expected null (a Ray started for the "
                          "run), auto, host:port or ray://host:port")
        check_range("workers", self.workers, 1, 4096)
        check_range("cpus_per_worker", self.cpus_per_worker, 0.0, 1024.0)
        check_range("gpus_per_worker", self.gpus_per_worker, 0.0, 64.0)
        if self.cpus_per_worker == 0 and self.gpus_per_worker == 0:
            raise invalid("cpus_per_worker", self.cpus_per_worker,
                          "a worker needs some CPUs or GPUs (both are 0)")
        check_range("clips_per_task", self.clips_per_task, 1, 100_000)
        if self.audio not in AUDIO_TRANSPORTS:
            raise invalid("audio", self.audio,
                          f"allowed values are {', '.join(AUDIO_TRANSPORTS)}")
        check_range("retries", self.retries, 0, 1000)


@dataclass(frozen=True)
class TaskRecord:
    """Where one task ran and how long it took there: the benchmark's raw data, and how a
    test sees that a killed worker's tasks were retried by its successor."""

    node_id: str
    pid: int
    clips: int
    seconds: float


@dataclass
class RunStats:
    """What the driver saw of a run: the seconds until its workers were ready (Ray started
    or joined, each extractor built), then until the last result was written, and of those
    the seconds it spent waiting on workers (the rest is its own work: reading and sending
    audio, receiving, writing parts); and every task."""

    startup_s: float = 0.0
    running_s: float = 0.0
    waiting_s: float = 0.0
    tasks: list[TaskRecord] = field(default_factory=list)


def import_ray(environment: dict[str, str] | None = None) -> ModuleType:
    """Ray, imported on first use, under `environment` where the caller's own environment
    does not say otherwise (Ray reads these settings when it is first imported)."""
    if "ray" not in sys.modules:
        for name, value in (environment or {}).items():
            os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError:
        raise ImportError("the Ray engine needs Ray, an optional extra of mgc: "
                          "pip install 'mgc[ray]'") from None
    return ray


@dataclass(frozen=True)
class _Task:
    """Whole batch windows for one worker: the clips, each as bytes or as its path."""

    track_ids: list[str]
    paths: list[str]
    payloads: list[bytes | None] | None
    """Each file's bytes (None: the driver could not read it, the worker tries the path);
    None with `audio: paths`."""
    windows: list[int]
    sample_rate: int
    n_samples: int
    batch_size: int


@dataclass(frozen=True)
class _TaskResult:
    batches: list[EmbeddedBatch]
    record: TaskRecord


THREAD_VARIABLES = {"openblas": "OPENBLAS_NUM_THREADS", "mkl": "MKL_NUM_THREADS",
                    "blis": "BLIS_NUM_THREADS", "openmp": "OMP_NUM_THREADS"}
"""The variable each BLAS or OpenMP library reads its thread count from when it loads (a
running library will not raise its count after, so workers get them as they start)."""


def thread_counts() -> dict[str, int]:
    """This process's compute threads: each BLAS and OpenMP library's (threadpoolctl), and
    torch's where it is loaded."""
    from threadpoolctl import threadpool_info

    counts = {info["internal_api"]: info["num_threads"] for info in threadpool_info()}
    torch = sys.modules.get("torch")
    if torch is not None:
        counts["torch"] = torch.get_num_threads()
    return counts


class _Embedder:
    """A Ray actor: builds the extractor once, then embeds tasks exactly as `LocalEngine`
    does in the driver, with the driver's thread counts."""

    def __init__(self, build_extractor: Callable[[], Extractor], decode_workers: int,
                 torch_threads: int | None) -> None:
        if torch_threads is not None:
            import torch

            torch.set_num_threads(torch_threads)
        self.extractor = build_extractor()
        self.engine = LocalEngine(decode_workers)

    def describe(self) -> dict[str, Any]:
        """What this worker embeds with: the extractor's description and the mgc version."""
        return {"extractor": self.extractor.describe(), "mgc_version": __version__}

    def embed(self, task: _Task) -> _TaskResult:
        import ray

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="mgc-ray-") as folder:
            paths, renamed = _materialise(task, Path(folder))
            plan = ClipPlan(task.track_ids, paths, task.windows, task.sample_rate,
                            task.n_samples, task.batch_size)
            batches = [(ids, vectors, {track_id: _rename(reason, renamed)
                                       for track_id, reason in skipped.items()})
                       for ids, vectors, skipped in self.engine.embed(self.extractor, plan)]
        record = TaskRecord(ray.get_runtime_context().get_node_id(), os.getpid(),
                            len(task.track_ids), time.perf_counter() - started)
        return _TaskResult(batches, record)


def _materialise(task: _Task, folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The task's clips as files to decode, and each temporary name with the path it
    stands for: a file sent as bytes is written here under the suffix it had."""
    if task.payloads is None:
        return [Path(path) for path in task.paths], {}
    paths, renamed = [], {}
    for index, (path, payload) in enumerate(zip(task.paths, task.payloads, strict=True)):
        if payload is None:
            paths.append(Path(path))
            continue
        copy = folder / f"{index:06d}{Path(path).suffix}"
        copy.write_bytes(payload)
        paths.append(copy)
        renamed[str(copy)] = path
    return paths, renamed


def _rename(reason: str, renamed: dict[str, str]) -> str:
    """A decoder's reason with the temporary file named as the driver knows it, so a
    corrupt file is recorded exactly as a local run records it."""
    for copy, path in renamed.items():
        reason = reason.replace(copy, path)
    return reason


def _tasks(plan: ClipPlan, options: RayOptions) -> Iterator[_Task]:
    """The plan cut into tasks of at least `clips_per_task` clips, ending on a window's
    end; audio is read only as each task is sent, so the driver holds a few at a time."""
    start = 0
    while start < len(plan):
        end = min(start + options.clips_per_task, len(plan))
        while end < len(plan) and plan.windows[end] == plan.windows[end - 1]:
            end += 1
        paths = plan.paths[start:end]
        yield _Task(plan.track_ids[start:end], [str(path) for path in paths],
                    None if options.audio == "paths" else [_read(path) for path in paths],
                    plan.windows[start:end], plan.sample_rate, plan.n_samples,
                    plan.batch_size)
        start = end


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayClusterError(f"Ray address {address!r}: expected auto, host:port or "
                              "ray://host:port")
    return host.strip("[]"), int(port)


def _check_reachable(ray: ModuleType, address: str) -> None:
    """Fail within CONNECT_TIMEOUT_S, naming the address, where no cluster answers: Ray
    itself retries an unreachable head for minutes before it gives up."""
    target = address
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto")
        except (ConnectionError, ValueError) as error:
            raise RayClusterError(f"Ray address 'auto': no running cluster found on this "
                                  f"machine ({error})") from None
    host, port = _host_port(target)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise RayClusterError(f"no Ray cluster answers at {address} (tried {host}:{port} for "
                              f"{CONNECT_TIMEOUT_S:g} s: {error})") from None


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[ModuleType]:
    """Ray connected to `options.address`, or a Ray started on 127.0.0.1 for the run;
    disconnected (and a started one stopped) at the end. A session the caller opened
    itself is used as it is and left open."""
    local = options.address is None
    loopback = options.address not in (None, "auto") and _host_port(
        options.address)[0] in LOOPBACK_HOSTS
    ray = import_ray(STARTED_HERE if local else SINGLE_MACHINE if loopback else None)
    if ray.is_initialized():
        yield ray
        return
    if local:
        # "local": a new Ray, never the cluster `ray start` left on this machine.
        ray.init(address="local", num_cpus=math.ceil(options.workers * options.cpus_per_worker),
                 num_gpus=math.ceil(options.workers * options.gpus_per_worker),
                 include_dashboard=False, log_to_driver=False)
        node_ip = ray.util.get_node_ip_address()
        if node_ip not in LOOPBACK_HOSTS:
            ray.shutdown()
            raise RayClusterError(
                f"a Ray started for this run would listen on {node_ip}, not on 127.0.0.1 "
                "only: Ray was imported before mgc could start it in its single-machine "
                "mode; set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing it")
    else:
        _check_reachable(ray, options.address)
        ray.init(address=options.address, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


class RayEngine:
    """Embeds a `ClipPlan` on `options.workers` Ray actors, each holding one extractor from
    `build_extractor` (a picklable factory, e.g. `functools.partial(mgc.extractors.load,
    name, **options)`: every node must have mgc and the model's dependencies installed)."""

    def __init__(self, options: RayOptions, build_extractor: Callable[[], Extractor]) -> None:
        self.options = options
        self.build_extractor = build_extractor
        self.stats = RunStats()

    def embed(self, extractor: Extractor, plan: ClipPlan) -> Iterator[EmbeddedBatch]:
        if not len(plan):   # every track resumed from parts: no cluster to start
            return
        started = time.perf_counter()
        with ray_session(self.options) as ray:
            actors = self._start_workers(ray, extractor)
            ready = time.perf_counter()
            self.stats.startup_s = ready - started
            for result in self._dispatch(ray, actors, _tasks(plan, self.options)):
                self.stats.tasks.append(result.record)
                yield from result.batches
            self.stats.running_s = time.perf_counter() - ready

    def _start_workers(self, ray: ModuleType, extractor: Extractor) -> list[Any]:
        """One actor per worker, spread over the nodes; each must embed with exactly the
        model this process describes (same mgc, same weights), or the run stops here."""
        options, threads = self.options, thread_counts()
        worker = ray.remote(_Embedder).options(
            num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker,
            max_restarts=options.retries, max_task_retries=options.retries,
            scheduling_strategy="SPREAD", runtime_env={"env_vars": {
                variable: str(threads[api]) for api, variable in THREAD_VARIABLES.items()
                if api in threads}})
        actors = [worker.remote(self.build_extractor, max(2, math.floor(options.cpus_per_worker)),
                                threads.get("torch"))
                  for _ in range(options.workers)]
        expected = {"extractor": extractor.describe(), "mgc_version": __version__}
        for described in ray.get([actor.describe.remote() for actor in actors]):
            if described != expected:
                raise RuntimeError(
                    f"a Ray worker would embed with {described}, this process with "
                    f"{expected}: install the same mgc and weights on every node")
        return actors

    def _dispatch(self, ray: ModuleType, actors: list[Any],
                  tasks: Iterator[_Task]) -> Iterator[_TaskResult]:
        """Results in task order, with up to TASKS_AHEAD tasks per worker in flight or
        waiting to be written; each task goes to the worker with the fewest."""
        in_flight: dict[Any, tuple[int, int]] = {}
        finished: dict[int, _TaskResult] = {}
        load = [0] * len(actors)
        submitted = written = 0
        remaining: Iterator[_Task] | None = tasks
        while True:
            while remaining is not None and len(in_flight) + len(finished) < TASKS_AHEAD * len(
                    actors):
                task = next(remaining, None)
                if task is None:
                    remaining = None
                    break
                index = load.index(min(load))
                in_flight[actors[index].embed.remote(task)] = (submitted, index)
                load[index] += 1
                submitted += 1
            if not in_flight:
                break
            waited = time.perf_counter()
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            self.stats.waiting_s += time.perf_counter() - waited
            for ref in ready:
                sequence, index = in_flight.pop(ref)
                load[index] -= 1
                finished[sequence] = ray.get(ref)
            while written in finished:
                yield finished.pop(written)
                written += 1
