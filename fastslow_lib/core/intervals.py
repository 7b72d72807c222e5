"""95% confidence intervals for recalls and probe accuracies, and the rule that decides "met".

Taught in notebooks/00_data.ipynb (section 10, the metrics).

A Recall@K measured on a few hundred queries is an estimate: with 200 queries, R@1 near 85 has
a standard error of about 2.5 points. Every recall and probe figure the course reports
therefore carries an interval, and every claim's verdict is decided by one:

* :func:`proportion_interval` - one model's rate (R@K over queries, or a probe's accuracy
  over its pairs): the exact binomial (Clopper-Pearson) interval. It never claims more
  certainty than the data give, and stays sensible at 0 and 100 percent.
* :func:`paired_difference_interval` - the difference between two models scored on the
  *same* queries: a percentile bootstrap that resamples queries (``scipy.stats.bootstrap``,
  10,000 resamples, a fixed seed, so the same outcomes give the same interval bit for bit).
  Pairing removes the queries' own difficulty from the comparison, so it is much narrower
  than two separate intervals.
* :func:`prediction_interval` - where one more training run of the same recipe should land,
  from the figures of a few runs at different seeds (Student's t): the seed-to-seed spread of a
  recipe, which a fixed model's sampling interval does not contain (notebook 01, "Release
  models": reproducing a release model).
* :func:`verdict` - the course's rule: a target is **met** when the whole 95% interval is on
  its side, **not met** when the whole interval is short of it, and **undecided** when the
  interval straddles it (more queries are needed to tell).

Outcomes are per-query (or per-pair) numbers in ``[0, 1]``: 1 for a hit, 0 for a miss, 0.5 for
a probe tie counted as a coin flip. :func:`hits_at` turns 1-based ranks into hits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import beta, bootstrap, t

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "LEVEL",
    "VERDICTS",
    "Estimate",
    "as_outcomes",
    "hits_as_bits",
    "hits_at",
    "hits_from_bits",
    "smallest_within",
    "paired_difference_interval",
    "prediction_interval",
    "proportion_interval",
    "recall_estimates",
    "verdict",
]

LEVEL = 0.95
"""Confidence level of every interval the course reports."""

BOOTSTRAP_RESAMPLES = 10_000
"""Resamples of the paired bootstrap."""

VERDICTS: tuple[str, ...] = ("met", "not met", "undecided")
"""What :func:`verdict` can say."""


@dataclass(frozen=True)
class Estimate:
    """A percentage with its 95% interval: ``value``, ``low``, ``high`` (percent), ``n`` items."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.1f} [{self.low:.1f}, {self.high:.1f}]"

    def signed(self) -> str:
        """The same, with signs: for differences (``+2.5 [+0.5, +4.5]``)."""
        return f"{self.value:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"

    def to_dict(self) -> dict[str, float | int]:
        """Plain numbers, for results files."""
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def as_outcomes(outcomes: Any, name: str = "outcomes") -> np.ndarray:
    """Validate per-item outcomes: a non-empty 1-D sequence of numbers in ``[0, 1]``."""
    arr = np.asarray(outcomes, dtype=np.float64) if not isinstance(outcomes, np.ndarray) \
        else outcomes.astype(np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must hold numbers in [0, 1] (1 hit, 0 miss, 0.5 a tie), got "
                         f"values from {np.nanmin(arr)} to {np.nanmax(arr)}")
    return arr


def hits_as_bits(hits: Sequence[float] | np.ndarray) -> str:
    """Per-query hits (0 or 1) as a string of ``"0"``/``"1"``: compact in a JSON results file.

    :func:`hits_from_bits` reads it back (``scripts/rerank_all_queries.py`` writes one per
    model and K; notebook 04 and the claims table read them).
    """
    arr = as_outcomes(hits, "hits")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("hits must be 0 or 1 to be written as bits (a tie's 0.5 is not a bit)")
    return (arr.astype(np.uint8) + ord("0")).tobytes().decode("ascii")


def hits_from_bits(bits: str) -> np.ndarray:
    """The hits :func:`hits_as_bits` wrote: a float array of 0.0 and 1.0, one per character."""
    if not isinstance(bits, str) or not bits or set(bits) - {"0", "1"}:
        raise ValueError("hits must be written as a non-empty string of 0 and 1 characters, "
                         f"got {str(bits)[:20]!r}")
    return (np.frombuffer(bits.encode("ascii"), np.uint8) - ord("0")).astype(np.float64)


def hits_at(ranks: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """``1.0`` where a 1-based rank is at most ``k`` (a hit for R@k), else ``0.0``."""
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or not np.issubdtype(r.dtype, np.integer) or r.min() < 1:
        raise ValueError(f"ranks must be a non-empty 1-D sequence of 1-based integer ranks, got "
                         f"dtype {r.dtype}, shape {r.shape}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return (r <= k).astype(np.float64)


def recall_estimates(ranks: Sequence[int] | np.ndarray,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, Estimate]:
    """``{"R@1": Estimate, ...}``: each Recall@K of 1-based ``ranks`` with its exact interval."""
    return {f"R@{k}": proportion_interval(hits_at(ranks, k)) for k in ks}


def proportion_interval(outcomes: Any, level: float = LEVEL) -> Estimate:
    """A rate in percent with its exact binomial (Clopper-Pearson) interval.

    ``outcomes`` are per-query hits (or per-pair probe outcomes). Half-counted ties make the
    number of successes fractional; the beta-quantile form of the interval takes that as it is.
    """
    arr = as_outcomes(outcomes)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n, x = arr.size, float(arr.sum())
    alpha = 1 - level
    low = 0.0 if x <= 0 else float(beta.ppf(alpha / 2, x, n - x + 1))
    high = 1.0 if x >= n else float(beta.ppf(1 - alpha / 2, x + 1, n - x))
    return Estimate(100 * x / n, 100 * low, 100 * high, n)


def paired_difference_interval(
    a: Any, b: Any, *, level: float = LEVEL, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
) -> Estimate:
    """``mean(a) - mean(b)`` in points, with a paired percentile-bootstrap interval.

    ``a[i]`` and ``b[i]`` must be the two models' outcomes on the same query ``i``. Queries are
    resampled with replacement ``resamples`` times; the interval is the middle ``level`` of
    the resampled differences. The seed is fixed, so the same outcomes give the same interval.

    The resampling is ``scipy.stats.bootstrap``'s, on the per-query differences ``a - b``:
    resampling them resamples queries with both models' outcomes together, which is what
    ``paired=True`` does (it draws the same indices, but gathers ``a`` and ``b`` apart, two to
    three times slower). Resamples are drawn in batches of about two million outcomes (the
    batch size is part of the random stream, so it is fixed too). The interval's ends are
    ``np.quantile`` of scipy's bootstrap distribution: the same linear interpolation as
    scipy's own ends, which can differ from it in the last bit.
    """
    x, y = as_outcomes(a, "a"), as_outcomes(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired outcomes must have the same length (the same queries), got "
                         f"{x.size} and {y.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an int >= 100, got {resamples!r}")
    d = x - y
    if d.size == 1:  # one query: every resample is that query (scipy wants two or more)
        return Estimate(100 * float(d[0]), 100 * float(d[0]), 100 * float(d[0]), 1)
    means = bootstrap(
        (d,), np.mean, n_resamples=resamples, batch=max(1, 2_000_000 // d.size),
        vectorized=True, method="percentile", confidence_level=level,
        rng=np.random.default_rng(seed),
    ).bootstrap_distribution
    alpha = 1 - level
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Estimate(100 * float(d.mean()), 100 * float(low), 100 * float(high), int(d.size))


def prediction_interval(runs: Sequence[float], level: float = LEVEL) -> Estimate:
    """Where one more run lands, from the figures of ``runs`` (3 or more) of the same recipe.

    The runs (a validation R@1, say, of one recipe trained at different seeds) are taken as
    draws from a normal distribution; a new draw falls within ``mean +- t * sd * sqrt(1 + 1/n)``
    with probability ``level`` (``t``: Student's quantile with ``n - 1`` degrees of freedom).
    ``value`` is the runs' mean and ``n`` their number; figures in, figures out (percent).
    """
    x = np.asarray(runs, dtype=np.float64)
    if x.ndim != 1 or x.size < 3:
        raise ValueError(f"a prediction interval needs at least 3 runs, got {x.size}")
    if not np.isfinite(x).all():
        raise ValueError("runs must be finite numbers")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n, mean, sd = x.size, float(x.mean()), float(x.std(ddof=1))
    half = float(t.ppf(1 - (1 - level) / 2, n - 1) * sd * np.sqrt(1 + 1 / n))
    return Estimate(mean, mean - half, mean + half, n)


def verdict(estimate: Estimate, target: float, *, at_most: bool = False,
            strict: bool = False) -> str:
    """The course's rule: ``"met"``, ``"not met"`` or ``"undecided"`` from a 95% interval.

    For a target the figure must reach (``figure >= target``): met when the interval's low end
    is at or above the target, not met when its high end is below it, undecided otherwise. With
    ``at_most=True`` the figure must stay at or below the target, and the rule mirrors. With
    ``strict=True`` the figure must be *above* the target: an interval whose low end equals the
    target is then undecided.
    """
    low, high = (estimate.low, estimate.high) if not at_most else (-estimate.high, -estimate.low)
    t = target if not at_most else -target
    if low > t or (low == t and not strict):
        return "met"
    if high < t or (strict and high == t):
        return "not met"
    return "undecided"


def smallest_within(
    candidates: Mapping[int, Any], reference: Any, margin: float, *,
    interval: Callable[[Any, Any], Estimate] | None = None,
) -> tuple[int | None, dict[int, Estimate]]:
    """The smallest key (a K) whose outcomes stay within ``margin`` points of ``reference``.

    ``candidates[k]`` are per-query hits at setting ``k`` (re-ranking Fast's top k, say) and
    ``reference`` the hits of the model they should keep up with, on the same queries. A key
    qualifies when :func:`verdict` says the paired difference ``candidate - reference`` is at
    least ``-margin`` ("met": the whole interval above ``-margin``). Returns the smallest such
    key (None if there is none) and every key's paired difference. ``interval``: the paired
    interval to use (default :func:`paired_difference_interval`; the course's tooling passes
    the same function with its answers kept on disk, :mod:`fastslow_course.kept_intervals`).
    """
    paired = interval or paired_difference_interval
    diffs = {int(k): paired(v, reference)
             for k, v in sorted(candidates.items())}
    within = [k for k, d in diffs.items() if verdict(d, -margin) == "met"]
    return (within[0] if within else None), diffs
