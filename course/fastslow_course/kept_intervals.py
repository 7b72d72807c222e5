"""The paired bootstrap's intervals, kept between notebooks: the claims table is cheap.

Every notebook's record cell re-renders ``results/summary.md``, whose claims table
(:mod:`fastslow_course.report`) decides about a hundred claims from the per-query outcomes in
``results/``, each by :func:`fastslow_lib.core.intervals.paired_difference_interval`. On the 5K
protocol one interval resamples 25,000 queries 10,000 times (about 0.2 s on a laptop core), so
the table took 20 to 40 s, and seven notebooks paid it again and again for the same outcomes.

:func:`paired_difference_interval` here is the library's, with its answer kept, keyed by
everything the answer depends on: both outcome arrays' bytes, the level, resamples and seed, the
library function's source and the numpy and scipy versions (their random stream). It looks in
this process's memory, then in ``data/cache/intervals/`` (``$FASTSLOW_DATA/intervals`` when
set; one small JSON file per interval, written on every computation), then in
``results/kept_intervals.json``: the intervals of the committed claims table, written by
``make course`` (:func:`write_kept`, the intervals its final claims table used and no others),
so that a fresh clone renders the table without recomputing it. The same outcomes give the same
interval bit for bit whether it was kept or computed (the library's bootstrap is deterministic;
``tests/test_kept_intervals.py``). A missing or unreadable entry is computed again; ``make
clean`` removes the cache folder.

Only the course's tooling uses it (the claims table, the regime decisions); a notebook's own
intervals are the library's, computed where the learner reads them.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from fastslow_course.locations import resolve_results_dir
from fastslow_lib.core.checkpoint import write_atomic
from fastslow_lib.core.intervals import (
    BOOTSTRAP_RESAMPLES,
    LEVEL,
    Estimate,
    as_outcomes,
)
from fastslow_lib.core.intervals import (
    paired_difference_interval as _computed,
)
from fastslow_lib.data.folders import default_cache_dir

__all__ = ["KEPT_NAME", "interval_cache_dir", "paired_difference_interval", "write_kept"]

KEPT_NAME = "kept_intervals.json"
"""The committed claims table's intervals, in ``results/`` (:func:`write_kept`)."""

_SOURCE = hashlib.sha256(inspect.getsource(_computed).encode()).hexdigest()
_KEPT: dict[str, Estimate] = {}  # this process's answers, by key
_COMMITTED: dict[str, dict[str, Estimate]] = {}  # results/kept_intervals.json, by its path


def interval_cache_dir() -> Path:
    """Where the intervals are kept: ``<data cache>/intervals`` (see the module's docstring)."""
    return default_cache_dir() / "intervals"


def _key(x: np.ndarray, y: np.ndarray, level: float, resamples: int, seed: int) -> str:
    h = hashlib.sha256()
    for part in (_SOURCE, np.__version__, scipy.__version__,
                 json.dumps([level, resamples, seed, list(x.shape), str(x.dtype)])):
        h.update(part.encode() + b"\0")
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(b"\0")
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def paired_difference_interval(a: Any, b: Any, *, level: float = LEVEL,
                               resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Estimate:
    """:func:`fastslow_lib.core.intervals.paired_difference_interval`, kept on disk by its
    inputs (same arguments, same answer, same errors for bad input)."""
    x, y = as_outcomes(a, "a"), as_outcomes(b, "b")
    if x.shape != y.shape or not 0 < level < 1 or not isinstance(resamples, int):
        return _computed(x, y, level=level, resamples=resamples, seed=seed)  # its clear error
    key = _key(x, y, level, resamples, seed)
    if key in _KEPT:
        return _KEPT[key]
    path = interval_cache_dir() / key[:2] / f"{key[2:]}.json"
    try:
        estimate = _estimate(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        estimate = _committed().get(key) or _computed(x, y, level=level, resamples=resamples,
                                                      seed=seed)
        try:
            write_atomic(path, json.dumps(_plain(estimate)))
        except OSError:  # a read-only checkout still works, only slower
            pass
    _KEPT[key] = estimate
    return estimate


def write_kept(results_dir: str | Path | None = None) -> Path:
    """Write every interval this process used (and no other) to ``results/kept_intervals.json``.

    ``make course`` calls it after rendering the final claims table, so the committed file
    holds exactly the committed table's intervals."""
    path = resolve_results_dir(results_dir) / KEPT_NAME
    body = {key: _plain(_KEPT[key]) for key in sorted(_KEPT)}
    write_atomic(path, json.dumps(body, indent=0, sort_keys=True) + "\n")
    _COMMITTED.pop(str(path), None)
    return path


def _committed() -> dict[str, Estimate]:
    path = resolve_results_dir() / KEPT_NAME
    if str(path) not in _COMMITTED:
        try:
            raw = json.loads(path.read_text())
            _COMMITTED[str(path)] = {k: _estimate(v) for k, v in raw.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            _COMMITTED[str(path)] = {}
    return _COMMITTED[str(path)]


def _estimate(kept: dict[str, Any]) -> Estimate:
    return Estimate(float(kept["value"]), float(kept["low"]), float(kept["high"]), int(kept["n"]))


def _plain(estimate: Estimate) -> dict[str, float | int]:
    return {"value": estimate.value, "low": estimate.low, "high": estimate.high, "n": estimate.n}
