"""The compiled small-data k-means: scikit-learn's arithmetic, its own random draws, any number of threads."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, pairwise_distances_argmin_min

from custseg.engine import SklearnEngine
from custseg.engine.chunked import ChunkedEngine
from custseg.engine.small import SMALL_MAX_N, SmallEngine, for_small, restart_seeds


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8, size=(5, 6))
    truth = rng.integers(0, 5, 2_000)
    return centres[truth] + rng.normal(size=(2_000, 6)), truth


@pytest.fixture(scope="module")
def haze():
    """No structure: where restarts disagree and the best of several matters."""
    return np.random.default_rng(1).normal(size=(3_000, 5))


def test_clear_blobs_are_found(blobs):
    X, truth = blobs
    fit = SmallEngine().fit(X, 5, n_init=3, seed=0)
    assert adjusted_rand_score(truth, fit.labels) == 1.0
    assert fit.centres.shape == (5, 6) and fit.n_iter >= 1
    assert fit.inertia == pytest.approx(float(((X - fit.centres[fit.labels]) ** 2).sum()), rel=1e-9)


def test_inertia_matches_scikit_learns_best_of_restarts(haze):
    ours = SmallEngine().fit(haze, 6, n_init=10, seed=0).inertia
    theirs = KMeans(6, n_init=10, random_state=0).fit(haze).inertia_
    assert ours == pytest.approx(theirs, rel=0.01)


def test_lloyd_from_given_centres_is_scikit_learns(haze):
    init = haze[:7].copy()
    ours = SmallEngine().fit(haze, 7, n_init=1, seed=0, init=init)
    theirs = KMeans(7, init=init, n_init=1, algorithm="lloyd").fit(haze)
    np.testing.assert_allclose(ours.centres, theirs.cluster_centers_, atol=1e-9)
    assert np.array_equal(ours.labels, theirs.labels_)
    assert init.tolist() == haze[:7].tolist()  # the caller's centres are not moved in place


def test_same_seed_same_fit_and_seeds_differ(haze):
    a = SmallEngine().fit(haze, 4, n_init=2, seed=3)
    b = SmallEngine().fit(haze, 4, n_init=2, seed=np.random.SeedSequence(3))
    c = SmallEngine().fit(haze, 4, n_init=1, seed=4)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert not np.array_equal(a.centres, c.centres)


def test_an_empty_cluster_takes_the_farthest_row(blobs):
    X, _ = blobs
    init = np.vstack([X[:4], np.full((1, X.shape[1]), 1e6)])  # no row is nearest to the last centre
    fit = SmallEngine().fit(X, 5, n_init=1, seed=0, init=init)
    assert np.isfinite(fit.centres).all()
    assert np.bincount(fit.labels, minlength=5).min() >= 1


def test_assign_is_the_nearest_centre(haze):
    centres = haze[:5] + 0.1
    labels, dist = SmallEngine().assign(haze, centres)
    want_labels, want_dist = pairwise_distances_argmin_min(haze, centres)
    assert np.array_equal(labels, want_labels)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-10)


def test_fits_side_by_side_on_threads_equal_fits_one_after_another(haze):
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(haze[i::3], k, dict(n_init=2, seed=i)) for i, k in enumerate((2, 3, 4, 5, 3))]
    engine = SmallEngine(n_threads=1)
    one = [engine.fit(X, k, **kw) for X, k, kw in jobs]
    with ThreadPoolExecutor(2) as pool:  # the kernels release the GIL: the selection's tasks fit like this
        two = list(pool.map(lambda job: engine.fit(job[0], job[1], **job[2]), jobs))
    for (X, k, kw), a, b in zip(jobs, one, two):
        np.testing.assert_array_equal(a.centres, SmallEngine().fit(X, k, **kw).centres)
        np.testing.assert_array_equal(a.centres, b.centres)
        assert a.inertia == b.inertia


def test_bad_arguments_raise(haze):
    with pytest.raises(ValueError, match="k must be"):
        SmallEngine().fit(haze, 0, n_init=1, seed=0)
    with pytest.raises(ValueError, match="n_init"):
        SmallEngine().fit(haze, 2, n_init=0, seed=0)
    with pytest.raises(ValueError, match="centres"):
        SmallEngine().fit(haze, 2, n_init=1, seed=0, init=np.zeros((3, 5)))


def test_only_stock_local_engines_give_way_and_only_for_small_data():
    assert isinstance(for_small(SklearnEngine(), 10_000), SmallEngine)
    assert isinstance(for_small(ChunkedEngine(), SMALL_MAX_N), SmallEngine)
    big = ChunkedEngine()
    assert for_small(big, SMALL_MAX_N + 1) is big

    class Own(SklearnEngine):
        pass

    own = Own()
    assert for_small(own, 100) is own


def test_a_seed_sequence_is_not_consumed_by_a_fit(haze):
    seq = np.random.SeedSequence(7)
    first = SmallEngine().fit(haze, 4, n_init=2, seed=seq)
    again = SmallEngine().fit(haze, 4, n_init=2, seed=seq)
    assert seq.n_children_spawned == 0
    np.testing.assert_array_equal(first.centres, again.centres)
    np.testing.assert_array_equal(first.centres, SmallEngine().fit(haze, 4, n_init=2, seed=7).centres)


def test_restart_seeds_are_the_children_spawn_would_give_next():
    advanced = np.random.SeedSequence(3)
    advanced.spawn(4)
    ours = restart_seeds(advanced, 2)
    theirs = advanced.spawn(2)
    assert [s.spawn_key for s in ours] == [s.spawn_key for s in theirs] == [(4,), (5,)]
    assert [s.generate_state(2).tolist() for s in ours] == [s.generate_state(2).tolist() for s in theirs]


def test_for_small_can_give_a_single_threaded_engine():
    one = for_small(SklearnEngine(), 1_000, n_threads=1)
    assert isinstance(one, SmallEngine) and one.n_threads == 1
    assert for_small(SklearnEngine(), 1_000) is for_small(ChunkedEngine(), 1_000)  # the shared one
    big = SklearnEngine()
    assert for_small(big, SMALL_MAX_N + 1, n_threads=1) is big
