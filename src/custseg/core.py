"""``KMeansCore``: k-means on a plain numeric matrix, through custseg's engine and seeding.

The domain :class:`~custseg.segmenter.Segmenter` (named card columns, features,
evidence for k) wraps it; on its own it is an ordinary scikit-learn clusterer that
passes scikit-learn's estimator checks.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils.validation import check_is_fitted, validate_data

from .engine import get_engine
from .seeds import as_int


class KMeansCore(ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means (best of ``n_init`` k-means++ starts) on a numeric matrix.

    With the default engine and an int ``random_state`` it gives exactly what
    scikit-learn's ``KMeans`` gives with the same ``n_clusters``, ``n_init`` and
    ``random_state``, run with k-means' OpenMP loops on one thread.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    n_init : int, default=10
        k-means++ restarts; the one with the lowest inertia is kept.
    random_state : None, int, RandomState, Generator or SeedSequence, default=None
        Seed of the k-means++ starts (see :func:`custseg.seeds.as_int`).
    engine : str or Engine, default="sklearn"
        The engine that computes the fit and the assignments (:func:`custseg.engine.get_engine`).

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
        Nearest centre of each training row.
    inertia_ : float
        Sum of squared distances of the training rows to their centre.
    n_iter_ : int
        Iterations of the best restart.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    """

    def __init__(self, n_clusters=8, *, n_init=10, random_state=None, engine="sklearn"):
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.random_state = random_state
        self.engine = engine

    def fit(self, X, y=None):
        """Compute the centres.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=np.float64, order="C")
        k = _positive_int("n_clusters", self.n_clusters)
        n_init = _positive_int("n_init", self.n_init)
        if len(X) < k:
            raise ValueError(f"n_samples={len(X)} should be >= n_clusters={k}.")
        engine = get_engine(self.engine)
        fit = engine.fit(X, k, n_init=n_init, seed=as_int(self.random_state))
        self.cluster_centers_ = np.asarray(fit.centres, dtype=np.float64)
        self.labels_ = fit.labels if fit.labels is not None else engine.assign(X, self.cluster_centers_)[0]
        self.inertia_ = float(fit.inertia)
        self.n_iter_ = int(fit.n_iter)
        return self

    def predict(self, X):
        """Nearest centre of each row."""
        return self._assign(X)[0]

    def transform(self, X):
        """Euclidean distance of each row to each centre, shape (n_samples, n_clusters)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, order="C", reset=False)
        return euclidean_distances(X, self.cluster_centers_)

    def score(self, X, y=None):
        """Negative sum of squared distances of ``X`` to the nearest centre (higher is better)."""
        return -float(np.sum(self._assign(X)[1] ** 2))

    def _assign(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, order="C", reset=False)
        return get_engine(self.engine).assign(X, self.cluster_centers_)


def _positive_int(name, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)
