"""The compiled kernels of scoring in batches (custseg.scoring_kernels) against plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from custseg import scoring_kernels as k


def _binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin ``i`` holds ``edges[i-1] < v <= edges[i]``; the last slot counts the values that are not finite."""
    finite = values[np.isfinite(values)]
    return np.append(np.bincount(np.searchsorted(edges, finite, side="left"), minlength=len(edges) + 1),
                     len(values) - len(finite))


@pytest.mark.parametrize("n", [0, 1, 5, k.COUNT_BLOCK + 3])
def test_bin_counts_are_numpys(n):
    rng = np.random.default_rng(n)
    edges = np.array([-1.0, 0.0, 0.5, 2.0])
    values = rng.normal(size=n)
    values[::7] = 0.5  # on an edge: the bin below it
    values[1::11] = np.nan
    values[2::13] = np.inf
    values[3::17] = -np.inf
    counts = np.full(len(edges) + 2, 3, dtype=np.int64)  # counts are added to what is there
    k._bin_counts(values, np.append(edges, [np.inf, np.inf]), len(edges), counts)
    assert np.array_equal(counts - 3, _binned(values, edges))
    assert counts.sum() - 3 * len(counts) == n


def test_bin_counts_without_edges():
    counts = np.zeros(2, dtype=np.int64)
    k._bin_counts(np.array([1.0, np.nan, -4.0]), np.array([np.inf]), 0, counts)
    assert counts.tolist() == [2, 1]


def test_has_repeat_looks_across_parts():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, size=3 * k.REPEAT_GROUP, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    parts = np.array_split(values, 5)
    assert not k.has_repeat(parts)
    assert k.has_repeat([*parts, values[-1:]])
    assert k.has_repeat([values[:10], values[7:8]])
    assert not k.has_repeat([])
    zero = np.zeros(1, dtype=np.uint64)  # 0 marks an empty slot: told apart
    assert not k.has_repeat([zero, values[:5]]) and k.has_repeat([zero, values[:5], zero])


def test_workspace_reuses_memory():
    work = k.Workspace()
    a = work.array("x", (3, 100))
    b = work.array("x", (2, 50))
    assert b.flags.c_contiguous and b.shape == (2, 50) and np.shares_memory(a, b)
    c = work.array("x", (4, 100))
    assert not np.shares_memory(a, c) and work.array("y", (5,), np.int64).dtype == np.int64
