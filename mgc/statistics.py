"""How far a test-set accuracy can be trusted, and when two configurations differ.

An accuracy has two sources of noise: the test tracks (another test set of the same size
would move it) and training (another seed would). The interval of one accuracy resamples
tracks, with seeds averaged per track first (`per_track_correct`): on 200 test tracks (the
paper's GTZAN split) a 95 % interval around 80 % is about +-5.5 points wide, which no mean
+- std over seeds shows.

A comparison of two configurations must resample both. The track-only tests
(`paired_bootstrap` over seed-averaged tracks, `mcnemar_exact` with one seed each) treat
the trained models as fixed, so two runs that differ only in training noise are called
different far more often than their level says (the A/A study, `mgc.calibration`, measures
how often). `two_level_bootstrap` resamples seeds within each configuration and tracks
jointly (the test set is shared), `seed_permutation` exchanges seeds between the two
configurations, and `compare_configurations` gives the difference with its interval,
p-value and the smallest difference the design could detect (`minimum_detectable_difference`,
from the variance components of `variance_components`). On the default corpus the A/A
study finds the permutation test at or under 5 % and the two-level bootstrap far under it
(it counts the seed x track interaction twice), so the permutation test gives the p-value
and the bootstrap the interval.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
SIGNIFICANCE = 0.05
POWER = 0.80


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

    Track-only: with seeds averaged per track, the trained models are taken as fixed, so
    training noise is not part of the test (`two_level_bootstrap` resamples seeds too).
    """
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired scores must be two equal-length 1-d arrays, got {a.shape} "
                         f"and {b.shape}")
    delta = b - a
    rng = np.random.default_rng(seed)
    means = delta[rng.integers(0, len(delta), size=(resamples, len(delta)))].mean(axis=1)
    return _percentile_test(float(delta.mean()), means, confidence, len(a))


def _percentile_test(observed: float, resampled: np.ndarray, confidence: float,
                     tracks: int) -> PairedComparison:
    """The percentile interval of resampled differences and its test of zero: the p-value
    is twice the smaller tail at zero (p < 1 - confidence exactly when the interval
    excludes 0), with at least one resample counted so it is never reported as exactly 0."""
    tail = min(np.sum(resampled <= 0), np.sum(resampled >= 0))
    p_value = min(1.0, 2 * max(tail, 1) / len(resampled))
    alpha = 1 - confidence
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    return PairedComparison(observed, float(low), float(high), float(p_value), tracks)


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


def _seed_table(correct: np.ndarray, name: str) -> np.ndarray:
    table = np.asarray(correct, dtype=float)
    if table.ndim != 2 or 0 in table.shape:
        raise ValueError(f"{name} must be a (seeds, tracks) table of per-seed scores, got "
                         f"shape {table.shape}")
    return table


def _seed_tables(correct_a: np.ndarray,
                 correct_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _seed_table(correct_a, "correct_a"), _seed_table(correct_b, "correct_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both configurations must be scored on the same tracks: "
                         f"{a.shape[1]} and {b.shape[1]} tracks")
    return a, b


@dataclass(frozen=True)
class VarianceComponents:
    """The variance of one seed's right/wrong on one track, split in three: `seed` (a seed
    moves every track together: training noise in the accuracy), `track` (some tracks are
    harder than others) and `residual` (seed x track interaction: this seed gets this track
    right, another seed another one)."""

    seed: float
    track: float
    residual: float
    seeds: int
    tracks: int

    def seed_accuracy_variance(self, tracks: int | None = None) -> float:
        """The variance of one seed's accuracy on `tracks` test tracks (default: these)."""
        return self.seed + self.residual / (tracks or self.tracks)


def variance_components(correct: np.ndarray) -> VarianceComponents:
    """Method-of-moments (ANOVA) estimates for the crossed random-effects model of a (seeds,
    tracks) table of right/wrong, y_st = mu + a_s + b_t + e_st:
    E[MS_seed] = s2_e + T s2_a, E[MS_track] = s2_e + S s2_b, E[MS_residual] = s2_e, with a
    negative estimate set to 0. Needs two seeds and two tracks."""
    y = _seed_table(correct, "correct")
    seeds, tracks = y.shape
    if seeds < 2 or tracks < 2:
        raise ValueError(f"variance components need 2 seeds and 2 tracks, got {y.shape}")
    grand, seed_means, track_means = y.mean(), y.mean(axis=1), y.mean(axis=0)
    ms_seed = tracks * np.sum((seed_means - grand) ** 2) / (seeds - 1)
    ms_track = seeds * np.sum((track_means - grand) ** 2) / (tracks - 1)
    interaction = y - seed_means[:, None] - track_means[None, :] + grand
    ms_residual = float(np.sum(interaction ** 2) / ((seeds - 1) * (tracks - 1)))
    return VarianceComponents(seed=max(0.0, float(ms_seed - ms_residual) / tracks),
                              track=max(0.0, float(ms_track - ms_residual) / seeds),
                              residual=ms_residual, seeds=seeds, tracks=tracks)


def track_difference_variance(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """s2_delta: the variance over tracks of the true per-track difference between two
    configurations (configuration x track interaction: what another test set would change
    in their difference), estimated as the variance of the per-track differences of seed
    means less its seed-sampling part, s2_e,A / S_A + s2_e,B / S_B; 0 when negative. An
    A/A pair's is 0 in expectation. Needs two seeds per configuration."""
    a, b = _seed_tables(correct_a, correct_b)
    sampling = sum(variance_components(t).residual / len(t) for t in (a, b))
    return max(0.0, float(np.var(b.mean(axis=0) - a.mean(axis=0), ddof=1)) - sampling)


def difference_standard_error(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """The standard error of the difference in mean accuracy of two configurations scored
    on the same T tracks, with both sources of noise:

        SE^2 = v_A / S_A + v_B / S_B + s2_delta / T

    v is the sample variance of one configuration's per-seed accuracies (training noise,
    seed x track interaction included), S its seeds, and s2_delta the configuration x track
    interaction (`track_difference_variance`). Needs two seeds per configuration."""
    a, b = _seed_tables(correct_a, correct_b)
    if min(len(a), len(b)) < 2:
        raise ValueError("the training noise needs 2 seeds per configuration, got "
                         f"{len(a)} and {len(b)}")
    seeds_part = sum(float(np.var(t.mean(axis=1), ddof=1)) / len(t) for t in (a, b))
    return math.sqrt(seeds_part + track_difference_variance(a, b) / a.shape[1])


def detection_factor(alpha: float = SIGNIFICANCE, power: float = POWER) -> float:
    """z_(1 - alpha/2) + z_power: 2.80 at alpha 0.05 and 80 % power."""
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def minimum_detectable_difference(standard_error: float, alpha: float = SIGNIFICANCE,
                                  power: float = POWER) -> float:
    """The smallest true difference a two-sided test at `alpha` finds with probability
    `power`, for a difference estimated with `standard_error` (normal approximation):
    MDD = (z_(1 - alpha/2) + z_power) x SE, i.e. 2.80 SE at 5 % and 80 % power."""
    return detection_factor(alpha, power) * standard_error


def seeds_needed(components: VarianceComponents, tracks: int, difference: float,
                 track_difference: float = 0.0, alpha: float = SIGNIFICANCE,
                 power: float = POWER) -> int | None:
    """Seeds per configuration for a comparison on `tracks` test tracks to detect a true
    `difference` (a fraction): the smallest S >= 2 with

        (z_(1 - alpha/2) + z_power) sqrt(2 (s2_a + s2_e / T) / S + s2_delta / T) <= difference,

    taking the seed (s2_a) and residual (s2_e) components of `components` as the training
    noise of both configurations, and `track_difference` as s2_delta (0: training noise
    alone, the A/A floor). None when the track term alone exceeds the budget: then no
    number of seeds resolves `difference`, only more test tracks."""
    budget = (difference / detection_factor(alpha, power)) ** 2 - track_difference / tracks
    if budget <= 0:
        return None
    return max(2, math.ceil(2 * components.seed_accuracy_variance(tracks) / budget))


def two_level_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray,
                        confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                        seed: int = 0) -> PairedComparison:
    """A bootstrap of the difference in mean accuracy (B minus A) that resamples both levels
    of noise: each configuration's seeds independently (training noise) and the test tracks
    jointly (the test set is shared, so a track drawn counts for both), every seed scored on
    every drawn track. `correct_a` and `correct_b` are (seeds, tracks) tables of right/wrong.

    Resampling a crossed design at both levels counts the seed x track interaction more
    than once (Owen 2007, "the pigeonhole bootstrap"), which errs on the wide side; with
    few seeds the seed level errs the other way (a bootstrap of S values has (S-1)/S of
    their variance). The A/A study (`mgc.calibration`) measures where the two leave it.
    """
    a, b = _seed_tables(correct_a, correct_b)
    rng = np.random.default_rng(seed)
    (seeds_a, tracks), seeds_b = a.shape, len(b)
    differences = np.empty(resamples)
    chunk = max(1, 2_000_000 // (tracks * max(seeds_a, seeds_b)))
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        draw_a = rng.multinomial(seeds_a, np.full(seeds_a, 1 / seeds_a), size=n)
        draw_b = rng.multinomial(seeds_b, np.full(seeds_b, 1 / seeds_b), size=n)
        draw_t = rng.multinomial(tracks, np.full(tracks, 1 / tracks), size=n)
        mean_a = np.einsum("rt,rt->r", draw_a @ a, draw_t) / (seeds_a * tracks)
        mean_b = np.einsum("rt,rt->r", draw_b @ b, draw_t) / (seeds_b * tracks)
        differences[start:start + n] = mean_b - mean_a
    return _percentile_test(float(b.mean() - a.mean()), differences, confidence, tracks)


def seed_permutation(correct_a: np.ndarray, correct_b: np.ndarray,
                     resamples: int = RESAMPLES, seed: int = 0) -> float:
    """The two-sided p-value of a permutation test over seeds: if the two configurations
    train the same models, their seeds are exchangeable (an A/A pair's are, by
    construction), so every split of the pooled seeds into groups of the two sizes is as
    likely as the observed one. The statistic is the difference in mean accuracy, which is
    the mean of the per-track differences since every seed is scored on the same tracks.
    Exact (every split) when there are at most `resamples` splits, else `resamples` random
    ones and the observed. Conditional on the test tracks: it measures training noise, not
    what another test set would change."""
    a, b = _seed_tables(correct_a, correct_b)
    accuracies = np.concatenate([a.mean(axis=1), b.mean(axis=1)])
    pooled, size_a = len(accuracies), len(a)
    observed = abs(accuracies[size_a:].mean() - accuracies[:size_a].mean())
    exact = math.comb(pooled, size_a) <= resamples
    if exact:
        groups = np.array(list(itertools.combinations(range(pooled), size_a)))
    else:
        rng = np.random.default_rng(seed)
        groups = np.argsort(rng.random((resamples, pooled)), axis=1)[:, :size_a]
    sum_a = accuracies[groups].sum(axis=1)
    differences = np.abs((accuracies.sum() - sum_a) / (pooled - size_a) - sum_a / size_a)
    extreme = int(np.sum(differences >= observed - 1e-12))
    return extreme / len(groups) if exact else (extreme + 1) / (resamples + 1)


@dataclass(frozen=True)
class ConfigurationComparison:
    """B minus A on the same tracks with the test the seeds allow (`compare_configurations`):
    the difference, its 95 % interval, the p-value, the standard error of the difference
    and the smallest difference the design detects (NaN with one seed: training noise is
    then not measured)."""

    difference: float
    low: float
    high: float
    p_value: float
    standard_error: float
    minimum_detectable: float
    tracks: int
    seeds_a: int
    seeds_b: int
    test: str


SEED_PERMUTATION, TRACK_BOOTSTRAP, MCNEMAR = "seed permutation", "track bootstrap", "McNemar"


def compare_configurations(correct_a: np.ndarray, correct_b: np.ndarray,
                           confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                           seed: int = 0) -> ConfigurationComparison:
    """Configuration B against A, both (seeds, tracks) tables of right/wrong on the same
    tracks, with the test the seeds allow.

    With two seeds or more on each side: the p-value of `seed_permutation` (exact if the two
    configurations train the same models; the A/A study finds it at or under its level, where
    the track-only tests are not), the 95 % interval of `two_level_bootstrap` (what other
    seeds and another test set of this size could give; wide, since it counts the seed x
    track interaction twice), and the minimum detectable difference of
    `difference_standard_error`. A permutation p-value cannot fall below 2 / C(S_A + S_B,
    S_A): four seeds a side are the fewest that can reach 5 %.

    With one seed on a side training noise cannot be measured and only a track-only test is
    possible: exact McNemar with one seed each, else the paired bootstrap over tracks; their
    detectable difference is NaN.
    """
    a, b = _seed_tables(correct_a, correct_b)
    if min(len(a), len(b)) >= 2:
        interval = two_level_bootstrap(a, b, confidence, resamples, seed)
        error = difference_standard_error(a, b)
        return ConfigurationComparison(interval.difference, interval.low, interval.high,
                                       seed_permutation(a, b, resamples, seed), error,
                                       minimum_detectable_difference(error, 1 - confidence),
                                       interval.tracks, len(a), len(b), SEED_PERMUTATION)
    result = paired_bootstrap(a.mean(axis=0), b.mean(axis=0), confidence, resamples, seed)
    if len(a) == len(b) == 1:
        p_value, test = mcnemar_exact(a[0] == 1, b[0] == 1), MCNEMAR
    else:
        p_value, test = result.p_value, TRACK_BOOTSTRAP
    return ConfigurationComparison(result.difference, result.low, result.high, p_value,
                                   float("nan"), float("nan"), result.tracks, len(a), len(b),
                                   test)
