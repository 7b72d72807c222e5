"""Seeding helpers: one integer seed makes every random draw in the course repeatable.

Taught in notebooks/00_data.ipynb
"""

from __future__ import annotations

import random

import numpy as np
import torch

from fastslow_lib.config.checks import check_seed

# check_seed is defined in fastslow_lib.config.checks (configs check their seeds too).
__all__ = ["check_seed", "rng", "seed_everything"]


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
