"""The Lloyd passes: one pass, nearest centres, seeding and iterations against plain NumPy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import pairwise_distances_argmin_min

from custseg.engine import lloyd


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks and segments of a few rows, so small data cross many block and segment boundaries."""
    monkeypatch.setattr(lloyd, "BLOCK_ROWS", 64)
    monkeypatch.setattr(lloyd, "SEGMENT_ROWS", 300)


def _data(n=2_000, p=5, dtype=np.float64, seed=0):
    X, _ = make_blobs(n, p, centers=4, cluster_std=2.0, random_state=seed)
    return X.astype(dtype)


def _reference_sums(X, C):
    labels = ((X[:, None, :].astype(np.float64) - C[None]) ** 2).sum(-1).argmin(1)
    sums = np.zeros_like(C)
    np.add.at(sums, labels, X.astype(np.float64))
    return sums, np.bincount(labels, minlength=len(C))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pass_sums_match_numpy(small_blocks, dtype):
    X = _data(dtype=dtype)
    C = X[[0, 500, 1000, 1500]].astype(np.float64)
    with lloyd.Pool(2) as pool:
        sums, counts, squares = lloyd.pass_sums(X, C, pool, with_squares=True)
    ref_sums, ref_counts = _reference_sums(X, C)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-6, atol=1e-6)
    assert squares == pytest.approx(float((X.astype(np.float64) ** 2).sum()), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_matches_sklearn(small_blocks, dtype):
    X = _data(dtype=dtype)
    C = _data(n=6, seed=3)
    with lloyd.Pool(2) as pool:
        labels, dist = lloyd.nearest(X, C, pool)
    ref_labels, ref_dist = pairwise_distances_argmin_min(X.astype(np.float64), C)
    assert labels.dtype == np.int64 and dist.dtype == np.float64
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5)


def test_results_do_not_depend_on_threads(small_blocks):
    X = _data(dtype=np.float32)
    C = X[[1, 2, 3, 4]].astype(np.float64)
    results = []
    for threads in (1, 2, 3):
        with lloyd.Pool(threads) as pool:
            results.append(lloyd.lloyd(lambda: lloyd.one_pass(X), C, pool).centres.tobytes())
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lloyd_follows_sklearn_iterations(small_blocks, dtype):
    X = _data(n=3_000, p=6, dtype=dtype, seed=1)
    C0 = X[np.random.default_rng(0).choice(len(X), 5, replace=False)].astype(np.float64)
    km = KMeans(5, init=C0, n_init=1).fit(X)
    with lloyd.Pool(2) as pool:
        run = lloyd.lloyd(lambda: lloyd.one_pass(X), C0, pool)
        inertia, labels = lloyd.inertia_and_labels(lambda: lloyd.one_pass(X), run.centres, pool, keep_labels=True)
    assert run.n_iter == km.n_iter_
    assert abs(inertia - km.inertia_) / km.inertia_ <= 1e-5
    np.testing.assert_allclose(run.centres, km.cluster_centers_, atol=1e-4)
    np.testing.assert_array_equal(labels, km.labels_)
    assert run.tol == pytest.approx(1e-4 * X.astype(np.float64).var(axis=0).mean(), rel=1e-6)


def test_empty_cluster_takes_the_farthest_row(small_blocks):
    X = _data(n=1_000, p=3, seed=2)
    C0 = np.vstack([X[:3], [[1e3, 1e3, 1e3]]])  # the far centre wins no row on the first pass
    km = KMeans(4, init=C0, n_init=1).fit(X)
    with lloyd.Pool(2) as pool:
        run = lloyd.lloyd(lambda: lloyd.one_pass(X), C0, pool)
        inertia, _ = lloyd.inertia_and_labels(lambda: lloyd.one_pass(X), run.centres, pool, keep_labels=False)
    assert np.isfinite(run.centres).all()
    assert abs(inertia - km.inertia_) / km.inertia_ <= 1e-6


def test_non_finite_values_are_refused():
    X = _data(n=200)
    X[17, 2] = np.nan
    with lloyd.Pool(1) as pool, pytest.raises(ValueError, match="NaN"):
        lloyd.lloyd(lambda: lloyd.one_pass(X), X[:3], pool)


def test_check_matrix_keeps_conforming_arrays():
    X = np.zeros((10, 3), dtype=np.float32)
    assert lloyd.check_matrix(X) is X
    assert lloyd.check_matrix(np.zeros((10, 3), dtype=np.int64)).dtype == np.float64
    assert lloyd.check_matrix(np.zeros((3, 10)).T).flags.c_contiguous
    with pytest.raises(ValueError, match="2-D"):
        lloyd.check_matrix(np.zeros(5))


def test_seeding_samples_and_is_deterministic():
    X = _data(n=5_000)
    a = lloyd.seed_centres(X, 4, np.random.default_rng(7), sample=500)
    b = lloyd.seed_centres(X, 4, np.random.default_rng(7), sample=500)
    c = lloyd.seed_centres(X, 4, np.random.default_rng(8), sample=500)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rows = {tuple(r) for r in X}
    assert all(tuple(r) in rows for r in a)  # k-means++ picks data rows


def test_seeding_puts_one_centre_in_each_separate_blob():
    X, truth = make_blobs(3_000, 4, centers=6, cluster_std=0.5, center_box=(-100, 100), random_state=4)
    for seed in range(5):
        centres = lloyd.seed_centres(X, 6, np.random.default_rng(seed), sample=2_000)
        blobs = {int(truth[np.flatnonzero((X == c).all(axis=1))[0]]) for c in centres}
        assert blobs == set(range(6))  # greedy k-means++ draws each next centre far from the chosen ones


def test_start_centres_refine_the_seeding_on_the_sample():
    X, _ = make_blobs(20_000, 5, centers=7, cluster_std=3.0, random_state=3)
    with lloyd.Pool(2) as pool:
        start = lloyd.start_centres(X, 7, np.random.default_rng(0), pool, sample=5_000)
        rng = np.random.default_rng(0)  # the same draws: the sample, then its k-means++ seeding
        sample = X[np.sort(rng.choice(len(X), size=5_000, replace=False))]
        seeded = lloyd.seed_centres(sample, 7, rng)
        np.testing.assert_array_equal(start, lloyd.lloyd_in_memory(sample, seeded, pool).centres)
        refined, direct = lloyd.lloyd_in_memory(X, start, pool), lloyd.lloyd_in_memory(X, seeded, pool)
        small = X[:2_000]  # no more rows than the sample: k-means++ alone
        np.testing.assert_array_equal(lloyd.start_centres(small, 7, np.random.default_rng(1), pool, sample=2_000),
                                      lloyd.seed_centres(small, 7, np.random.default_rng(1), sample=2_000))
    assert refined.n_iter <= direct.n_iter / 2  # the fit on all rows starts near its fixed point
    assert refined.inertia <= direct.inertia * (1 + 1e-3)


def _plain_fit(X, C0, threads=2):
    with lloyd.Pool(threads) as pool:
        run = lloyd.lloyd(lambda: lloyd.one_pass(X), C0, pool)
        inertia, labels = lloyd.inertia_and_labels(lambda: lloyd.one_pass(X), run.centres, pool, keep_labels=True)
    return run, inertia, labels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_memory_lloyd_equals_plain_lloyd_and_sklearn(small_blocks, dtype):
    X = _data(n=3_000, p=6, dtype=dtype, seed=1)
    C0 = X[np.random.default_rng(0).choice(len(X), 5, replace=False)].astype(np.float64)
    run, inertia, labels = _plain_fit(X, C0)
    km = KMeans(5, init=C0, n_init=1).fit(X)
    with lloyd.Pool(2) as pool:
        mem = lloyd.lloyd_in_memory(X, C0, pool)
    assert mem.n_iter == run.n_iter == km.n_iter_ and mem.tol == run.tol
    np.testing.assert_array_equal(mem.labels, labels)
    np.testing.assert_array_equal(mem.labels, km.labels_)
    np.testing.assert_allclose(mem.centres, run.centres, rtol=0, atol=1e-12)
    assert mem.inertia == pytest.approx(inertia, rel=1e-12)  # Σ‖x‖² - 2Σc·S + Σn‖c‖² = the distances' sum
    assert mem.labels.dtype == np.int64


def test_in_memory_lloyd_does_not_depend_on_threads(small_blocks):
    X = _data(n=2_500, dtype=np.float32)
    C0 = X[[1, 2, 3, 4]].astype(np.float64)
    fits = []
    for threads in (1, 2, 3):
        with lloyd.Pool(threads) as pool:
            fits.append(lloyd.lloyd_in_memory(X, C0, pool))
    assert len({f.centres.tobytes() + f.labels.tobytes() + np.float64(f.inertia).tobytes() for f in fits}) == 1


def test_in_memory_lloyd_relocates_empty_clusters_like_sklearn(small_blocks):
    X = _data(n=1_000, p=3, seed=2)
    C0 = np.vstack([X[:3], [[1e3, 1e3, 1e3]]])  # the far centre wins no row on the first pass
    km = KMeans(4, init=C0, n_init=1).fit(X)
    _, inertia, labels = _plain_fit(X, C0)
    with lloyd.Pool(2) as pool:
        mem = lloyd.lloyd_in_memory(X, C0, pool)
    assert np.bincount(mem.labels, minlength=4).min() > 0
    np.testing.assert_array_equal(mem.labels, labels)
    assert mem.inertia == pytest.approx(inertia, rel=1e-12)
    assert abs(mem.inertia - km.inertia_) / km.inertia_ <= 1e-6


def test_in_memory_lloyd_with_one_centre_and_duplicate_rows(small_blocks):
    X = np.repeat(_data(n=200, p=4, seed=5), 3, axis=0)  # every row three times
    with lloyd.Pool(2) as pool:
        one = lloyd.lloyd_in_memory(X, X[:1].astype(np.float64), pool)
        dup = lloyd.lloyd_in_memory(X, X[[0, 1, 2, 3]].astype(np.float64), pool)
    np.testing.assert_allclose(one.centres[0], X.mean(axis=0), rtol=1e-12)
    assert one.n_iter == 2 and (one.labels == 0).all()  # one move to the mean, then no shift
    assert one.inertia == pytest.approx(float(((X - X.mean(axis=0)) ** 2).sum()), rel=1e-10)
    assert (dup.labels.reshape(-1, 3) == dup.labels[::3, None]).all()  # copies of a row share its centre
    km = KMeans(4, init=X[[0, 1, 2, 3]], n_init=1).fit(X)
    assert abs(dup.inertia - km.inertia_) / km.inertia_ <= 1e-6


def test_in_memory_lloyd_refuses_non_finite_values():
    X = _data(n=200)
    X[17, 2] = np.inf
    with lloyd.Pool(1) as pool, pytest.raises(ValueError, match="NaN"):
        lloyd.lloyd_in_memory(X, X[:3], pool)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("until", [0.4, 0.0], ids=["stay-bounded", "switch-back"])
def test_bounded_passes_give_the_plain_iterates(small_blocks, monkeypatch, dtype, until):
    """Hamerly's bounds from the second pass on (and, with `until` = 0, dropped and rebuilt) change nothing."""
    monkeypatch.setattr(lloyd, "BOUNDS_FROM", 1.0)
    monkeypatch.setattr(lloyd, "BOUNDS_UNTIL", until)
    X, _ = make_blobs(4_000, 5, centers=6, cluster_std=3.0, random_state=7)  # overlapping: rows change late
    X = X.astype(dtype)
    C0 = X[np.random.default_rng(1).choice(len(X), 6, replace=False)].astype(np.float64)
    run, inertia, labels = _plain_fit(X, C0)
    fits = []
    for threads in (1, 3):
        with lloyd.Pool(threads) as pool:
            fits.append(lloyd.lloyd_in_memory(X, C0, pool))
    mem = fits[0]
    assert min(mem.computed) < len(X)  # some passes skipped rows
    assert mem.n_iter == run.n_iter
    np.testing.assert_array_equal(mem.labels, labels)
    np.testing.assert_allclose(mem.centres, run.centres, rtol=0, atol=1e-12)
    assert mem.inertia == pytest.approx(inertia, rel=1e-12)
    assert fits[0].centres.tobytes() == fits[1].centres.tobytes()
    assert fits[0].computed == fits[1].computed


def test_bounded_passes_relocate_empty_clusters(small_blocks, monkeypatch):
    monkeypatch.setattr(lloyd, "BOUNDS_FROM", 1.0)
    X = _data(n=1_000, p=3, seed=2)
    C0 = np.vstack([X[:3], X[:1] + 1e-9, [[1e3, 1e3, 1e3]]])  # two centres empty: one far, one a twin
    _, inertia, labels = _plain_fit(X, C0)
    with lloyd.Pool(2) as pool:
        mem = lloyd.lloyd_in_memory(X, C0, pool)
    np.testing.assert_array_equal(mem.labels, labels)
    assert mem.inertia == pytest.approx(inertia, rel=1e-12)
