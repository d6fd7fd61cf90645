"""ChunkedEngine against scikit-learn: same inertia and labels from the same centres, deterministic, batches = memory."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, pairwise_distances_argmin_min

from custseg import datasets
from custseg.engine import lloyd
from custseg.engine.base import Engine
from custseg.engine.chunked import ChunkedEngine
from custseg.features import make_pipeline


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(lloyd, "BLOCK_ROWS", 256)
    monkeypatch.setattr(lloyd, "SEGMENT_ROWS", 1_000)


def _blobs(dtype, n=4_000, p=8, k=6):
    X, _ = make_blobs(n, p, centers=k, cluster_std=2.5, random_state=0)
    return X.astype(dtype)


def _real_like(dtype, n=4_000):
    frame, _ = datasets.generate(n, seed=3, quirks=True)
    return make_pipeline("behaviour").fit_transform(frame).to_numpy(dtype=dtype)


def _start(X, k, seed=0):
    return X[np.random.default_rng(seed).choice(len(X), k, replace=False)].astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [_blobs, _real_like], ids=["blobs", "real-like"])
def test_same_inertia_and_labels_as_sklearn(make, dtype):
    X = make(dtype)
    C0 = _start(X, 6)
    km = KMeans(6, init=C0, n_init=1).fit(X)
    fit = ChunkedEngine().fit(X, 6, n_init=1, seed=0, init=C0)
    assert abs(fit.inertia - km.inertia_) / km.inertia_ <= 1e-4
    assert adjusted_rand_score(km.labels_, fit.labels) >= 0.999
    assert fit.labels.dtype == np.int64 and fit.centres.shape == (6, X.shape[1])


def test_is_an_engine_named_chunked():
    assert isinstance(ChunkedEngine(), Engine) and ChunkedEngine.name == "chunked"


def test_same_seed_same_fit_and_restarts_pick_the_lowest_inertia():
    X = _real_like(np.float32)
    engine = ChunkedEngine(seed_sample=500)
    a = engine.fit(X, 5, n_init=3, seed=11)
    seq = np.random.SeedSequence(11)
    b = engine.fit(X, 5, n_init=3, seed=seq)
    assert a.centres.tobytes() == b.centres.tobytes() and a.labels.tobytes() == b.labels.tobytes()
    assert engine.fit(X, 5, n_init=3, seed=seq).centres.tobytes() == b.centres.tobytes()  # seq is not consumed
    with lloyd.Pool(2) as pool:
        starts = [lloyd.start_centres(X, 5, np.random.default_rng(ss), pool, sample=500)
                  for ss in np.random.SeedSequence(11).spawn(3)]
    singles = [engine.fit(X, 5, n_init=1, seed=0, init=start) for start in starts]
    assert a.inertia == min(f.inertia for f in singles)


def test_fit_batches_equals_the_in_memory_fit():
    X = _blobs(np.float32)
    C0 = _start(X, 6, seed=4)
    engine = ChunkedEngine()
    memory = engine.fit(X, 6, n_init=1, seed=0, init=C0)
    batched = engine.fit_batches(lambda: (X[lo:lo + 700] for lo in range(0, len(X), 700)), 6, init=C0,
                                 max_iter=300)
    assert batched.n_iter == memory.n_iter and batched.labels is None
    np.testing.assert_allclose(batched.centres, memory.centres, rtol=1e-9, atol=1e-9)
    assert batched.inertia == pytest.approx(memory.inertia, rel=1e-9)


def test_assign_matches_pairwise_distances_argmin_min():
    X = _real_like(np.float32)
    centres = _start(X, 7, seed=5)
    labels, dist = ChunkedEngine().assign(X, centres)
    ref_labels, ref_dist = pairwise_distances_argmin_min(X, centres)
    assert labels.dtype == np.int64 and dist.dtype == np.float64
    assert (labels == ref_labels).mean() >= 0.9999
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-5)


def test_bad_requests_are_refused():
    X = _blobs(np.float64, n=50)
    engine = ChunkedEngine()
    with pytest.raises(ValueError, match="k must be"):
        engine.fit(X, 51, n_init=1, seed=0)
    with pytest.raises(ValueError, match="centres"):
        engine.fit(X, 3, n_init=1, seed=0, init=X[:2])
    Y = X.copy()
    Y[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        engine.assign(Y, X[:3])
