"""Automatic checks for the notebooks' exercises.

Each ``check_*`` function runs a learner's answer on cases with known answers and returns a
short verdict (``"correct: ..."`` or ``"not yet: ..."``) instead of raising, so a notebook can
show the verdict whatever the answer.

Taught in notebooks/00_data.ipynb (exercise 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastslow_lib.metrics import ranks_of_gt

#: Score matrices with ties in every position that matters, and their correct ground truth.
_RANK_CASES: tuple[tuple[list[list[float]], list[int]], ...] = (
    ([[0.9, 0.1, 0.5], [0.2, 0.8, 0.8], [0.3, 0.3, 0.3]], [0, 2, 0]),
    ([[0.7, 0.7, 0.7, 0.1]], [0]),
    ([[0.1, 0.4, 0.4, 0.9], [0.5, 0.5, 0.2, 0.2]], [1, 3]),
)


def check_ranks(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """Check a learner's ``fn(scores, gt) -> 1-based ranks`` against the pessimistic tie rule."""
    for scores, gt in _RANK_CASES:
        s, g = np.array(scores), np.array(gt)
        want = ranks_of_gt(s, g)
        try:
            got = np.asarray(fn(s, g))
        except Exception as e:  # a learner's bug should become a verdict, not a traceback
            return f"not yet: your function raised {type(e).__name__}: {e}"
        if got.shape != want.shape or not np.array_equal(got.astype(np.int64), want):
            return (
                f"not yet: for scores {scores} and gt {gt} the ranks are {want.tolist()}, "
                f"yours gave {got.tolist()} (hint: a tie with the correct item must rank it lower)"
            )
    return f"correct: all {len(_RANK_CASES)} cases match, ties included"
