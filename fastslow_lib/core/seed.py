"""Seeding helpers: one integer seed makes every random draw in the course repeatable.

Taught in notebooks/00_data.ipynb
"""

from __future__ import annotations

import numbers
import random

import numpy as np
import torch

__all__ = ["check_seed", "rng", "seed_everything"]

_SEED_LIMIT = 2**32  # numpy's legacy seeding accepts 0 <= seed < 2**32


def check_seed(seed: object) -> int:
    """Return ``seed`` as a plain ``int`` after checking it is usable everywhere.

    Accepts Python and numpy integers in ``[0, 2**32)``. Rejects ``bool`` (``True`` is
    an ``int`` in Python, but almost certainly a bug here) and floats, even integral ones.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    value = int(seed)
    if not 0 <= value < _SEED_LIMIT:
        raise ValueError(f"seed must satisfy 0 <= seed < 2**32, got {value}")
    return value


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    value = check_seed(seed)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)  # also seeds CUDA lazily
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(value)


def rng(seed: int) -> np.random.Generator:
    """A fresh, independent numpy ``Generator``; prefer this over the global numpy RNG."""
    return np.random.default_rng(check_seed(seed))
