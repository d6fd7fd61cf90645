"""Would another clustering method tell the same story? Alternatives on the same features.

:func:`compare_models` fits k-means and five alternatives to the same scaled
features and reports, side by side, how separated their segments are, how
stable under resampling, how long they take, and how far they agree with
k-means (adjusted Rand index).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN, AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score
from sklearn.neighbors import NearestNeighbors

from custseg import seeds
from custseg.engine import ALTERNATIVES, Engine, alternative, get_engine, single_threaded_kmeans
from custseg.errors import CustsegError
from custseg.settings import COMPARE_BOOTSTRAP, DEFAULTS
from custseg.progress import tick
from custseg.selection import silhouette_samples_many
from custseg.stability import match_segments

MODELS = ("KMeans", "MiniBatchKMeans", "BisectingKMeans", "GaussianMixture", "AgglomerativeWard", "HDBSCAN")
COLUMNS = (
    "model",
    "n_segments",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "stability",
    "noise_share",
    "fit_seconds",
    "ari_vs_kmeans",
)
#: Silhouettes are exact up to this many customers, then on a random sample (the run's setting).
SILHOUETTE_MAX_N = DEFAULTS.silhouette_max_n
#: HDBSCAN's smallest segment, as a share of the customers it is fitted on.
HDBSCAN_MIN_SHARE = 0.01


def compare_models(
    X,
    k: int,
    *,
    random_state: seeds.SeedLike = DEFAULTS.seed,
    n_boot: int = COMPARE_BOOTSTRAP,
    n_init: int = DEFAULTS.n_init,
    sample_max: int = 10_000,
    reference_labels: np.ndarray | None = None,
    engine: str | Engine = "sklearn",
    progress=None,
) -> pd.DataFrame:
    """Fit k-means and five alternatives with k segments and compare them.

    The models, in this order:

    - ``KMeans``: k-means with ``n_init`` restarts through ``engine``, the method custseg uses.
    - ``MiniBatchKMeans``: mini-batch k-means, 3 restarts, batches of 1,024.
    - ``BisectingKMeans``: bisecting k-means (largest-cluster splitting).
    - ``GaussianMixture``: k diagonal-covariance components, hard assignment.
      (These three are built by :func:`custseg.engine.alternative`.)
    - ``AgglomerativeWard``: Ward linkage, fitted on at most ``sample_max``
      customers; the rest go to the nearest segment centre.
    - ``HDBSCAN``: minimum segment size 1 % of the customers it is fitted on
      (at least 5); finds its own number of segments and leaves some customers
      as noise. Fitted on at most ``sample_max`` customers; the rest take the
      label (noise included) of their nearest fitted neighbour.

    Metrics use all customers (silhouette exact up to ``Settings.silhouette_max_n``, 10,000 by
    default, otherwise on one random sample of that many); for HDBSCAN they use the customers it did not
    call noise. ``stability`` is the mean over segments of the bootstrap
    Jaccard of each segment with its Hungarian-matched partner when the same
    model is refitted on ``n_boot`` bootstrap samples of ``min(n, sample_max)``
    customers (as in :func:`custseg.stability.bootstrap_stability`; HDBSCAN is
    refitted on the distinct customers drawn, since copies of a customer would
    form spurious dense spots).
    ``ari_vs_kmeans`` compares each model's labels with ``reference_labels``
    (default: the KMeans row's labels); HDBSCAN's noise counts as one label.

    Parameters
    ----------
    X : array-like of shape (n_customers, n_features)
        Scaled features.
    k : int
        Number of segments for the models that take one.
    random_state : None, int, SeedSequence, RandomState or Generator, default=0
        Seed: the models are fitted with it; samples and bootstrap replicates
        draw from streams derived from it (:mod:`custseg.seeds`).
    n_boot : int, default=20
        Bootstrap replicates per model for ``stability`` (0 skips it: NaN).
    sample_max : int, default=10_000
        Most customers Ward and HDBSCAN are fitted on, and the bootstrap size.
    reference_labels : ndarray of shape (n_customers,), optional
        Labels to compute ``ari_vs_kmeans`` against.
    engine : str or Engine, default="sklearn"
        Fits the ``KMeans`` row.
    progress : object with ``update(n)``, optional
        Advanced :func:`n_steps` times in total (once per fit).

    Returns
    -------
    pandas.DataFrame
        One row per model, columns :data:`COLUMNS`.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise CustsegError("Expected a finite 2-D table of scaled features.")
    if not 2 <= k <= len(X) // 2:
        raise CustsegError(f"There are {len(X)} customers; {k} segments need at least {2 * k} rows and k >= 2.")
    if reference_labels is not None and len(reference_labels) != len(X):
        raise CustsegError(f"reference_labels has {len(reference_labels)} entries for {len(X)} customers.")
    engine = get_engine(engine)
    random_state = seeds.resolve(random_state)

    fitted = {}
    for name in MODELS:
        start = time.perf_counter()
        labels = fit_predict(name, X, k, random_state, sample_max, engine, n_init)
        fitted[name] = (labels, time.perf_counter() - start)
        tick(progress)

    reference = fitted["KMeans"][0] if reference_labels is None else np.asarray(reference_labels)
    silhouettes = _silhouettes(X, {name: labels for name, (labels, _) in fitted.items()}, random_state)
    rows = []
    for name, (labels, seconds) in fitted.items():
        stability = _stability(name, X, k, labels, n_boot, random_state, sample_max, engine, n_init, progress)
        rows.append(_row(name, X, labels, seconds, silhouettes[name], stability, reference))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def n_steps(n_boot: int = COMPARE_BOOTSTRAP) -> int:
    """Total ``progress`` units :func:`compare_models` reports."""
    return len(MODELS) * (1 + n_boot)


def fit_predict(name: str, X: np.ndarray, k: int, random_state: seeds.SeedLike, sample_max: int,
                engine: str | Engine = DEFAULTS.engine, n_init: int = DEFAULTS.n_init) -> np.ndarray:
    """Labels of every row of ``X`` under model ``name`` (-1 for HDBSCAN noise)."""
    if name == "KMeans":
        engine = get_engine(engine)
        fit = engine.fit(X, k, n_init=n_init, seed=seeds.as_int(random_state))
        return fit.labels if fit.labels is not None else engine.assign(X, fit.centres)[0]
    if name in ALTERNATIVES:
        model = alternative(name, k, random_state)
        with single_threaded_kmeans():
            return model.fit_predict(X)
    take = _sample(len(X), sample_max, random_state)
    part = X if take is None else X[take]
    if name == "AgglomerativeWard":
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(part).labels_
        return labels if take is None else _nearest_centre(X, part, labels)
    if name == "HDBSCAN":
        size = max(5, int(round(HDBSCAN_MIN_SHARE * len(part))))
        labels = HDBSCAN(min_cluster_size=size, copy=True).fit(part).labels_
        return labels if take is None else _nearest_neighbour(X, part, labels)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def _sample(n, size, random_state):
    if n <= size:
        return None
    return np.sort(seeds.generator(seeds.derive(random_state, "subsample")).choice(n, size=size, replace=False))


def _nearest_centre(X, part, labels):
    centres = np.vstack([part[labels == c].mean(axis=0) for c in range(labels.max() + 1)])
    d2 = (X**2).sum(1)[:, None] - 2 * X @ centres.T + (centres**2).sum(1)[None, :]
    return np.argmin(d2, axis=1)


def _nearest_neighbour(X, part, labels):
    nearest = NearestNeighbors(n_neighbors=1).fit(part).kneighbors(X, return_distance=False)[:, 0]
    return labels[nearest]


def _silhouettes(X, labelled, random_state):
    """Mean silhouette per model; one distance pass for all models without noise."""
    take = _sample(len(X), SILHOUETTE_MAX_N, seeds.derive(random_state, "silhouette"))
    Xs = X if take is None else X[take]
    out, batch = {}, {}
    for name, labels in labelled.items():
        labels = labels if take is None else labels[take]
        keep = labels >= 0
        n_seg = len(np.unique(labels[keep]))
        if not 2 <= n_seg <= keep.sum() - 1:
            out[name] = np.nan
        elif keep.all():
            batch[name] = labels
        else:
            out[name] = float(silhouette_samples_many(Xs[keep], [labels[keep]])[0].mean())
    for name, s in zip(batch, silhouette_samples_many(Xs, list(batch.values()))):
        out[name] = float(s.mean())
    return out


def _stability(name, X, k, labels, n_boot, random_state, sample_max, engine, n_init, progress):
    """Mean over segments of the matched bootstrap Jaccard for this model."""
    keep = labels >= 0
    segments, ref = np.unique(labels[keep], return_inverse=True)
    if n_boot < 1 or len(segments) < 2:
        tick(progress, max(n_boot, 0))
        return np.nan
    codes = np.full(len(X), -1)
    codes[keep] = ref.ravel()
    n_ref = len(segments)
    n, m = len(X), min(len(X), sample_max)
    scores = np.full((n_boot, n_ref), np.nan)
    for b, replicate in enumerate(seeds.spawn(seeds.derive(random_state, f"bootstrap {name}"), n_boot)):
        draw_seed, fit_seed = seeds.spawn(replicate, 2)
        drawn = seeds.generator(draw_seed).integers(0, n, size=m)
        kept, first = np.unique(drawn, return_index=True)
        if name == "HDBSCAN":
            # Copies of a customer sit at distance 0 and would form spurious dense spots.
            boot = fit_predict(name, X[kept], k, fit_seed, sample_max, engine, n_init)
        else:
            # Fit on the bootstrap sample (duplicates included); a customer drawn twice has one label.
            boot = fit_predict(name, X[drawn], k, fit_seed, sample_max, engine, n_init)[first]
        sub = codes[kept]
        inside = sub >= 0
        present = np.bincount(sub[inside], minlength=n_ref) > 0
        boot_codes = _recode(boot)
        n_other = int(boot_codes.max()) + 1 if (boot_codes >= 0).any() else 0
        _, score = match_segments(sub[inside], boot_codes[inside], n_ref, n_other)
        scores[b, present] = score[present]
        tick(progress)
    return float(np.nanmean(np.nanmean(scores, axis=0)))


def _recode(labels):
    """Map labels to 0..m-1, keeping negatives (noise) as -1."""
    out = np.full(len(labels), -1)
    keep = labels >= 0
    out[keep] = np.unique(labels[keep], return_inverse=True)[1].ravel()
    return out


def _row(name, X, labels, seconds, silhouette, stability, reference):
    keep = labels >= 0
    n_seg = len(np.unique(labels[keep]))
    if 2 <= n_seg <= keep.sum() - 1:
        ch = float(calinski_harabasz_score(X[keep], labels[keep]))
        db = float(davies_bouldin_score(X[keep], labels[keep]))
    else:
        ch = db = np.nan
    return {
        "model": name,
        "n_segments": int(n_seg),
        "silhouette": silhouette,
        "calinski_harabasz": ch,
        "davies_bouldin": db,
        "stability": stability,
        "noise_share": float(1.0 - keep.mean()),
        "fit_seconds": float(seconds),
        "ari_vs_kmeans": float(adjusted_rand_score(reference, labels)),
    }
