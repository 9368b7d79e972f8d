"""mgc.statistics against hand-computed values and constructed data whose answer is known:
per-track scores, the bootstrap interval of an accuracy, the paired bootstrap test (checked
against exhaustive enumeration of every resample), the exact McNemar test, variance
components, the two-level bootstrap and the seed permutation test (calibrated on pure
training noise, where the track-only test is not; a real effect found), the minimum
detectable difference and the seeds it takes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mgc.statistics import (
    MCNEMAR,
    SEED_PERMUTATION,
    VarianceComponents,
    bootstrap_interval,
    compare_configurations,
    difference_standard_error,
    mcnemar_exact,
    minimum_detectable_difference,
    paired_bootstrap,
    per_track_correct,
    seed_permutation,
    seeds_needed,
    two_level_bootstrap,
    variance_components,
)


def test_per_track_correct_is_the_fraction_of_seeds_right() -> None:
    y = np.array([0, 1, 2])
    predictions = np.array([[0, 1, 0], [0, 0, 2]])  # two seeds
    np.testing.assert_allclose(per_track_correct(y, predictions), [1.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="seeds"):
        per_track_correct(y, np.array([[0, 1]]))


def test_bootstrap_interval_matches_the_binomial_interval_on_many_tracks() -> None:
    correct = np.array([1.0] * 320 + [0.0] * 80)  # 80 % of 400 tracks
    low, high = bootstrap_interval(correct)
    half_width = 1.96 * math.sqrt(0.8 * 0.2 / 400)  # normal approximation: 3.9 points
    assert low == pytest.approx(0.8 - half_width, abs=0.006)
    assert high == pytest.approx(0.8 + half_width, abs=0.006)


def test_bootstrap_interval_of_a_constant_score_is_that_score() -> None:
    assert bootstrap_interval(np.ones(12)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="no tracks"):
        bootstrap_interval(np.array([]))


def _exact_paired_p(a: np.ndarray, b: np.ndarray) -> float:
    """Every one of the n^n equally likely resamples of n tracks, enumerated."""
    delta = b - a
    means = np.array([delta[list(draw)].mean()
                      for draw in itertools.product(range(len(delta)), repeat=len(delta))])
    return min(1.0, 2 * min(np.mean(means <= 0), np.mean(means >= 0)))


@pytest.mark.parametrize(("a", "b"), [
    ([0, 0, 1, 1], [1, 1, 1, 1]),            # P(all four draws from the ties) = 1/16: p = 1/8
    ([0, 1, 1, 0, 1], [1, 1, 0, 1, 1]),      # mixed signs
    ([0.2, 0.6, 1.0, 0.4], [0.6, 0.6, 0.8, 1.0]),  # seed-averaged scores
])
def test_paired_bootstrap_p_value_matches_exhaustive_enumeration(a: list[float],
                                                                 b: list[float]) -> None:
    a_, b_ = np.array(a, dtype=float), np.array(b, dtype=float)
    result = paired_bootstrap(a_, b_, resamples=40_000)
    assert result.p_value == pytest.approx(_exact_paired_p(a_, b_), abs=0.01)
    assert result.difference == pytest.approx(np.mean(b_) - np.mean(a_))
    assert result.low <= result.difference <= result.high


def test_paired_bootstrap_extremes() -> None:
    same = paired_bootstrap(np.array([1, 0, 1.0]), np.array([1, 0, 1.0]))
    assert (same.difference, same.p_value) == (0.0, 1.0)
    better = paired_bootstrap(np.zeros(30), np.ones(30), resamples=1000)
    assert better.difference == 1.0 and better.p_value == 2 / 1000  # never exactly 0
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap(np.zeros(3), np.zeros(4))


def test_mcnemar_exact_matches_the_binomial_by_hand() -> None:
    # 9 tracks only B gets right, 1 only A gets right, 5 both: p = 2 * P(X <= 1 | 10, 1/2)
    a = np.array([1] * 5 + [1] + [0] * 9, dtype=bool)
    b = np.array([1] * 5 + [0] + [1] * 9, dtype=bool)
    assert mcnemar_exact(a, b) == pytest.approx(2 * (1 + 10) / 2**10)
    assert mcnemar_exact(a, a) == 1.0


def test_variance_components_of_an_additive_table_have_no_residual() -> None:
    seed_effects, track_effects = np.array([0.0, 0.1, 0.3]), np.linspace(0, 1, 8)
    components = variance_components(seed_effects[:, None] + track_effects[None, :])
    assert components.residual == pytest.approx(0, abs=1e-12)
    assert components.seed == pytest.approx(np.var(seed_effects, ddof=1))
    assert components.track == pytest.approx(np.var(track_effects, ddof=1))
    with pytest.raises(ValueError, match="2 seeds"):
        variance_components(np.ones((1, 5)))


def _training_noise(rng: np.random.Generator, seeds: int, tracks: int,
                    seed_sd: float = 0.6, cell_sd: float = 0.5,
                    shift: float = 0.0) -> np.ndarray:
    """Right/wrong of `seeds` trainings on `tracks` fixed tracks: each track its own
    difficulty (shared by every configuration, drawn once per generator state), each seed
    a shift of every track at once (training noise), each cell a little more."""
    difficulty = np.random.default_rng(7).normal(1.0, 1.5, tracks)
    logits = difficulty + shift + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(
        0, cell_sd, (seeds, tracks))
    return (rng.random((seeds, tracks)) < 1 / (1 + np.exp(-logits))).astype(float)


def test_variance_components_recover_a_known_seed_effect() -> None:
    rng = np.random.default_rng(0)
    strong = variance_components(_training_noise(rng, 200, 400, seed_sd=0.8))
    none = variance_components(_training_noise(rng, 200, 400, seed_sd=0.0))
    assert strong.seed > 20 * max(none.seed, 1e-5)
    assert strong.track > 0.02 and none.track > 0.02


def test_on_pure_training_noise_only_the_track_only_test_calls_differences() -> None:
    """A/A on constructed data: two configurations that are the same training, 5 seeds
    each. The track-only bootstrap of seed-averaged tracks rejects far more often than 5 %;
    the tests that resample seeds stay at or under it."""
    rng = np.random.default_rng(1)
    rejected = {"track": 0, "two_level": 0, "permutation": 0}
    pairs = 150
    for _ in range(pairs):
        a, b = _training_noise(rng, 5, 60), _training_noise(rng, 5, 60)
        rejected["track"] += paired_bootstrap(a.mean(0), b.mean(0), resamples=2000).p_value < 0.05
        rejected["two_level"] += two_level_bootstrap(a, b, resamples=2000).p_value < 0.05
        rejected["permutation"] += seed_permutation(a, b) < 0.05
    rates = {test: count / pairs for test, count in rejected.items()}
    assert rates["track"] > 0.15
    assert rates["two_level"] <= 0.08 and rates["permutation"] <= 0.08


def test_a_real_effect_is_found_by_both_seed_aware_tests() -> None:
    rng = np.random.default_rng(2)
    a = _training_noise(rng, 8, 300, seed_sd=0.2)
    b = _training_noise(rng, 8, 300, seed_sd=0.2, shift=1.0)
    assert b.mean() - a.mean() > 0.08
    assert two_level_bootstrap(a, b, resamples=4000).p_value < 0.01
    assert seed_permutation(a, b) < 0.01
    result = compare_configurations(a, b, resamples=4000)
    assert result.test == SEED_PERMUTATION and result.low > 0
    assert 0 < result.minimum_detectable < result.difference


def test_seed_permutation_is_exact_by_hand() -> None:
    # seed accuracies A 0.5, 0.6 and B 0.8, 0.9: of the 6 splits of the four, two are as far
    # apart as the observed one ({0.5, 0.6} vs {0.8, 0.9} and its mirror)
    a = np.array([[1] * 5 + [0] * 5, [1] * 6 + [0] * 4], dtype=float)
    b = np.array([[1] * 8 + [0] * 2, [1] * 9 + [0] * 1], dtype=float)
    assert seed_permutation(a, b) == pytest.approx(2 / 6)
    assert seed_permutation(a, a) == 1.0


def test_two_level_bootstrap_of_identical_runs_is_zero_with_a_symmetric_interval() -> None:
    rng = np.random.default_rng(3)
    a = _training_noise(rng, 4, 50)
    same = two_level_bootstrap(a, a.copy(), resamples=2000)
    assert same.difference == 0.0 and same.low < 0 < same.high and same.p_value > 0.5
    with pytest.raises(ValueError, match="same tracks"):
        two_level_bootstrap(a, a[:, :10])


def test_minimum_detectable_difference_and_seeds_needed_by_hand() -> None:
    assert minimum_detectable_difference(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    components = VarianceComponents(seed=0.0004, track=0.05, residual=0.1, seeds=40, tracks=40)
    # per seed and configuration 0.0004 + 0.1 / 200 = 0.0009; (0.02 / 2.8016)^2 = 5.096e-5
    assert seeds_needed(components, 200, 0.02) == math.ceil(2 * 0.0009 / (0.02 / 2.801585) ** 2)
    assert seeds_needed(components, 200, 0.02) == 36
    # the configuration x track term alone is (2.8 * sqrt(0.05 / 200))^2 > 0.02^2: hopeless
    assert seeds_needed(components, 200, 0.02, track_difference=0.05) is None
    assert seeds_needed(components, 1600, 0.02, track_difference=0.05) is not None
    assert seeds_needed(components, 200, 0.5) == 2


def test_standard_error_matches_the_spread_of_simulated_differences() -> None:
    rng = np.random.default_rng(4)
    differences, errors = [], []
    for _ in range(300):
        a, b = _training_noise(rng, 5, 80), _training_noise(rng, 5, 80)
        differences.append(b.mean() - a.mean())
        errors.append(difference_standard_error(a, b))
    assert np.mean(errors) == pytest.approx(np.std(differences), rel=0.25)


def test_one_seed_each_falls_back_to_mcnemar_without_a_detectable_difference() -> None:
    a = np.array([[1, 1, 0, 0, 1, 0]], dtype=float)
    b = np.array([[1, 1, 1, 1, 1, 0]], dtype=float)
    result = compare_configurations(a, b)
    assert result.test == MCNEMAR
    assert result.p_value == pytest.approx(mcnemar_exact(a[0] == 1, b[0] == 1))
    assert math.isnan(result.minimum_detectable)
    with pytest.raises(ValueError, match="seeds, tracks"):
        compare_configurations(np.ones(3), np.ones(3))
