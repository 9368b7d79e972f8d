"""How far a test-set accuracy can be trusted: a bootstrap interval over test tracks, and a
paired test of two configurations scored on the same tracks.

The unit of resampling is the test track, since tracks are what a different test set would
change; seeds are averaged per track first (`per_track_correct`), so the interval covers
the test-set noise of the mean-over-seeds accuracy, the number every table reports. On 200
test tracks (the paper's GTZAN split) a 95 % interval around 80 % is about +-5.5 points wide,
which no mean +- std over seeds shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000


def per_track_correct(y_true: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """The fraction of seeds that got each track right: `predictions` is (seeds, tracks) of
    class indices, `y_true` (tracks,). Its mean is the mean-over-seeds accuracy."""
    predictions = np.atleast_2d(predictions)
    if predictions.shape[1] != len(y_true) or len(y_true) == 0:
        raise ValueError(f"predictions {predictions.shape} must be (seeds, {len(y_true)}) "
                         "with at least one track")
    return (predictions == np.asarray(y_true)[None, :]).mean(axis=0)


def bootstrap_interval(correct: np.ndarray, confidence: float = CONFIDENCE,
                       resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-track scores (scipy.stats.bootstrap).

    A constant score (every track right, say) has no spread to resample: its interval is
    that value, where scipy would return NaN.
    """
    correct = np.asarray(correct, dtype=float)
    if len(correct) == 0:
        raise ValueError("no tracks to resample")
    if np.all(correct == correct[0]):
        return float(correct[0]), float(correct[0])
    result = stats.bootstrap((correct,), np.mean, confidence_level=confidence,
                             n_resamples=resamples, method="percentile",
                             random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class PairedComparison:
    """Configuration B minus A on the same tracks: the accuracy difference, its bootstrap
    interval and the two-sided p-value of "no difference"."""

    difference: float
    low: float
    high: float
    p_value: float
    tracks: int


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray,
                     confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                     seed: int = 0) -> PairedComparison:
    """A paired bootstrap test (Koehn 2004; Efron & Tibshirani's test of a mean difference):
    resample tracks, the same ones for both configurations, and see how often the
    difference of means falls on the other side of zero.

    The p-value is twice the smaller tail of the resampled differences at zero (the
    percentile-interval test: p < 1 - confidence exactly when the interval excludes 0),
    with at least one resample counted so it is never reported as exactly 0.
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired scores must be two equal-length 1-d arrays, got {a.shape} "
                         f"and {b.shape}")
    delta = b - a
    observed = float(delta.mean())
    rng = np.random.default_rng(seed)
    means = delta[rng.integers(0, len(delta), size=(resamples, len(delta)))].mean(axis=1)
    tail = min(np.sum(means <= 0), np.sum(means >= 0))
    p_value = min(1.0, 2 * max(tail, 1) / resamples)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return PairedComparison(observed, float(low), float(high), float(p_value), len(a))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """The exact McNemar test of two classifiers' right/wrong on the same tracks (one seed
    each): the binomial test of the discordant tracks, two-sided; 1.0 with none."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired results must have equal shapes, got {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
