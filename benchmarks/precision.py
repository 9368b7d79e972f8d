"""Reduced precision against fp32: what `precision: bf16` costs in accuracy and gains in speed.

On the default run's corpus (synth_gtzan: 20 clips of 8 s per GTZAN genre, rendered with the
seeds its archive uses, the corrupt jazz clip left out), each extractor embeds every clip
in fp32 and in bf16 (random weights and options as the default run has them: VGGish
without its PCA), a linear probe (standardised
features, logistic regression) is trained on the same stratified 80 % of the clips and
scored on the other 20 %: test accuracy with its 95 % bootstrap interval per precision, the
paired bootstrap of the difference, and how far the embeddings moved (cosine, max abs
difference). Speed is CPU time per clip in one process, the two precisions alternating.

    python -m benchmarks.precision [--models byola panns vggish] [--threads N]
        [--out benchmarks/results/precision.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

PRECISIONS = ("fp32", "bf16")
CLIPS_PER_GENRE = 20
CLIP_SECONDS = 8.0
SPLIT_SEED = 42
TEST_FRACTION = 0.2
TIMING_ROUNDS = 3


def default_corpus() -> tuple[np.ndarray, list[str]]:
    """synth_gtzan's clips as its archive renders them ((clips, samples) at 22,050 Hz) and
    their genres."""
    from mgc.datasets.synthesis import GTZAN_GENRES, GTZAN_RATE_HZ, render_clip

    waves, labels = [], []
    for genre_index, genre in enumerate(GTZAN_GENRES):
        for clip_index in range(CLIPS_PER_GENRE):
            if genre == "jazz" and clip_index == 0:      # the corrupt track
                continue
            waves.append(render_clip(genre, CLIP_SECONDS, GTZAN_RATE_HZ,
                                     genre_index * 10_007 + clip_index))
            labels.append(genre)
    return np.stack(waves).astype(np.float32), labels


def probe(train: np.ndarray, train_labels: list[str], test: np.ndarray,
          test_labels: list[str]) -> np.ndarray:
    """Right (1) or wrong (0) per test clip of a linear probe trained on `train`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    classifier.fit(train, train_labels)
    return (classifier.predict(test) == np.asarray(test_labels)).astype(float)


def compare(model: str, corpus: np.ndarray, labels: list[str], threads: int) -> dict[str, Any]:
    import soxr
    import torch
    from sklearn.model_selection import train_test_split

    from benchmarks.harness import OPTIONS
    from mgc import extractors
    from mgc.datasets.synthesis import GTZAN_RATE_HZ
    from mgc.statistics import bootstrap_interval, paired_bootstrap

    torch.set_num_threads(threads)
    loaded = {precision: extractors.load(model, weights="random", device="cpu",
                                         precision=precision, **OPTIONS[model])
              for precision in PRECISIONS}
    rate = loaded["fp32"].sample_rate
    waves = np.stack([soxr.resample(wave, GTZAN_RATE_HZ, rate) for wave in corpus])
    vectors = {precision: extractor.embed(waves) for precision, extractor in loaded.items()}
    cpu_seconds: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
    for round_index in range(TIMING_ROUNDS):
        for precision in PRECISIONS if round_index % 2 == 0 else PRECISIONS[::-1]:
            start = time.process_time()
            loaded[precision].embed(waves[:16])
            cpu_seconds[precision].append((time.process_time() - start) / 16)
    indices = np.arange(len(labels))
    train, test = train_test_split(indices, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=labels)
    correct = {precision: probe(v[train], [labels[i] for i in train], v[test],
                                [labels[i] for i in test]) for precision, v in vectors.items()}
    fp32, bf16 = vectors["fp32"], vectors["bf16"]
    cosine = (fp32 * bf16).sum(axis=1) / (np.linalg.norm(fp32, axis=1)
                                          * np.linalg.norm(bf16, axis=1))
    difference = paired_bootstrap(correct["fp32"], correct["bf16"])
    best = {precision: min(seconds) for precision, seconds in cpu_seconds.items()}
    return {
        "accuracy": {precision: {"value": float(c.mean()),
                                 "interval": list(bootstrap_interval(c))}
                     for precision, c in correct.items()},
        "bf16_minus_fp32": {"difference": difference.difference,
                            "interval": [difference.low, difference.high],
                            "p_value": difference.p_value},
        "embeddings": {"min_cosine": float(cosine.min()),
                       "max_abs_diff": float(np.abs(fp32 - bf16).max()),
                       "max_abs_fp32": float(np.abs(fp32).max())},
        "cpu_s_per_clip": best, "speedup": best["fp32"] / best["bf16"],
        "test_clips": len(test), "train_clips": len(train)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from mgc.atomic import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["byola", "panns", "vggish"])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precision.json"))
    args = parser.parse_args(argv)
    corpus, labels = default_corpus()
    results = {"setup": {"corpus": f"synth_gtzan as the default run renders it, {len(labels)} "
                                   f"clips of {CLIP_SECONDS:g} s", "weights": "random",
                         "probe": "StandardScaler + LogisticRegression, stratified "
                                  f"{1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} split, seed "
                                  f"{SPLIT_SEED}; 95 % percentile bootstrap intervals",
                         "threads": args.threads,
                         "load_average_at_start": list(os.getloadavg())},
               "models": {model: compare(model, corpus, labels, args.threads)
                          for model in args.models}}
    results["setup"]["load_average_at_end"] = list(os.getloadavg())
    write_json(args.out, results)
    for model, result in results["models"].items():
        accuracy, delta = result["accuracy"], result["bf16_minus_fp32"]
        print(f"{model}: fp32 {accuracy['fp32']['value']:.3f} "
              f"[{accuracy['fp32']['interval'][0]:.3f}, {accuracy['fp32']['interval'][1]:.3f}], "
              f"bf16 {accuracy['bf16']['value']:.3f} [{accuracy['bf16']['interval'][0]:.3f}, "
              f"{accuracy['bf16']['interval'][1]:.3f}], difference {delta['difference']:+.3f} "
              f"[{delta['interval'][0]:+.3f}, {delta['interval'][1]:+.3f}]; min cosine "
              f"{result['embeddings']['min_cosine']:.5f}; bf16 {result['speedup']:.2f}x the "
              "speed of fp32")
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
