"""The A/A study: how often each paired test calls two runs of one configuration different,
and how many seeds a comparison needs.

Two disjoint sets of seeds of the same configuration differ by training noise alone, so a
test at level 5 % may call at most 5 % of such pairs significant. Given one configuration
trained with many seeds (a (seeds, tracks) table of right/wrong per test set), `aa_study`
draws random pairs of disjoint seed sets and runs every test of `TESTS` on each: today's
track-only tests (`mcnemar` with one seed each, `track_bootstrap` over seed-averaged tracks)
and the two that resample seeds (`two_level_bootstrap`, `seed_permutation`). `power_table`
turns the same runs' variance components into the seeds a comparison needs to resolve a
difference on a test set of a given size (`mgc.statistics.seeds_needed`).

Library code: tables in, a JSON-ready mapping out (the `aa` study writes it to
`results/aa/calibration.json`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mgc.config import check_range, invalid
from mgc.statistics import (
    POWER,
    SIGNIFICANCE,
    mcnemar_exact,
    minimum_detectable_difference,
    paired_bootstrap,
    seed_permutation,
    seeds_needed,
    two_level_bootstrap,
    variance_components,
)

CALIBRATION_RESAMPLES = 2_000
"""Resamples per bootstrap in the study: p-values to 1/1000, ample for a 5 % threshold."""


@dataclass(frozen=True)
class AADesign:
    """How an A/A study is drawn and what its power estimate asks (a sweep's `calibration:`
    block): pairs of disjoint seed sets of each size in `seeds_per_set`, `pairs` of them per
    test set and size, drawn with `seed`; the seeds needed to resolve `difference` on each
    number of `test_tracks`."""

    seeds_per_set: tuple[int, ...] = (1, 5, 10)
    pairs: int = 100
    test_tracks: tuple[int, ...] = (200, 1600)
    difference: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.seeds_per_set or min(self.seeds_per_set) < 1:
            raise invalid("seeds_per_set", list(self.seeds_per_set),
                          "expected a non-empty list of positive seed counts")
        check_range("pairs", self.pairs, 1, 100_000)
        check_range("difference", self.difference, 1e-6, 1.0)


@dataclass(frozen=True)
class PairTest:
    """A paired test of two (seeds, tracks) tables: its p-value function and the seeds per
    side it applies to."""

    description: str
    p_value: Callable[[np.ndarray, np.ndarray], float]
    min_seeds: int = 1
    max_seeds: int | None = None

    def applies(self, seeds: int) -> bool:
        return seeds >= self.min_seeds and (self.max_seeds is None or seeds <= self.max_seeds)


TESTS: dict[str, PairTest] = {
    "mcnemar": PairTest(
        "exact McNemar on one seed each (track-only; `mgc report` before #28)",
        lambda a, b: mcnemar_exact(a[0] == 1, b[0] == 1), max_seeds=1),
    "track_bootstrap": PairTest(
        "paired bootstrap over tracks of the seed-averaged scores (track-only; `mgc report` "
        "before #28)",
        lambda a, b: paired_bootstrap(a.mean(axis=0), b.mean(axis=0),
                                      resamples=CALIBRATION_RESAMPLES).p_value),
    "two_level_bootstrap": PairTest(
        "bootstrap of seeds within each configuration and of tracks jointly",
        lambda a, b: two_level_bootstrap(a, b, resamples=CALIBRATION_RESAMPLES).p_value,
        min_seeds=2),
    "seed_permutation": PairTest(
        "permutation of seeds between the two configurations (conditional on the tracks)",
        lambda a, b: seed_permutation(a, b), min_seeds=2),
}
"""Every test the study calibrates, by name: one entry adds a test."""


def disjoint_seed_pairs(total: int, per_set: int, pairs: int,
                        rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """`pairs` random pairs of disjoint sets of `per_set` seed positions out of `total`."""
    if 2 * per_set > total:
        raise ValueError(f"two disjoint sets of {per_set} seeds need {2 * per_set} seeds, "
                         f"got {total}")
    drawn = []
    for _ in range(pairs):
        order = rng.permutation(total)
        drawn.append((np.sort(order[:per_set]), np.sort(order[per_set:2 * per_set])))
    return drawn


def _rate(significant: int, pairs: int) -> dict[str, object]:
    interval = stats.binomtest(significant, pairs).proportion_ci(method="wilson")
    return {"false_positive_rate": significant / pairs, "significant": significant,
            "pairs": pairs, "wilson95": [float(interval.low), float(interval.high)]}


def aa_study(tables: Mapping[str, np.ndarray], seeds_per_set: Sequence[int], pairs: int,
             alpha: float = SIGNIFICANCE, seed: int = 0,
             tests: Mapping[str, PairTest] | None = None) -> dict[str, object]:
    """Each test's false-positive rate at `alpha` over A/A pairs.

    `tables` maps a name (e.g. `synth_gtzan/mfcc`) to one configuration's (seeds, tracks)
    right/wrong on a test set. For every table and every size in `seeds_per_set`, `pairs`
    random pairs of disjoint seed sets are drawn (`disjoint_seed_pairs`, seeded), and every
    test that applies at that size gives a p-value. Pairs drawn from one pool of seeds share
    seeds, so they are not independent: the Wilson interval of a rate is narrower than its
    true uncertainty. Returns, per test, the overall rate (`false_positive_rate`), its count
    and interval, and the same per seed-set size and per table.
    """
    tests = TESTS if tests is None else tests
    rng = np.random.default_rng(seed)
    significant: dict[str, dict[tuple[str, int], list[bool]]] = {name: {} for name in tests}
    for table_name, table in tables.items():
        table = np.asarray(table, dtype=float)
        for size in seeds_per_set:
            for first, second in disjoint_seed_pairs(len(table), size, pairs, rng):
                for test_name, test in tests.items():
                    if test.applies(size):
                        p_value = test.p_value(table[first], table[second])
                        significant[test_name].setdefault((table_name, size), []).append(
                            p_value < alpha)
    results: dict[str, object] = {}
    for test_name, cells in significant.items():
        if not cells:
            continue
        calls = [call for values in cells.values() for call in values]
        by_size = {size: [c for (_, s), values in cells.items() if s == size for c in values]
                   for size in sorted({s for _, s in cells})}
        by_table = {name: [c for (n, _), values in cells.items() if n == name for c in values]
                    for name in dict.fromkeys(n for n, _ in cells)}
        results[test_name] = {
            "description": tests[test_name].description, **_rate(sum(calls), len(calls)),
            "by_seeds_per_set": {str(size): _rate(sum(v), len(v)) for size, v in by_size.items()},
            "by_table": {name: _rate(sum(v), len(v)) for name, v in by_table.items()},
        }
    return {"alpha": alpha, "pairs_per_table_and_size": pairs,
            "seeds_per_set": list(seeds_per_set),
            "tables": {name: {"seeds": int(np.shape(t)[0]), "tracks": int(np.shape(t)[1])}
                       for name, t in tables.items()},
            "tests": results}


def power_table(tables: Mapping[str, np.ndarray], test_tracks: Sequence[int],
                difference: float, seeds: int, track_difference: float = 0.0,
                alpha: float = SIGNIFICANCE, power: float = POWER) -> dict[str, object]:
    """Per table: its variance components, the minimum detectable difference of an A/A-like
    comparison at `seeds` seeds per side on its own tracks, and the seeds per configuration
    needed to resolve `difference` on each number of `test_tracks` (None: not with any
    number of seeds), assuming the per-cell components carry over to the larger test set
    and the two configurations' per-track differences vary by `track_difference` (0: the
    training-noise floor)."""
    out: dict[str, object] = {}
    for name, table in tables.items():
        table = np.asarray(table, dtype=float)
        components = variance_components(table)
        out[name] = {
            "seeds": components.seeds, "tracks": components.tracks,
            "variance": {"seed": components.seed, "track": components.track,
                         "residual": components.residual},
            "seed_accuracy_sd": float(np.sqrt(components.seed_accuracy_variance())),
            f"minimum_detectable_at_{seeds}_seeds": minimum_detectable_difference(
                float(np.sqrt(2 * components.seed_accuracy_variance() / seeds)), alpha, power),
            "seeds_needed": {str(tracks): seeds_needed(components, tracks, difference,
                                                       track_difference, alpha, power)
                             for tracks in test_tracks},
        }
    return {"difference": difference, "alpha": alpha, "power": power,
            "track_difference_variance": track_difference, "by_table": out}
