"""95% intervals (core.intervals): golden values, pairing, the verdict rule, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastslow_lib.core.intervals import (
    Estimate,
    hits_as_bits,
    hits_at,
    hits_from_bits,
    paired_difference_interval,
    prediction_interval,
    proportion_interval,
    recall_estimates,
    smallest_within,
    verdict,
)


def test_exact_binomial_interval_golden_values():
    # Clopper-Pearson for 167 / 200 and the edges 0 / 200 and 200 / 200 (scipy's beta quantiles;
    # the closed forms at the edges are 1 - (alpha/2)^(1/n) and (alpha/2)^(1/n)).
    e = proportion_interval(np.r_[np.ones(167), np.zeros(33)])
    assert (e.value, e.n) == (83.5, 200)
    assert e.low == pytest.approx(77.6157, abs=1e-3) and e.high == pytest.approx(88.3617, abs=1e-3)
    top = proportion_interval(np.ones(200))
    assert top.high == 100.0 and top.low == pytest.approx(100 * 0.025 ** (1 / 200), abs=1e-9)
    none = proportion_interval(np.zeros(200))
    assert none.low == 0.0 and none.high == pytest.approx(100 * (1 - 0.025 ** (1 / 200)))
    assert str(e) == "83.5 [77.6, 88.4]"


def test_prediction_interval_golden_values_and_errors():
    # runs 50, 52, 54: sd 2, Student's t(0.975, 2 dof) = 4.3027, sqrt(1 + 1/3): half-width 9.937
    e = prediction_interval([50.0, 52.0, 54.0])
    assert (e.value, e.n) == (52.0, 3)
    assert e.low == pytest.approx(52 - 9.9366, abs=1e-3) and e.high == pytest.approx(52 + 9.9366,
                                                                                      abs=1e-3)
    # more runs with the same spread: a narrower interval (t falls, sqrt(1 + 1/n) falls)
    wider, narrower = prediction_interval([50, 54, 52]), prediction_interval([50, 54, 52] * 3)
    assert narrower.high - narrower.low < wider.high - wider.low
    with pytest.raises(ValueError, match="at least 3 runs, got 2"):
        prediction_interval([50.0, 52.0])
    with pytest.raises(ValueError, match="runs must be finite"):
        prediction_interval([50.0, float("nan"), 52.0])


def test_hits_round_trip_through_bits_and_bad_bits_are_named():
    hits = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    assert hits_as_bits(hits) == "10011"
    np.testing.assert_array_equal(hits_from_bits("10011"), hits)
    assert hits_from_bits(hits_as_bits(hits)).dtype == np.float64
    with pytest.raises(ValueError, match="0 or 1 to be written as bits"):
        hits_as_bits([1.0, 0.5])
    for bad in ("", "10x1", "1 0"):
        with pytest.raises(ValueError, match="string of 0 and 1 characters"):
            hits_from_bits(bad)


def test_the_interval_narrows_with_more_queries():
    small = proportion_interval(np.r_[np.ones(80), np.zeros(20)])
    large = proportion_interval(np.r_[np.ones(4000), np.zeros(1000)])
    assert small.value == large.value == 80.0
    assert (large.high - large.low) < 0.2 * (small.high - small.low)


def test_half_counted_ties_are_taken_as_they_are():
    e = proportion_interval([0.5] * 100)
    assert e.value == 50.0 and e.low < 50 < e.high


def test_paired_bootstrap_is_deterministic_and_narrower_than_separate_intervals():
    rng = np.random.default_rng(1)
    easy = rng.random(400) < 0.8
    a = easy.astype(float)
    b = a.copy()
    b[np.flatnonzero(a)[:8]] = 0  # b misses 8 of a's hits, and nothing else differs
    d = paired_difference_interval(a, b)
    assert d.value == pytest.approx(2.0)
    assert d == paired_difference_interval(a, b)  # same outcomes, same interval, bit for bit
    assert 0 < d.low <= d.value <= d.high
    ea, eb = proportion_interval(a), proportion_interval(b)
    assert ea.low < eb.high  # separate intervals overlap: they could not tell the two apart
    assert d.signed().startswith("+2.0 [+")


def test_identical_models_differ_by_exactly_zero():
    a = (np.arange(200) % 3 == 0).astype(float)
    assert paired_difference_interval(a, a) == Estimate(0.0, 0.0, 0.0, 200)


def test_the_verdict_rule():
    assert verdict(Estimate(20, 16, 24, 200), 15) == "met"
    assert verdict(Estimate(14.5, 10, 19.5, 200), 15) == "undecided"
    assert verdict(Estimate(10, 6, 14, 200), 15) == "not met"
    assert verdict(Estimate(0, 0, 0, 200), 0) == "met"
    assert verdict(Estimate(0, 0, 0, 200), 0, strict=True) == "not met"
    assert verdict(Estimate(1, 0, 2, 200), 0, strict=True) == "undecided"
    assert verdict(Estimate(-0.5, -1.0, 0.0, 200), -1) == "met"  # within 1 point
    assert verdict(Estimate(0.3, 0.1, 0.4, 200), 0.5, at_most=True) == "met"
    assert verdict(Estimate(0.7, 0.6, 0.8, 200), 0.5, at_most=True) == "not met"


def test_recalls_from_ranks_and_the_smallest_k_within_a_margin():
    ranks = np.array([1] * 150 + [2] * 30 + [7] * 15 + [50] * 5)
    r = recall_estimates(ranks)
    assert [r[k].value for k in ("R@1", "R@5", "R@10")] == [75.0, 90.0, 97.5]
    reference = hits_at(ranks, 1)
    reference[:10] = 0  # the reference misses 10 queries that every candidate finds
    k, diffs = smallest_within({10: hits_at(ranks, 10), 1: hits_at(ranks, 1)}, reference, 1.0)
    assert list(diffs) == [1, 10] and k == 1 and diffs[1].value == 5.0
    assert smallest_within({1: np.zeros(200)}, np.ones(200), 1.0)[0] is None


@pytest.mark.parametrize("bad, words", [
    ([], "non-empty"), ([[1, 0]], "1-D"), ([0, 2], r"\[0, 1\]"), ([0, np.nan], r"\[0, 1\]"),
])
def test_bad_outcomes_are_clear_errors(bad, words):
    with pytest.raises(ValueError, match=words):
        proportion_interval(bad)


def test_bad_pairs_ranks_and_settings_are_clear_errors():
    with pytest.raises(ValueError, match="same length"):
        paired_difference_interval([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="resamples"):
        paired_difference_interval([1, 0], [1, 0], resamples=10)
    with pytest.raises(ValueError, match="1-based"):
        hits_at([0, 1], 1)
    with pytest.raises(ValueError, match="1-based"):
        hits_at([1.5, 2.0], 1)
    with pytest.raises(ValueError, match="level"):
        proportion_interval([1, 0], level=95)
