"""Scale helpers (notebook 06): synthetic vectors, cost projections, machines needed."""

from __future__ import annotations

import numpy as np
import pytest

from fastslow_lib.scale.costs import (
    MeasuredCosts,
    clustered_unit_vectors,
    machines_needed,
    noisy_queries,
    project_costs,
)

COSTS = MeasuredCosts(n0=1000, slow_pair_ms=0.4, rerank_ms=5.0, flat_ms=0.1, ann_ms=0.05,
                      bytes_flat=1024.0, bytes_ann=76.0, bytes_slow=129_024.0, image_ms=2.0,
                      k=10)


def test_vectors_are_seeded_unit_and_clustered():
    a = clustered_unit_vectors(2000, 16, np.random.default_rng(0), 100, 0.5)
    b = clustered_unit_vectors(2000, 16, np.random.default_rng(0), 100, 0.5)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    top = np.sort(a[:50] @ a.T, axis=1)[:, -2]  # nearest other vector: a cluster mate
    assert np.median(top) > 0.6
    q, src = noisy_queries(a, 20, 0.3, np.random.default_rng(1))
    assert q.shape == (20, 16) and np.all((q * a[src]).sum(1) > 0.8)


def test_projection_follows_the_stated_growth_laws():
    sizes = np.array([1e3, 1e5, 1e9])
    p = project_costs(COSTS, sizes)
    np.testing.assert_allclose(p["slow_all_ms"], [400.0, 4e4, 4e8])
    np.testing.assert_allclose(p["fast_flat_ms"], [0.1, 10.0, 1e5])
    np.testing.assert_allclose(p["fast_ann_ms"], [0.05, 0.5, 50.0])
    np.testing.assert_allclose(p["fast_ann_slow_ms"], p["fast_ann_ms"] + 5.0)
    # without Slow's cache, its image side for the 10 candidates: 10 x 2 ms more, at every N
    np.testing.assert_allclose(p["fast_ann_slow_recompute_ms"], p["fast_ann_slow_ms"] + 20.0)
    np.testing.assert_allclose(p["ann_bytes"], 76.0 * sizes)
    with pytest.raises(ValueError, match="positive gallery sizes"):
        project_costs(COSTS, np.array([0.0]))
    import dataclasses

    with pytest.raises(ValueError, match="k must be at least 1"):
        project_costs(dataclasses.replace(COSTS, k=0), sizes)


def test_machines_needed():
    gib = 2**30
    assert machines_needed(1e9, 76, 128 * gib) == 1  # 76 GB of PQ codes fit one 128 GiB machine
    assert machines_needed(1e9, 1024, 128 * gib) == 10  # 1 TB of float32 vectors do not
    assert machines_needed(0, 1024, gib) == 1
    with pytest.raises(ValueError, match="usable"):
        machines_needed(10, 10, gib, usable=0)
