"""KMeansCore: scikit-learn's own estimator checks, and exactly KMeans' answer."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import SkipTest

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from custseg import KMeansCore
from custseg.engine import single_threaded_kmeans
from custseg.errors import CustsegError


@parametrize_with_checks([KMeansCore()])
def test_sklearn_estimator_checks(estimator, check):
    try:
        check(estimator)
    except SkipTest as skip:
        # scikit-learn runs its array-API check only when SciPy was imported with SCIPY_ARRAY_API set
        if "SCIPY_ARRAY_API" not in str(skip):
            raise
        _run_with_array_api(check)


def _run_with_array_api(check):
    code = (f"from sklearn.utils.estimator_checks import {check.func.__name__} as check\n"
            f"from custseg import KMeansCore\n"
            f"check(*{check.args!r}, KMeansCore(), **{check.keywords!r})\n")
    env = {**os.environ, "SCIPY_ARRAY_API": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(400, n_features=5, centers=4, cluster_std=2.0, random_state=2)[0]


def test_reproduces_kmeans_with_the_same_int_seed(blobs):
    ours = KMeansCore(n_clusters=4, n_init=5, random_state=7).fit(blobs)
    with single_threaded_kmeans():  # OpenMP's reduction order changes the last bits
        ref = KMeans(n_clusters=4, n_init=5, random_state=7).fit(blobs)
    np.testing.assert_array_equal(ours.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == ref.inertia_ and ours.n_iter_ == ref.n_iter_


def test_predict_transform_score_agree(blobs):
    core = KMeansCore(n_clusters=4, n_init=2, random_state=0).fit(blobs)
    D = core.transform(blobs)
    assert D.shape == (400, 4)
    np.testing.assert_array_equal(core.predict(blobs), D.argmin(axis=1))
    np.testing.assert_array_equal(core.predict(blobs), core.labels_)
    assert core.score(blobs) == pytest.approx(-core.inertia_)


@pytest.mark.parametrize("seed", [np.random.RandomState(3), np.random.default_rng(3),
                                  np.random.SeedSequence(3)])
def test_accepts_generators_and_seed_sequences(blobs, seed):
    core = KMeansCore(n_clusters=4, n_init=2, random_state=seed).fit(blobs)
    assert core.cluster_centers_.shape == (4, 5)


def test_dataframe_names_are_kept(blobs):
    frame = pd.DataFrame(blobs, columns=[f"f{i}" for i in range(5)])
    core = KMeansCore(n_clusters=3, n_init=1, random_state=0).fit(frame)
    assert list(core.feature_names_in_) == list(frame.columns)


@pytest.mark.parametrize("params, match", [({"n_clusters": 0}, "n_clusters"), ({"n_init": 0}, "n_init"),
                                           ({"n_clusters": 500}, "n_samples=400")])
def test_bad_parameters_raise(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        KMeansCore(**params).fit(blobs)


def test_unknown_engine_is_a_user_error(blobs):
    with pytest.raises(CustsegError, match="unknown engine 'nope'"):
        KMeansCore(engine="nope").fit(blobs)
