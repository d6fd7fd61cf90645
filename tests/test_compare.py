"""compare_models: six rows, sane values, KMeans agrees with itself."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

from custseg.compare import COLUMNS, MODELS, compare_models, n_steps
from custseg.errors import CustsegError


@pytest.fixture(autouse=True)
def one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(240, n_features=4, centers=3, cluster_std=1.0, random_state=1)
    return X, y


@pytest.fixture(scope="module")
def table(blobs):
    with threadpool_limits(1):
        return compare_models(blobs[0], 3, n_boot=4)


def test_six_rows_in_order_with_documented_columns(table):
    assert list(table.columns) == list(COLUMNS)
    assert list(table["model"]) == list(MODELS)
    assert len(table) == 6


def test_values_are_sane_on_clear_blobs(table, blobs):
    km = table.set_index("model").loc["KMeans"]
    assert km["ari_vs_kmeans"] == pytest.approx(1.0)
    assert km["n_segments"] == 3 and km["noise_share"] == 0
    assert table["silhouette"].between(-1, 1).all()
    assert (table["calinski_harabasz"] > 0).all() and (table["davies_bouldin"] > 0).all()
    assert table["stability"].between(0, 1).all()
    assert table["noise_share"].between(0, 1).all()
    assert (table["fit_seconds"] >= 0).all()
    # Every method recovers three clear blobs.
    fixed = table[table["model"] != "HDBSCAN"]
    assert (fixed["n_segments"] == 3).all()
    assert (fixed["ari_vs_kmeans"] > 0.95).all()
    assert (fixed["stability"] > 0.9).all()


def test_reference_labels_and_sampling_for_ward():
    X, y = make_blobs(300, n_features=3, centers=4, random_state=3)
    ref = KMeans(4, n_init=10, random_state=0).fit(X).labels_
    out = compare_models(X, 4, n_boot=0, sample_max=120, reference_labels=ref).set_index("model")
    assert out.loc["KMeans", "ari_vs_kmeans"] == pytest.approx(1.0)
    assert out["stability"].isna().all()  # n_boot=0 skips it
    assert out.loc["AgglomerativeWard", "n_segments"] == 4
    assert out.loc["AgglomerativeWard", "ari_vs_kmeans"] > 0.9


def test_hdbscan_reports_noise_on_uniform_background():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(120, 2)) * 0.3, rng.normal(size=(120, 2)) * 0.3 + 6,
                   rng.uniform(-4, 10, size=(60, 2))])
    row = compare_models(X, 2, n_boot=0).set_index("model").loc["HDBSCAN"]
    assert row["n_segments"] >= 2
    assert 0.05 < row["noise_share"] < 0.5


def test_deterministic_except_timing(blobs):
    a = compare_models(blobs[0], 3, n_boot=2, random_state=4).drop(columns="fit_seconds")
    b = compare_models(blobs[0], 3, n_boot=2, random_state=4).drop(columns="fit_seconds")
    assert a.equals(b)


def test_kmeans_row_is_the_engine_fit_and_any_seed_form_works(blobs):
    from custseg.compare import fit_predict
    from custseg.engine import SklearnEngine

    X = blobs[0]
    labels = fit_predict("KMeans", X, 3, 5, 10_000)
    np.testing.assert_array_equal(labels, SklearnEngine().fit(X, 3, n_init=10, seed=5).labels)
    out = compare_models(X, 3, n_boot=0, random_state=np.random.default_rng(0)).set_index("model")
    assert list(out.index) == list(MODELS) and (out.loc[["KMeans", "MiniBatchKMeans"], "n_segments"] == 3).all()


def test_progress_and_errors(blobs):
    class Count:
        n = 0

        def update(self, n=1):
            self.n += n

    bar = Count()
    compare_models(blobs[0], 3, n_boot=1, progress=bar)
    assert bar.n == n_steps(1)
    with pytest.raises(CustsegError, match="240 customers"):
        compare_models(blobs[0], 200)
