"""The in-memory engine: scikit-learn's k-means, one OpenMP thread per fit.

Every clustering algorithm custseg fits is constructed here: k-means for the
evidence, the final fit and the bootstrap, and the alternatives that
``custseg compare-models`` sets beside it (:func:`alternative`), including the
Gaussian mixture that also gives the evidence its BIC (:func:`gaussian_mixture`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import lru_cache

import numpy as np
from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.mixture import GaussianMixture
from threadpoolctl import ThreadpoolController

from custseg.seeds import SeedLike, as_int

from .base import Engine, Fit, Seed

#: Covariance model of every Gaussian mixture (see ``docs/evidence.md`` for why diagonal).
GMM_COVARIANCE = "diag"
#: The alternatives :func:`alternative` builds, by the name ``compare-models`` shows.
ALTERNATIVES = ("MiniBatchKMeans", "BisectingKMeans", "GaussianMixture")


class SklearnEngine(Engine):
    """k-means with scikit-learn on an array held in memory.

    ``fit(X, k, n_init=n, seed=s)`` is ``KMeans(n_clusters=k, n_init=n,
    random_state=s).fit(X)`` when ``s`` is an int (a ``SeedSequence`` is turned into
    one int first), run with k-means' OpenMP loops on one thread
    (:func:`single_threaded_kmeans`). ``assign`` is
    ``sklearn.metrics.pairwise_distances_argmin_min``.
    """

    name = "sklearn"

    def fit(self, X: np.ndarray, k: int, *, n_init: int, seed: Seed, init: np.ndarray | None = None) -> Fit:
        if init is None:
            model = KMeans(n_clusters=k, n_init=n_init, random_state=as_int(seed))
        else:
            model = KMeans(n_clusters=k, init=np.asarray(init, dtype=np.float64), n_init=1,
                           random_state=as_int(seed))
        with single_threaded_kmeans():
            model.fit(X)
        return Fit(centres=model.cluster_centers_, inertia=float(model.inertia_), n_iter=int(model.n_iter_),
                   labels=model.labels_)

    def assign(self, X: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels, dist = pairwise_distances_argmin_min(X, centres)
        return labels.astype(np.int64), dist


def alternative(name: str, k: int, seed: SeedLike):
    """An unfitted scikit-learn clusterer for ``compare-models``; fit it inside :func:`single_threaded_kmeans`.

    ``"MiniBatchKMeans"`` (3 restarts, batches of 1,024), ``"BisectingKMeans"``
    (largest-cluster splitting) or ``"GaussianMixture"`` (:func:`gaussian_mixture`).
    """
    if name == "MiniBatchKMeans":
        return MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=1024, random_state=as_int(seed))
    if name == "BisectingKMeans":
        return BisectingKMeans(n_clusters=k, random_state=as_int(seed))
    if name == "GaussianMixture":
        return gaussian_mixture(k, seed)
    raise ValueError(f"unknown alternative {name!r}; expected one of {ALTERNATIVES}")


def gaussian_mixture(k: int, seed: SeedLike, *, means_init: np.ndarray | None = None,
                     max_iter: int = 100) -> GaussianMixture:
    """An unfitted diagonal-covariance Gaussian mixture with ``k`` components."""
    return GaussianMixture(n_components=k, covariance_type=GMM_COVARIANCE, means_init=means_init,
                           random_state=as_int(seed), max_iter=max_iter)


def single_threaded_kmeans() -> AbstractContextManager:
    """Run k-means' OpenMP loops on one thread (BLAS keeps its threads).

    The many short k-means fits of selection, gap references and bootstrap spend
    more time synchronising threads than computing; on a busy machine OpenMP's
    spinning threads made a 20,000-customer run 10x slower (measured: 110 s against
    11 s single-threaded), while on an idle machine the selection benchmark took
    3.54 s single-threaded against 3.64 s with default threads.
    """
    return _controller().limit(limits=1, user_api="openmp")


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # Inspecting the loaded libraries costs milliseconds; do it once, after scikit-learn loaded its OpenMP.
    return ThreadpoolController()
