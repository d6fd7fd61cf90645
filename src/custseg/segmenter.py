"""``Segmenter``: the feature pipeline and k-means as one scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .errors import CustsegError
from .features import make_pipeline, required_columns
from .load import Portfolio
from .selection import select_k


class Segmenter(ClusterMixin, TransformerMixin, BaseEstimator):
    """Segment card holders: domain features, then k-means with k chosen from evidence.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of segments. ``"auto"`` chooses it in ``[k_min, k_max]`` by the rule in
        :func:`custseg.selection.select_k`; the evidence for every k is computed either way.
    k_min, k_max : int, default=2, 10
        Range of k to evaluate.
    features : str or list of str, default="behaviour"
        Feature set for :func:`custseg.features.make_pipeline`.
    n_init : int, default=10
        k-means++ restarts per k; the best (lowest inertia) is kept.
    random_state : int, default=0
        Seed for every random step; the same data and seed give the same segments.
    silhouette_max_n : int, default=20000
        Above this many customers the silhouette is estimated on a sample.
    n_refs : int, default=10
        Reference data sets for the gap statistic.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted feature pipeline.
    n_clusters_ : int
        The number of segments used.
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Segment centres in the scaled feature space; segment 0 is the largest.
    labels_ : ndarray of shape (n_samples,)
        Segment of each training customer (0-based, by decreasing size).
    inertia_ : float
        Sum of squared distances of customers to their centre.
    selection_ : custseg.selection.Selection
        The evidence for each k and why ``n_clusters_`` was chosen.
    feature_names_out_ : ndarray of str
        Names of the model inputs.
    required_columns_ : tuple of str
        Canonical columns the data must have.
    """

    def __init__(self, n_clusters="auto", *, k_min=2, k_max=10, features="behaviour", n_init=10,
                 random_state=0, silhouette_max_n=20_000, n_refs=10):
        self.n_clusters = n_clusters
        self.k_min = k_min
        self.k_max = k_max
        self.features = features
        self.n_init = n_init
        self.random_state = random_state
        self.silhouette_max_n = silhouette_max_n
        self.n_refs = n_refs

    def fit(self, X, y=None, *, progress=None):
        """Learn the features and the segments from a portfolio.

        Parameters
        ----------
        X : DataFrame or Portfolio
            Canonical columns (as from :func:`custseg.quality.validate`).
        y : ignored
        progress : object with ``update(n)``, optional
            Advanced once per k evaluated and per bootstrap refit.
        """
        k_values, fixed = self._k_plan()
        frame = _frame(X)
        self.required_columns_ = required_columns(self.features)
        self.pipeline_ = make_pipeline(self.features).fit(frame)
        Z = self._embed(frame)
        with single_threaded_kmeans():
            self.selection_ = select_k(Z, k_values, fixed_k=fixed, n_init=self.n_init,
                                       random_state=self.random_state, silhouette_max_n=self.silhouette_max_n,
                                       n_refs=self.n_refs, progress=progress)
        km = self.selection_.models[self.selection_.chosen_k]
        order = np.argsort(-np.bincount(km.labels_, minlength=km.n_clusters), kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        self.n_clusters_ = int(km.n_clusters)
        self.cluster_centers_ = km.cluster_centers_[order].copy()
        self.labels_ = rank[km.labels_]
        self.inertia_ = float(km.inertia_)
        self.feature_names_out_ = np.asarray(self.pipeline_.get_feature_names_out(), dtype=object)
        self.n_features_in_ = len(self.required_columns_)
        return self

    def embed(self, X) -> np.ndarray:
        """Scaled model features of ``X`` (n_samples, n_features), as k-means sees them."""
        check_is_fitted(self, "pipeline_")
        return self._embed(_frame(X))

    def transform(self, X) -> np.ndarray:
        """Distance of each customer to each segment centre (n_samples, n_clusters_)."""
        return euclidean_distances(self.embed(X), self.cluster_centers_)

    def predict(self, X) -> np.ndarray:
        """Nearest segment of each customer."""
        return self.assign(X)[0]

    def assign(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Nearest segment and the distance to its centre, computed in chunks."""
        return self.nearest(self.embed(X))

    def nearest(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`assign`, for features already embedded with :meth:`embed`."""
        check_is_fitted(self, "cluster_centers_")
        labels, dist = pairwise_distances_argmin_min(Z, self.cluster_centers_)
        return labels.astype(np.int64), dist

    def score(self, X, y=None) -> float:
        """Negative inertia of ``X`` against the fitted centres (higher is better)."""
        return -float(np.sum(self.assign(X)[1] ** 2))

    def _embed(self, frame: pd.DataFrame) -> np.ndarray:
        absent = [c for c in self.required_columns_ if c not in frame.columns]
        if absent:
            raise CustsegError(f"the data lacks column(s) {', '.join(absent)} that this model needs")
        return np.ascontiguousarray(self.pipeline_.transform(frame).to_numpy(dtype=np.float64))

    def _k_plan(self) -> tuple[range, int | None]:
        if not (isinstance(self.k_min, (int, np.integer)) and isinstance(self.k_max, (int, np.integer))
                and 2 <= self.k_min <= self.k_max):
            raise CustsegError(f"the k range must satisfy 2 <= k_min <= k_max (got {self.k_min}..{self.k_max})")
        if self.n_clusters == "auto":
            return range(self.k_min, self.k_max + 1), None
        if isinstance(self.n_clusters, (int, np.integer)) and not isinstance(self.n_clusters, bool) \
                and self.n_clusters >= 2:
            return range(self.k_min, self.k_max + 1), int(self.n_clusters)
        raise CustsegError(f"n_clusters must be 'auto' or an integer of at least 2 (got {self.n_clusters!r})")


def single_threaded_kmeans():
    """Run k-means' OpenMP loops on one thread (BLAS keeps its threads).

    The many short k-means fits of selection, gap references and bootstrap spend
    more time synchronising threads than computing; on a busy machine OpenMP's
    spinning threads made a 20,000-customer run 10x slower (measured: 110 s against
    11 s single-threaded), while on an idle machine the selection benchmark took
    3.54 s single-threaded against 3.64 s with default threads.
    """
    return threadpool_limits(limits=1, user_api="openmp")


def _frame(X) -> pd.DataFrame:
    if isinstance(X, Portfolio):
        return X.frame
    if isinstance(X, pd.DataFrame):
        return X
    raise TypeError("Segmenter expects a DataFrame with canonical columns (see custseg.schema) or a Portfolio")


def needed_rows(n_clusters, k_max: int) -> int:
    """Fewest customers a fit can use: two per segment at the largest k evaluated."""
    top = max(k_max, n_clusters if isinstance(n_clusters, int) else 0)
    return 2 * top

