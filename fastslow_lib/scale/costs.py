"""Scale: synthetic embedding sets for index benchmarks, and cost projections to 10^9 items.

* :func:`clustered_unit_vectors` / :func:`noisy_queries`: a database of unit vectors in groups
  around random centres (as real embedding sets group similar items) and queries near database
  vectors, so that exact and approximate search have something meaningful to find;
* :func:`project_costs`: Fast's and Slow's cost per query and memory, projected from per-item
  costs measured at a size this machine holds to any gallery size, under stated assumptions;
* :func:`machines_needed`: how many machines of a given memory a gallery's index needs (when
  sharding, e.g. faiss ``IndexShards``, becomes necessary).

Taught in notebooks/06_demo_and_scale.ipynb; ``benchmarks/bench_index.py`` uses the same
generators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["MeasuredCosts", "clustered_unit_vectors", "machines_needed", "noisy_queries",
           "project_costs", "random_unit_vectors"]


def random_unit_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random L2-normalised float32 vectors, made in chunks to bound the temporaries."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(block)] = block
    return out


def clustered_unit_vectors(
    n: int, dim: int, rng: np.random.Generator, per_cluster: int, spread: float
) -> np.ndarray:
    """``n`` unit vectors in groups of about ``per_cluster`` around random unit centres."""
    centres = random_unit_vectors(max(1, n // per_cluster), dim, rng)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(len(centres), size=m)]
        block = block + spread * rng.standard_normal((m, dim), dtype=np.float32) / math.sqrt(dim)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def noisy_queries(
    db: np.ndarray, n: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` queries: database vectors plus Gaussian noise of norm about ``noise``.

    Returns ``(queries, source_ids)``.
    """
    src = rng.choice(len(db), size=n, replace=False)
    g = rng.standard_normal((n, db.shape[1]), dtype=np.float32)
    q = db[src] + noise * g / math.sqrt(db.shape[1])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.ascontiguousarray(q, dtype=np.float32), src


@dataclass(frozen=True)
class MeasuredCosts:
    """Per-item costs measured at gallery size ``n0`` (milliseconds, bytes).

    ``slow_pair_ms``: Slow on one (query, item) pair, from Slow on everything;
    ``rerank_ms``: Fast's text encoding plus Slow re-scoring its top K, per query (independent
    of the gallery); ``flat_ms``: exact search per query at ``n0``; ``ann_ms``: an IVF-type
    index per query at ``n0``; ``bytes_flat`` / ``bytes_ann``: index bytes per item;
    ``bytes_slow``: Slow's cached keys and values per item; ``image_ms``: Slow's image side for
    one item (its pyramid and those keys and values, as building the cache costs); ``k``: the
    short list Slow re-scores.
    """

    n0: int
    slow_pair_ms: float
    rerank_ms: float
    flat_ms: float
    ann_ms: float
    bytes_flat: float
    bytes_ann: float
    bytes_slow: float
    image_ms: float
    k: int


def project_costs(costs: MeasuredCosts, sizes: np.ndarray) -> dict[str, np.ndarray]:
    """Cost per query (ms) and memory (bytes) at each gallery size, from measured costs.

    Assumptions, each stated in notebook 06: Slow on everything and exact search grow linearly
    with N; an IVF index with ``nlist`` proportional to sqrt(N) and a fixed ``nprobe`` scans
    about sqrt(N) vectors per query, so its time grows like sqrt(N / n0); re-ranking K items costs
    the same at every N. Keys: ``slow_all_ms``, ``fast_flat_ms``, ``fast_ann_ms``,
    ``fast_ann_slow_ms`` (Slow's image side cached), ``fast_ann_slow_recompute_ms`` (no cache:
    Slow's image side recomputed for the ``k`` candidates of each query, what a gallery whose
    cache does not fit in memory pays), ``flat_bytes``, ``ann_bytes``, ``slow_cache_bytes``.
    """
    n = np.asarray(sizes, dtype=np.float64)
    if n.ndim != 1 or n.size == 0 or (n < 1).any():
        raise ValueError("sizes must be a non-empty 1-D array of positive gallery sizes")
    if costs.n0 < 1:
        raise ValueError(f"n0 must be at least 1, got {costs.n0}")
    if costs.k < 1 or costs.image_ms < 0:
        raise ValueError(f"k must be at least 1 and image_ms non-negative, got k={costs.k}, "
                         f"image_ms={costs.image_ms}")
    ann = costs.ann_ms * np.sqrt(n / costs.n0)
    return {
        "slow_all_ms": costs.slow_pair_ms * n,
        "fast_flat_ms": costs.flat_ms * n / costs.n0,
        "fast_ann_ms": ann,
        "fast_ann_slow_ms": ann + costs.rerank_ms,
        "fast_ann_slow_recompute_ms": ann + costs.rerank_ms + costs.k * costs.image_ms,
        "flat_bytes": costs.bytes_flat * n,
        "ann_bytes": costs.bytes_ann * n,
        "slow_cache_bytes": costs.bytes_slow * n,
    }


def machines_needed(n_items: float, bytes_per_item: float, memory_bytes: float,
                    usable: float = 0.8) -> int:
    """Machines needed to hold ``n_items`` of ``bytes_per_item`` in RAM (``usable`` of it)."""
    if n_items < 0 or bytes_per_item < 0:
        raise ValueError("n_items and bytes_per_item must be non-negative")
    if memory_bytes <= 0 or not 0 < usable <= 1:
        raise ValueError("memory_bytes must be positive and usable in (0, 1]")
    return max(1, math.ceil(n_items * bytes_per_item / (usable * memory_bytes)))
