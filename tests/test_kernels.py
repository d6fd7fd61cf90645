"""The nearest-centre kernel against NumPy: labels, lowest and second-lowest scores, padding, ties, layouts."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from custseg.engine.kernels import LANES, ROWS, centres_for_kernel, nearest_block, nearest_two_block


@njit
def _nearest(X, c2t, cn):
    best = np.empty(X.shape[0], dtype=np.int64)
    low = np.empty(X.shape[0], dtype=X.dtype)
    second = np.empty(X.shape[0], dtype=X.dtype)
    nearest_two_block(X, c2t, cn, best, low, second)
    plain = np.empty(X.shape[0], dtype=np.int64)
    nearest_block(X, c2t, cn, plain, low)
    return best, low, second, plain


def _scores(X, centres):
    """‖c‖² - 2 x·c in float64, the quantity the kernel rounds."""
    C = centres.astype(np.float64)
    return (C * C).sum(axis=1) - 2.0 * X.astype(np.float64) @ C.T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3, LANES, LANES + 5])
def test_labels_and_scores_match_numpy(dtype, k):
    rng = np.random.default_rng(k)
    X = rng.standard_normal((4 * ROWS * 10 + 3, 17)).astype(dtype)  # rows beyond the last group of ROWS
    centres = rng.standard_normal((k, 17))
    best, low, second, plain = _nearest(X, *centres_for_kernel(centres, dtype))
    scores = _scores(X, centres)
    ordered = np.sort(scores, axis=1)
    np.testing.assert_array_equal(best, scores.argmin(axis=1))
    np.testing.assert_array_equal(plain, best)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(low, ordered[:, 0], rtol=rtol, atol=rtol * 10)
    if k == 1:
        assert np.isposinf(second).all()
    else:
        np.testing.assert_allclose(second, ordered[:, 1], rtol=rtol, atol=rtol * 10)


def test_first_of_equal_centres_wins_and_padding_never_does():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 6)).astype(np.float32)
    centres = rng.standard_normal((LANES + 3, 6))
    centres[5] = centres[2]  # a twin in the same group of lanes
    centres[LANES + 1] = centres[1]  # and one in the next group
    best, low, second, _ = _nearest(X, *centres_for_kernel(centres, np.float32))
    assert not np.isin(best, [5, LANES + 1]).any()
    assert np.isin(best, [1, 2]).any() and best.max() < len(centres)
    twins = np.isin(best, [1, 2])
    np.testing.assert_array_equal(second[twins], low[twins])  # the twin scores the same


def test_strided_rows_and_features():
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((300, 10))
    X = wide[::3, ::2]  # neither rows nor features contiguous
    centres = rng.standard_normal((4, 5))
    best, *_ = _nearest(X, *centres_for_kernel(centres, np.float64))
    np.testing.assert_array_equal(best, _scores(X, centres).argmin(axis=1))


def test_a_row_with_nan_gets_a_real_centre():
    X = np.ones((9, 4), dtype=np.float32)
    X[3, 2] = np.nan
    best, *_ = _nearest(X, *centres_for_kernel(np.arange(12.0).reshape(3, 4), np.float32))
    assert best[3] == 0 and (best >= 0).all() and (best < 3).all()


def test_centres_for_kernel_pads_with_zero_coefficients_and_infinite_norms():
    centres = np.arange(30.0).reshape(10, 3)
    c2t, cn = centres_for_kernel(centres, np.float32)
    assert c2t.shape == (3, 2 * LANES) and c2t.dtype == cn.dtype == np.float32 and c2t.flags.c_contiguous
    np.testing.assert_array_equal(c2t[:, :10], -2.0 * centres.T)
    assert (c2t[:, 10:] == 0).all() and np.isposinf(cn[10:]).all()
    np.testing.assert_allclose(cn[:10], (centres ** 2).sum(axis=1))
