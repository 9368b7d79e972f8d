"""mgc.statistics against hand-computed values: per-track scores, the bootstrap interval of an
accuracy, the paired bootstrap test (checked against exhaustive enumeration of every
resample) and the exact McNemar test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mgc.statistics import bootstrap_interval, mcnemar_exact, paired_bootstrap, per_track_correct


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
