"""``Segmenter``: the feature pipeline, the choice of k and k-means as one scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.utils.validation import check_is_fitted

from . import seeds
from .core import KMeansCore
from .engine import get_engine
from .errors import CustsegError
from .settings import DEFAULTS
from .features import make_pipeline, required_columns
from .load import Portfolio
from .selection import check_size, fixed_k_without_evidence, select_k


class Segmenter(ClusterMixin, TransformerMixin, BaseEstimator):
    """Segment card holders: domain features, then k-means with k chosen from evidence.

    ``fit`` runs three steps: the feature pipeline; selection (the evidence for every
    k in ``[k_min, k_max]`` and the auto rule, :func:`custseg.selection.select_k`),
    unless k is fixed and the evidence is not asked for; and the final k-means fit
    at one k (:class:`custseg.core.KMeansCore`), with segments renumbered by size.

    Parameters
    ----------
    n_clusters : int or "auto", default="auto"
        Number of segments. ``"auto"`` chooses it in ``[k_min, k_max]`` by the rule in
        :func:`custseg.selection.choose_k`.
    k_min, k_max : int, default=2, 10
        Range of k to evaluate.
    features : str or list of str, default="behaviour"
        Feature set for :func:`custseg.features.make_pipeline`.
    n_init : int, default=10
        k-means++ restarts per k; the best (lowest inertia) is kept.
    random_state : None, int, RandomState, Generator or SeedSequence, default=0
        Seed for every random step; the same data and int seed give the same segments.
    silhouette_max_n : int, default=10000
        Above this many customers the silhouette is estimated on a sample.
    n_refs : int, default=10
        Reference data sets for the gap statistic.
    evidence : bool or None, default=None
        Compute the evidence for every k in the range. ``None`` means yes for
        ``"auto"`` (which needs it) and no for a fixed k, which then costs one fit.
    engine : str or Engine, default="sklearn"
        The clustering engine (:func:`custseg.engine.get_engine`).
    choice_boot : int, default=20
        Bootstrap refits per candidate k for the stability the choice rests on.
    choice_max_n : int, default=10000
        Customers drawn in each of those refits, at most.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted feature pipeline.
    core_ : custseg.core.KMeansCore
        The fitted k-means on the scaled features, its clusters renumbered by size.
    n_clusters_ : int
        The number of segments used.
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Segment centres in the scaled feature space; segment 0 is the largest.
    labels_ : ndarray of shape (n_samples,)
        Segment of each training customer (0-based, by decreasing size).
    inertia_ : float
        Sum of squared distances of customers to their centre.
    selection_ : custseg.selection.Selection
        The evidence for each k (when computed) and why ``n_clusters_`` was chosen.
    feature_names_out_ : ndarray of str
        Names of the model inputs.
    required_columns_ : tuple of str
        Canonical columns the data must have.
    """

    def __init__(self, n_clusters=DEFAULTS.k, *, k_min=DEFAULTS.k_min, k_max=DEFAULTS.k_max,
                 features=DEFAULTS.features, n_init=DEFAULTS.n_init, random_state=DEFAULTS.seed,
                 silhouette_max_n=DEFAULTS.silhouette_max_n, n_refs=DEFAULTS.n_refs, evidence=DEFAULTS.evidence,
                 engine=DEFAULTS.engine, choice_boot=DEFAULTS.choice_boot, choice_max_n=DEFAULTS.choice_max_n):
        self.n_clusters = n_clusters
        self.k_min = k_min
        self.k_max = k_max
        self.features = features
        self.n_init = n_init
        self.random_state = random_state
        self.silhouette_max_n = silhouette_max_n
        self.n_refs = n_refs
        self.evidence = evidence
        self.engine = engine
        self.choice_boot = choice_boot
        self.choice_max_n = choice_max_n

    def fit(self, X, y=None, *, progress=None):
        """Learn the features, choose k and fit the segments.

        Parameters
        ----------
        X : DataFrame or Portfolio
            Canonical columns (as from :func:`custseg.quality.validate`).
        y : ignored
        progress : object with ``update(n)``, optional
            Advanced :func:`custseg.selection.n_steps` times by the selection.
        """
        k_values, fixed = self._k_plan()
        with_evidence = self._with_evidence(fixed)
        seed = self._seed()
        engine = get_engine(self.engine)
        frame = _frame(X)
        self.required_columns_ = required_columns(self.features)
        self.pipeline_ = make_pipeline(self.features).fit(frame)
        Z = self._embed(frame)
        if with_evidence:
            self.selection_ = select_k(Z, k_values, fixed_k=fixed, engine=engine, n_init=self.n_init,
                                       random_state=seed, silhouette_max_n=self.silhouette_max_n,
                                       n_refs=self.n_refs, stability_boot=self.choice_boot,
                                       stability_max_n=self.choice_max_n, progress=progress)
        else:
            check_size(len(Z), [fixed])
            self.selection_ = fixed_k_without_evidence(fixed)
        core = KMeansCore(n_clusters=self.selection_.chosen_k, n_init=self.n_init, random_state=seed,
                          engine=engine).fit(Z)
        self.core_ = _by_size(core)
        self.n_clusters_ = int(self.core_.n_clusters)
        self.cluster_centers_ = self.core_.cluster_centers_
        self.labels_ = self.core_.labels_
        self.inertia_ = self.core_.inertia_
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
        return get_engine(self.engine).assign(Z, self.cluster_centers_)

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

    def _with_evidence(self, fixed: int | None) -> bool:
        if self.evidence is None:
            return fixed is None
        if not isinstance(self.evidence, (bool, np.bool_)):
            raise CustsegError(f"evidence must be True, False or None (got {self.evidence!r})")
        if fixed is None and not self.evidence:
            raise CustsegError("n_clusters='auto' chooses k from the evidence, so evidence=False needs a fixed k")
        return bool(self.evidence)

    def _seed(self):
        try:
            return seeds.resolve(self.random_state)
        except ValueError as exc:
            raise CustsegError(str(exc)) from None


def _by_size(core: KMeansCore) -> KMeansCore:
    """Renumber ``core``'s clusters so that cluster 0 is the largest (ties keep the engine's order)."""
    order = np.argsort(-np.bincount(core.labels_, minlength=core.n_clusters), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    core.cluster_centers_ = core.cluster_centers_[order].copy()
    core.labels_ = rank[core.labels_]
    return core


def _frame(X) -> pd.DataFrame:
    if isinstance(X, Portfolio):
        return X.frame
    if isinstance(X, pd.DataFrame):
        return X
    raise TypeError("Segmenter expects a DataFrame with canonical columns (see custseg.schema) or a Portfolio")


def needed_rows(n_clusters, k_max: int, evidence: bool | None = None) -> int:
    """Fewest customers a fit can use: two per segment at the largest k fitted.

    ``evidence`` as :class:`Segmenter`'s: by default a fixed k fits only that k.
    """
    fixed = n_clusters if isinstance(n_clusters, int) else None
    if fixed is not None and not evidence:
        return 2 * fixed
    return 2 * max(k_max, fixed or 0)
