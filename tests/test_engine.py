"""The engine seam: the scikit-learn engine reproduces KMeans, and it is the only place that builds one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_info

from custseg.engine import Engine, SklearnEngine, alternative, default_engine, get_engine, single_threaded_kmeans
from custseg.errors import CustsegError

SRC = Path(__file__).resolve().parents[1] / "src" / "custseg"


@pytest.fixture(scope="module")
def X():
    return make_blobs(300, n_features=4, centers=3, cluster_std=1.5, random_state=0)[0]


def test_fit_is_kmeans_with_the_same_int_seed(X):
    fit = SklearnEngine().fit(X, 3, n_init=4, seed=11)
    with single_threaded_kmeans():
        ref = KMeans(n_clusters=3, n_init=4, random_state=11).fit(X)
    np.testing.assert_array_equal(fit.centres, ref.cluster_centers_)
    np.testing.assert_array_equal(fit.labels, ref.labels_)
    assert fit.inertia == ref.inertia_ and fit.n_iter == ref.n_iter_


def test_seed_sequence_is_deterministic_and_init_starts_there(X):
    engine = SklearnEngine()
    a = engine.fit(X, 3, n_init=2, seed=np.random.SeedSequence(5))
    b = engine.fit(X, 3, n_init=2, seed=np.random.SeedSequence(5))
    np.testing.assert_array_equal(a.centres, b.centres)
    warm = engine.fit(X, 3, n_init=1, seed=0, init=a.centres)
    np.testing.assert_allclose(warm.centres, a.centres)  # already converged: stays put
    assert warm.n_iter == 1


def test_assign_gives_nearest_centre_and_distance(X):
    engine = SklearnEngine()
    centres = X[:3]
    labels, dist = engine.assign(X, centres)
    D = np.linalg.norm(X[:, None, :] - centres[None], axis=-1)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, D.argmin(axis=1))
    np.testing.assert_allclose(dist, D.min(axis=1), atol=1e-10)


def test_fit_batches_converges_to_the_in_memory_answer(X):
    engine = SklearnEngine()
    start = X[[0, 100, 200]]
    batched = engine.fit_batches(lambda: (X[i:i + 70] for i in range(0, len(X), 70)), 3, init=start)
    ref = engine.fit(X, 3, n_init=1, seed=0, init=start)
    np.testing.assert_allclose(batched.centres, ref.centres, atol=1e-8)
    assert batched.labels is None
    # the last pass measures the inertia just before its final (tiny) move
    assert batched.inertia == pytest.approx(ref.inertia, rel=1e-3)


def test_engines_by_name():
    assert isinstance(default_engine(), SklearnEngine) and default_engine().name == "sklearn"
    mine = SklearnEngine()
    assert get_engine(mine) is mine
    assert isinstance(get_engine("sklearn"), Engine)
    assert get_engine("spark").name == "spark"  # built without starting Spark
    with pytest.raises(CustsegError, match="unknown engine 'dask'.*sklearn"):
        get_engine("dask")


def test_alternatives_are_built_here():
    assert isinstance(alternative("MiniBatchKMeans", 4, 0), MiniBatchKMeans)
    assert isinstance(alternative("BisectingKMeans", 4, 0), BisectingKMeans)
    gmm = alternative("GaussianMixture", 4, np.random.SeedSequence(1))
    assert isinstance(gmm, GaussianMixture) and gmm.covariance_type == "diag" and gmm.n_components == 4
    with pytest.raises(ValueError, match="unknown alternative"):
        alternative("KMedoids", 4, 0)


def test_single_threaded_kmeans_limits_openmp():
    with single_threaded_kmeans():
        openmp = [lib for lib in threadpool_info() if lib["user_api"] == "openmp"]
        assert openmp and all(lib["num_threads"] == 1 for lib in openmp)


def test_only_the_engine_constructs_clustering_algorithms():
    pattern = re.compile(r"\b(KMeans|MiniBatchKMeans|BisectingKMeans|GaussianMixture)\(")
    users = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if pattern.search(p.read_text()))
    assert users == ["engine/sklearn.py"]
