"""Extraction benchmark: our batched, streaming path against each model's reference code.

Questions it answers, on one machine in one run:
- How much faster is `mgc.extract.extract_embeddings` (thread-pool decode + soxr resample,
  batched forward, Parquet parts) than running each model the way its README shows it (one
  clip at a time, its own decoder and resampler), on the same files and the same random
  weights? And does it compute the same function (same decoded waveforms in, same vectors
  out, to 1e-4)?
- How close to the machine's own matmul rate each path runs: the roofline is measured in
  the same run, and each model's FLOPs per 30 s clip are counted by torch.
- Does extraction memory stay flat when the corpus grows tenfold?

Every timed path runs in its own spawned process, so its peak RSS is its own and no path
inherits another's warm caches. Heavy imports sit inside the job functions for the same
reason: a process pays only for the modules its path needs. Each timed run follows one
untimed warm-up clip, so one-off costs (resampy's numba JIT, lazy imports, oneDNN set-up)
do not swamp the per-clip figures of a short run.

    python -m benchmarks.extract [--clips 8] [--models byola panns vggish] [--threads N]
        [--batch-sizes 4 8] [--memory-scale small|full] [--out benchmarks/results/extract.json]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

CLIP_SECONDS = 30.0
CORPUS_RATE_HZ = 22050
"""The corpus is written like GTZAN: 22,050 Hz mono 16-bit .au, `genres/<g>/<g>.000NN.au`."""
SEED = 0
TOLERANCE = 1e-4
IDENTITY_CLIPS = 2
NEURAL_MODELS = ("byola", "panns", "vggish")
OPTIONS: dict[str, dict[str, Any]] = {"byola": {}, "panns": {}, "vggish": {"postprocess": False}}
"""Extractor options: defaults, except VGGish's PCA, which is fitted to the real weights and
means nothing on random ones (the reference path runs without it too)."""

MEMORY_MODEL = "byola"
MEMORY_CLIP_SECONDS = 3.0
"""Long enough that keeping every decoded clip alive (22,050 + 16,000 Hz float32, 460 kB a
clip) would add 80 MB over the 180 extra clips of the small scale: more than its 10 %."""
MEMORY_SCALES = {"small": (20, 200, 8), "full": (100, 1000, 64)}
"""(clips in the small run, clips in the tenfold run, rows per Parquet part). The small scale
shrinks the part size with the corpus, so that both of its runs write several parts: pyarrow's
mimalloc pool keeps about 50 MB after the first few parts are written and read back, a
one-off plateau (not growth) that a run writing fewer than two parts never reaches."""

MATMUL_N = 2048
PROBE_N = 1024
"""Matmul size of the probe each timed process runs just before its timed run: as fast per
FLOP as 2048 here, and its 12 MB stay far below any path's peak RSS. The machine is shared,
so its speed drifts between runs; these probes say by how much, and the roofline is the
fastest rate seen anywhere in the run."""
CONV_SHAPE = (1, 128, 256, 64)
"""Input of the 3x3, 128 -> 128 convolution probe: a mid-network CNN14-like layer."""

REFERENCE_RECIPES = {
    "panns": "librosa.load(sr=32000, mono=True) + panns_inference Cnn14 forward on (1, samples) "
             "under torch.no_grad(), output['embedding']",
    "vggish": "torchvggish vggish_input.wavfile_to_examples (soundfile.read int16, resampy to "
              "16 kHz, numpy log-mel) + torchvggish VGG forward, mean over examples",
    "byola": "librosa.load(sr=16000) + librosa.feature.melspectrogram (n_fft 1024, hop 160, 64 "
             "Slaney mels 60-7800 Hz, power 2, centred) + log(x + eps) + paper normalisation + "
             "AudioNTT2022 encoder on (1, 1, 64, T), max + mean over time",
}


_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    """Seconds since this process imported the module, then the message."""
    print(f"[bench {time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr,
          flush=True)


# --- what runs inside the spawned processes ------------------------------------------------

def _peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _load_ours(model: str, weights: str, device: str = "cpu") -> Any:
    from mgc import extractors

    return extractors.load(model, weights=weights, device=device, **OPTIONS[model])


class PannsReference:
    """panns_inference's Cnn14 used as its README does (AudioTagging.inference is this forward
    under no_grad), fed by librosa.load at 32 kHz."""

    sample_rate = 32000

    def __init__(self, weights: Path) -> None:
        import torch

        from tests.reference_models import AUDIOSET_CLASSES, panns_models

        self.model = panns_models().Cnn14(sample_rate=32000, window_size=1024, hop_size=320,
                                          mel_bins=64, fmin=50, fmax=14000,
                                          classes_num=AUDIOSET_CLASSES)
        self.model.load_state_dict(torch.load(weights, weights_only=True)["model"])
        self.model.eval()

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(wave[None]))["embedding"][0].numpy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        audio, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(audio)


class VggishReference:
    """torchvggish: its own file reader and numpy front end (resampy), its VGG, examples
    mean-pooled into one clip vector as our extractor's default pooling does."""

    sample_rate = 16000

    def __init__(self, weights: Path) -> None:
        import torch
        from torchvggish.torchvggish import _vgg

        self.model = _vgg(postprocess=False)
        self.model.load_state_dict(torch.load(weights, weights_only=True))
        self.model.eval()

    def _pooled(self, examples: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(examples).mean(dim=0).numpy()

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        from torchvggish.vggish_input import waveform_to_examples

        return self._pooled(waveform_to_examples(wave, self.sample_rate))

    def embed_file(self, path: Path) -> np.ndarray:
        from torchvggish.vggish_input import wavfile_to_examples

        return self._pooled(wavfile_to_examples(str(path)))


class ByolaReference:
    """BYOL-A has no package: the authors' recipe with librosa (front end, normalisation with
    their fixed statistics, written out here rather than taken from mgc) around the
    AudioNTT2022 encoder module, one clip at a time."""

    sample_rate = 16000
    normalisation = (-9.660292, 4.7219563)

    def __init__(self, weights: Path) -> None:
        extractor = _load_ours("byola", str(weights))
        network = extractor.build_network()      # eager, in the published layer order
        extractor.load_weights(network, weights)
        self.encoder = network.encoder.eval()

    def embed_wave(self, wave: np.ndarray) -> np.ndarray:
        import librosa
        import torch

        mel = librosa.feature.melspectrogram(y=wave, sr=self.sample_rate, n_fft=1024,
                                             hop_length=160, n_mels=64, fmin=60, fmax=7800,
                                             htk=False, norm="slaney", power=2.0, center=True,
                                             pad_mode="reflect")
        mean, std = self.normalisation
        log_mel = (np.log(mel + np.finfo(np.float32).eps) - mean) / std
        with torch.no_grad():
            frames = self.encoder(torch.from_numpy(log_mel.astype(np.float32))[None, None])
            return (frames.amax(dim=1) + frames.mean(dim=1))[0].numpy()

    def embed_file(self, path: Path) -> np.ndarray:
        import librosa

        wave, _ = librosa.load(path, sr=self.sample_rate, mono=True)
        return self.embed_wave(wave)


REFERENCES: dict[str, type[PannsReference | VggishReference | ByolaReference]] = {
    "panns": PannsReference, "vggish": VggishReference, "byola": ByolaReference}


def save_weights(model: str, weights_dir: Path) -> Path:
    """Seeded random weights in the model's official file layout; both paths load this file.

    BatchNorm layers get random statistics, so a BatchNorm on the wrong axis would show."""
    import torch

    from tests.reference_models import randomise_batchnorm, reference_cnn14, reference_vggish

    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{model}.pth"
    if model == "panns":
        torch.save({"model": reference_cnn14(SEED).state_dict()}, path)
    elif model == "vggish":
        torch.save(reference_vggish(SEED).state_dict(), path)
    else:
        encoder = _load_ours("byola", "random").build_network().encoder
        torch.manual_seed(SEED)
        randomise_batchnorm(encoder)
        torch.save(encoder.state_dict(), path)
    return path


def _counted(run: Callable[[], Any]) -> tuple[int, Any]:
    """(torch FLOPs `run` executed, what it returned): the identity check's forward passes
    are the ones counted, so no extra pass is spent on counting."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        result = run()
    return int(counter.get_total_flops()), result


def _best_seconds(run: Callable[[], object], reps: int) -> float:
    run()
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(n: int, reps: int = 10) -> float:
    """fp32 (n, n) @ (n, n) throughput, best of `reps` after a warm-up."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        return 2 * n**3 / _best_seconds(lambda: a @ b, reps) / 1e9


def measure_roofline() -> dict[str, Any]:
    """fp32 matmul and 3x3 conv throughput, best of a few repetitions after a warm-up."""
    import torch

    conv = torch.nn.Conv2d(CONV_SHAPE[1], CONV_SHAPE[1], 3, padding=1, bias=False).eval()
    x = torch.randn(*CONV_SHAPE)
    conv_flop = _counted(lambda: conv(x))[0]
    with torch.inference_mode():
        conv_s = _best_seconds(lambda: conv(x), reps=5)
        conv_last = conv.to(memory_format=torch.channels_last)
        x_last = x.contiguous(memory_format=torch.channels_last)
        conv_last_s = _best_seconds(lambda: conv_last(x_last), reps=5)
    return {"matmul_n": MATMUL_N, "matmul_gflops": matmul_gflops(MATMUL_N),
            "conv_input_shape": list(CONV_SHAPE), "conv_gflop": conv_flop / 1e9,
            "conv_gflops": conv_flop / conv_s / 1e9,
            "conv_channels_last_gflops": conv_flop / conv_last_s / 1e9}


def _check_job(models: list[str], weights_dir: Path, paths: list[Path],
               threads: int, device: str) -> dict[str, Any]:
    """Write the shared weights, then for each model: feed identical decoded waveforms to
    our extractor and to the reference network (max abs difference), and count the FLOPs of
    one 30 s clip on each path. Also measure the roofline."""
    import torch

    from mgc.audio import fit_length, load_audio

    _set_threads(threads)
    result: dict[str, Any] = {"roofline": measure_roofline(), "models": {}}
    for model in models:
        weights = save_weights(model, weights_dir)
        ours, reference = _load_ours(model, str(weights), device), REFERENCES[model](weights)
        n_samples = round(CLIP_SECONDS * ours.sample_rate)
        waves = np.stack([fit_length(load_audio(p, ours.sample_rate), n_samples) for p in paths])
        ours_vectors = ours.embed(waves)
        # Inside a frozen TorchScript graph the counter sees no ops: count the same network
        # run eagerly (the arithmetic is the same; only its scheduling differs).
        eager = ours.build_network()
        if ours.weights.path is not None:
            ours.load_weights(eager, ours.weights.path)
        eager.eval()
        with torch.inference_mode():
            ours_flops = _counted(lambda e=eager, w=waves: e(torch.from_numpy(w)))[0]
        reference_flops, reference_vectors = _counted(
            lambda r=reference, w=waves: np.stack([r.embed_wave(clip) for clip in w]))
        result["models"][model] = {
            "sample_rate": ours.sample_rate, "dim": ours.dim,
            "max_abs_diff": float(np.abs(ours_vectors - reference_vectors).max()),
            "max_abs_embedding": float(np.abs(reference_vectors).max()),
            "identity_clips": len(paths),
            "ours_gflop_per_clip": ours_flops / len(paths) / 1e9,
            "reference_gflop_per_clip": reference_flops / len(paths) / 1e9,
        }
        _progress(f"{model}: max |ours - reference| = "
                  f"{result['models'][model]['max_abs_diff']:.2e}")
    return result


def _ours_job(model: str, weights: str, raw_dir: Path, tracks: list[tuple[str, str]],
              clip_seconds: float, batch_size: int, threads: int, out_path: Path,
              rows_per_group: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Our whole path, timed from the loaded and warmed-up model to the final Parquet file."""
    import inspect

    import pandas as pd

    from mgc.audio import fit_length, load_audio
    from mgc.extract import clip_samples, extract_embeddings

    _set_threads(threads)
    extractor = _load_ours(model, weights, device)
    frame = pd.DataFrame(tracks, columns=["track_id", "path"])
    group = {} if rows_per_group is None else {"rows_per_group": rows_per_group}
    n_samples = clip_samples("full", clip_seconds, extractor.sample_rate)
    warm_up = fit_length(load_audio(raw_dir / tracks[0][1], extractor.sample_rate), n_samples)
    for _ in range(2):      # TorchScript profiles a frozen graph's first runs per batch shape
        extractor.embed(np.repeat(warm_up[None], batch_size, axis=0))
    probe = matmul_gflops(PROBE_N)
    start = time.perf_counter()
    report = extract_embeddings(
        frame, raw_dir, extractor, out_path, n_samples=n_samples,
        metadata={**extractor.describe(), "clip": "full"}, batch_size=batch_size,
        progress=False, **group)
    seconds = time.perf_counter() - start
    if report.n_embedded != len(tracks) or report.skipped:
        raise RuntimeError(f"{model}: embedded {report.n_embedded} of {len(tracks)} clips, "
                           f"skipped {report.skipped}")
    decode_workers = inspect.signature(extract_embeddings).parameters["decode_workers"].default
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "decode_workers": decode_workers,
            "matmul_gflops_at_start": probe}


def _reference_job(model: str, weights: Path, paths: list[Path], threads: int) -> dict[str, Any]:
    """The reference path, one clip at a time, timed from the loaded and warmed-up model to
    the last vector."""
    _set_threads(threads)
    reference = REFERENCES[model](weights)
    reference.embed_file(paths[0])
    probe = matmul_gflops(PROBE_N)
    start = time.perf_counter()
    vectors = [reference.embed_file(path) for path in paths]
    seconds = time.perf_counter() - start
    if any(not np.isfinite(v).all() for v in vectors):
        raise RuntimeError(f"{model}: the reference path produced non-finite embeddings")
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "matmul_gflops_at_start": probe}


# --- the parent: corpus, orchestration, summary ----------------------------------------------

def in_subprocess(job: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `job(*args)` in a fresh spawned interpreter and return its result."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(job, *args).result()


def render_corpus(raw_dir: Path, n_clips: int, clip_seconds: float,
                  distinct_clips: int | None = None) -> list[tuple[str, str]]:
    """Write `n_clips` synthetic clips in GTZAN's layout; return (track_id, relative path).

    With `distinct_clips`, only that many are rendered and the other files are copies of
    them: enough for a memory run, where what is in the files does not matter."""
    import shutil

    import soundfile

    from mgc.datasets.synth import GTZAN_GENRES, render_clip

    tracks: list[tuple[str, str]] = []
    for index in range(n_clips):
        genre = GTZAN_GENRES[index % len(GTZAN_GENRES)]
        track_id = f"{genre}.{index // len(GTZAN_GENRES):05d}"
        relative = Path("genres") / genre / f"{track_id}.au"
        (raw_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        if distinct_clips is not None and index >= distinct_clips:
            shutil.copyfile(raw_dir / tracks[index % distinct_clips][1], raw_dir / relative)
        else:
            wave = render_clip(genre, clip_seconds, CORPUS_RATE_HZ, seed=SEED * 1_000_003 + index)
            soundfile.write(raw_dir / relative, wave, CORPUS_RATE_HZ, format="AU",
                            subtype="PCM_16")
        tracks.append((track_id, str(relative)))
    return tracks


def _path_summary(run: dict[str, Any], n_clips: int, gflop_per_clip: float) -> dict[str, Any]:
    """Per-clip figures of one timed run (roofline fractions come once every probe is in)."""
    s_per_clip = run["seconds"] / n_clips
    return {**run, "s_per_clip": s_per_clip, "rtf": CLIP_SECONDS / s_per_clip,
            "gflop_per_clip": gflop_per_clip, "gflops": gflop_per_clip / s_per_clip}


def _timed_runs(models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [run for result in models.values()
            for run in (*result["ours"]["by_batch_size"].values(), result["reference"])]


def add_roofline(roofline: dict[str, Any], models: dict[str, dict[str, Any]]) -> None:
    """Take the fastest matmul rate seen in the run as the roofline, and put every timed run
    against it (`roofline_fraction`) and against the fastest probe of all
    (`best_probe_fraction`): oneDNN's convolutions can beat MKL's sgemm, which takes its
    AVX2 path on AMD CPUs."""
    runs = _timed_runs(models)
    roofline["matmul_gflops_probe_job"] = roofline["matmul_gflops"]
    roofline["matmul_gflops"] = max(roofline["matmul_gflops"],
                                    *(run["matmul_gflops_at_start"] for run in runs))
    roofline["best_probe_gflops"] = max(roofline["matmul_gflops"], roofline["conv_gflops"],
                                        roofline["conv_channels_last_gflops"])
    for run in runs:
        run["roofline_fraction"] = run["gflops"] / roofline["matmul_gflops"]
        run["best_probe_fraction"] = run["gflops"] / roofline["best_probe_gflops"]
    for result in models.values():
        result["ours"].update(result["ours"]["by_batch_size"][str(result["ours"]["batch_size"])])


def benchmark_model(model: str, check: dict[str, Any], root: Path, tracks: list[tuple[str, str]],
                    args: argparse.Namespace) -> dict[str, Any]:
    """Time our path at each batch size and the reference path, each in its own process."""
    weights = root / "weights" / f"{model}.pth"
    raw_dir = root / "corpus"
    by_batch = {}
    for batch_size in args.batch_sizes:
        _progress(f"{model}: our path, batch {batch_size}, {len(tracks)} clips")
        out_path = root / "out" / f"{model}-{batch_size}.parquet"
        run = in_subprocess(_ours_job, model, str(weights), raw_dir, tracks, CLIP_SECONDS,
                            batch_size, args.threads, out_path, None, args.device)
        by_batch[batch_size] = _path_summary(run, len(tracks), check["ours_gflop_per_clip"])
    best_batch = min(by_batch, key=lambda b: by_batch[b]["s_per_clip"])
    _progress(f"{model}: reference path, one clip at a time")
    reference = in_subprocess(_reference_job, model, weights,
                              [raw_dir / path for _, path in tracks], args.threads)
    reference_summary = _path_summary(reference, len(tracks), check["reference_gflop_per_clip"])
    ours = {**by_batch[best_batch], "batch_size": best_batch,
            "by_batch_size": {str(b): summary for b, summary in by_batch.items()}}
    return {**{key: check[key] for key in ("sample_rate", "dim", "max_abs_diff",
                                           "max_abs_embedding", "identity_clips")},
            "speedup": reference_summary["s_per_clip"] / ours["s_per_clip"],
            "ours": ours, "reference": {**reference_summary, "recipe": REFERENCE_RECIPES[model]}}


def measure_memory(root: Path, scale: str, threads: int) -> dict[str, Any]:
    """Peak RSS of our path on a corpus and on one ten times larger, each in its own process."""
    small, large, rows_per_group = MEMORY_SCALES[scale]
    _progress(f"memory: writing {large} clips of {MEMORY_CLIP_SECONDS:g} s")
    tracks = render_corpus(root / "corpus", large, MEMORY_CLIP_SECONDS, distinct_clips=10)
    runs = {}
    for n_clips in (small, large):
        _progress(f"memory: {MEMORY_MODEL} (random weights) on {n_clips} clips")
        runs[n_clips] = in_subprocess(_ours_job, MEMORY_MODEL, "random", root / "corpus",
                                      tracks[:n_clips], MEMORY_CLIP_SECONDS, 8, threads,
                                      root / f"out-{n_clips}.parquet", rows_per_group)
    return {"extractor": MEMORY_MODEL, "weights": "random", "clip_seconds": MEMORY_CLIP_SECONDS,
            "batch_size": 8, "rows_per_group": rows_per_group, "scale": scale,
            "small": {"clips": small, "peak_rss_mb": runs[small]["peak_rss_mb"]},
            "large": {"clips": large, "peak_rss_mb": runs[large]["peak_rss_mb"]},
            "ratio": runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"],
            "goal": "ratio below 1.10"}


def machine_info(threads: int, device: str) -> dict[str, Any]:
    from mgc.extractors.neural import resolve_device

    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu_model = next((line.split(":", 1)[1].strip() for line in
                          cpuinfo.read_text().splitlines() if line.startswith("model name")), "")
    return {"cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model, "torch_threads": threads,
            "device": str(resolve_device(device)),
            "torch_version": version("torch"), "python_version": platform.python_version(),
            "platform": platform.platform(), "load_average_at_start": list(os.getloadavg())}


def format_table(models: dict[str, dict[str, Any]]) -> str:
    header = (f"{'model':<7} {'ours s/clip':>11} {'ref s/clip':>10} {'speedup':>7} "
              f"{'RTF ours':>8} {'RTF ref':>7} {'GFLOP/s ours':>12} {'GFLOP/s ref':>11} "
              f"{'roof ours':>9} {'roof ref':>8} {'RSS ours MB':>11} {'RSS ref MB':>10} "
              f"{'max|diff|':>9}")
    rows = [header, "-" * len(header)]
    for name, m in models.items():
        ours, ref = m["ours"], m["reference"]
        rows.append(
            f"{name:<7} {ours['s_per_clip']:>11.3f} {ref['s_per_clip']:>10.3f} "
            f"{m['speedup']:>6.2f}x {ours['rtf']:>8.1f} {ref['rtf']:>7.1f} "
            f"{ours['gflops']:>12.1f} {ref['gflops']:>11.1f} "
            f"{ours['roofline_fraction']:>9.1%} {ref['roofline_fraction']:>8.1%} "
            f"{ours['peak_rss_mb']:>11.0f} {ref['peak_rss_mb']:>10.0f} {m['max_abs_diff']:>9.1e}")
    return "\n".join(rows)


def check_identity(models: dict[str, dict[str, Any]]) -> None:
    """Exit with the offending models if any max abs difference is not below TOLERANCE (NaN
    included): a faster path that computes something else is not a result."""
    wrong = {m: r["max_abs_diff"] for m, r in models.items() if not r["max_abs_diff"] < TOLERANCE}
    if wrong:
        raise SystemExit(f"embeddings differ from the reference by >= {TOLERANCE}: {wrong}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8, help="30 s clips to extract (default 8)")
    parser.add_argument("--models", nargs="+", choices=NEURAL_MODELS, default=list(NEURAL_MODELS))
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads in every path (default: all usable cores)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8],
                        help="batch sizes to try on our path; the fastest is reported")
    parser.add_argument("--memory-scale", choices=tuple(MEMORY_SCALES), default="small",
                        help="small: 20 vs 200 clips of 3 s; full: 100 vs 1000")
    parser.add_argument("--device", default="cpu",
                        help="our path's device: cpu (default), cuda or auto; the reference "
                             "paths and the roofline are always CPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract.json"))
    args = parser.parse_args(argv)
    if args.clips < 1 or args.threads < 1 or min(args.batch_sizes) < 1:
        parser.error("--clips, --threads and --batch-sizes must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON; exit non-zero if our embeddings
    differ from the reference's by TOLERANCE or more (the JSON is written first, as evidence)."""
    from mgc.atomic import write_json

    args = parse_args(argv)
    machine = machine_info(args.threads, args.device)
    with tempfile.TemporaryDirectory(prefix="mgc-bench-extract-") as temp:
        root = Path(temp)
        _progress(f"rendering {args.clips} clips of {CLIP_SECONDS:g} s at {CORPUS_RATE_HZ} Hz")
        tracks = render_corpus(root / "corpus", args.clips, CLIP_SECONDS)
        identity_paths = [root / "corpus" / path for _, path in tracks[:IDENTITY_CLIPS]]
        _progress("weights, identity checks, FLOP counts and roofline")
        checks = in_subprocess(_check_job, args.models, root / "weights", identity_paths,
                               args.threads, args.device)
        models = {model: benchmark_model(model, checks["models"][model], root, tracks, args)
                  for model in args.models}
        memory = measure_memory(root / "memory", args.memory_scale, args.threads)
    machine["load_average_at_end"] = list(os.getloadavg())
    add_roofline(checks["roofline"], models)
    results = {"machine": machine,
               "setup": {"clips": args.clips, "clip_seconds": CLIP_SECONDS,
                         "corpus": f"GTZAN-like .au, {CORPUS_RATE_HZ} Hz mono PCM_16 "
                                   "(mgc.datasets.synth.render_clip)",
                         "batch_sizes": args.batch_sizes, "weights": f"random, seed {SEED}",
                         "tolerance": TOLERANCE,
                         "timing": "wall clock from the loaded model to the last vector "
                                   "(ours: to the final Parquet file), decode included, after "
                                   "one untimed warm-up clip on each path (numba JIT of "
                                   "resampy, lazy imports, oneDNN set-up)",
                         "gflops": "each path's own torch FLOPs per clip (FlopCounterMode) / "
                                   "its s per clip; roofline_fraction = that / matmul "
                                   "GFLOP/s, best_probe_fraction = that / the fastest probe"},
               "roofline": checks["roofline"], "models": models, "memory": memory}
    write_json(args.out, results)
    print(format_table(models))
    roofline = checks["roofline"]
    probes = [run["matmul_gflops_at_start"] for run in _timed_runs(models)]
    print(f"roofline: matmul {roofline['matmul_gflops']:.0f} GFLOP/s (probes before the timed "
          f"runs: {min(probes):.0f}-{max(probes):.0f}), conv 3x3 {roofline['conv_gflops']:.0f} "
          f"GFLOP/s (channels_last {roofline['conv_channels_last_gflops']:.0f})")
    print(f"memory: peak RSS {memory['small']['peak_rss_mb']:.0f} MB on "
          f"{memory['small']['clips']} clips, {memory['large']['peak_rss_mb']:.0f} MB on "
          f"{memory['large']['clips']} (x{memory['ratio']:.3f})")
    print(f"wrote {args.out}")
    check_identity(models)
    return results


if __name__ == "__main__":
    main()
