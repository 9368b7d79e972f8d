"""mgc.calibration: the A/A study counts each test's calls on pairs of disjoint seed sets of
one configuration (pure training noise: the track-only test calls too many, the seed-aware
tests do not), runs each test only where it applies, and the power table agrees with
mgc.statistics.seeds_needed."""

from __future__ import annotations

import numpy as np
import pytest

from mgc.calibration import AADesign, aa_study, disjoint_seed_pairs, power_table
from mgc.config import ConfigError, build
from mgc.statistics import seeds_needed, variance_components


def _one_configuration(seeds: int, tracks: int, seed: int) -> np.ndarray:
    """One configuration trained `seeds` times: each seed shifts every track together."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(1.0, 1.5, tracks) + rng.normal(0, 0.6, (seeds, 1)) + rng.normal(
        0, 0.4, (seeds, tracks))
    return (rng.random((seeds, tracks)) < 1 / (1 + np.exp(-logits))).astype(float)


def test_pairs_are_disjoint_seed_sets() -> None:
    pairs = disjoint_seed_pairs(12, 5, 20, np.random.default_rng(0))
    assert len(pairs) == 20
    for first, second in pairs:
        assert len(first) == len(second) == 5 and not set(first) & set(second)
    with pytest.raises(ValueError, match="need 12 seeds"):
        disjoint_seed_pairs(11, 6, 1, np.random.default_rng(0))


def test_aa_study_finds_the_track_only_test_too_eager_and_the_seed_tests_calibrated() -> None:
    tables = {"a/mfcc": _one_configuration(30, 60, 1), "b/mfcc": _one_configuration(30, 60, 2)}
    study = aa_study(tables, seeds_per_set=[1, 5], pairs=60)
    tests = study["tests"]
    assert set(tests) == {"mcnemar", "track_bootstrap", "two_level_bootstrap",
                          "seed_permutation"}
    assert set(tests["mcnemar"]["by_seeds_per_set"]) == {"1"}
    assert set(tests["seed_permutation"]["by_seeds_per_set"]) == {"5"}
    assert tests["track_bootstrap"]["pairs"] == 2 * 2 * 60
    assert tests["track_bootstrap"]["by_seeds_per_set"]["5"]["false_positive_rate"] > 0.15
    for name in ("two_level_bootstrap", "seed_permutation"):
        assert tests[name]["false_positive_rate"] <= 0.08
        low, high = tests[name]["wilson95"]
        assert low <= tests[name]["false_positive_rate"] <= high
    assert study["tables"]["a/mfcc"] == {"seeds": 30, "tracks": 60}


def test_power_table_uses_the_variance_components_of_each_table() -> None:
    table = _one_configuration(20, 40, 3)
    power = power_table({"a/mfcc": table}, [200, 1600], 0.02, seeds=5)["by_table"]["a/mfcc"]
    components = variance_components(table)
    assert power["seeds_needed"] == {str(t): seeds_needed(components, t, 0.02)
                                     for t in (200, 1600)}
    assert power["seed_accuracy_sd"] == pytest.approx(
        np.sqrt(components.seed_accuracy_variance()))
    assert power["minimum_detectable_at_5_seeds"] > 0


def test_a_design_refuses_what_cannot_be_drawn() -> None:
    good = {"seeds_per_set": [1, 5], "pairs": 10, "test_tracks": [200], "difference": 0.02,
            "seed": 0}
    assert build(AADesign, good, "calibration").pairs == 10
    with pytest.raises(ConfigError, match=r"calibration\.seeds_per_set"):
        build(AADesign, {**good, "seeds_per_set": [0]}, "calibration")
    with pytest.raises(ConfigError, match=r"calibration\.pairs"):
        build(AADesign, {**good, "pairs": 0}, "calibration")
