"""Do the segments survive resampling? Bootstrap stability in the manner of clusterboot.

Hennig (2007, "Cluster-wise assessment of cluster stability") re-clusters
bootstrap samples and asks, for every original segment, how well some
bootstrap segment recovers it (Jaccard similarity on the points the two
clusterings share). A segment that is recovered with Jaccard >= 0.75 on average
is stable; one below 0.6 is not a pattern of the data but of the method, and one
at 0.85 or more is highly stable. Each mean comes with a one-sided 95 % lower
confidence bound over the replicates, so a verdict can be asked to hold beyond the
Monte Carlo error of the refits.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.stats import norm

from custseg import seeds
from custseg.engine import Engine, get_engine
from custseg.errors import CustsegError
from custseg.jsonio import jsonable
from custseg.progress import tick
from custseg.settings import DEFAULTS

#: Customers drawn (with replacement) in each bootstrap replicate, at most (an m-out-of-n bootstrap above).
BOOTSTRAP_MAX_N = 20_000

#: Mean Jaccard at or above which a segment is "stable" (Hennig 2007).
STABLE = 0.75
#: Mean Jaccard below which a segment is "unstable"; in between it is "weak".
UNSTABLE = 0.6
#: Mean Jaccard from which Hennig (2007) calls a segment "highly stable".
HIGHLY_STABLE = 0.85
#: Confidence of the one-sided lower bound on each segment's mean Jaccard.
CONFIDENCE = 0.95
#: k-means++ starts per bootstrap refit (best kept). The fit being judged keeps the
#: best of several starts; a refit stuck in a poor local optimum would measure the
#: optimiser's luck, not the data (card file, k = 4: one start left a segment below
#: 0.6 in 6 of 20 refits, three starts in 0 of 20). Never the reference centres.
N_INIT = 3
#: Replicates in flight per thread of the compiled small-data engine; results do not depend on it.
AHEAD = 2


@dataclass
class Stability:
    """Per-segment bootstrap stability.

    Attributes
    ----------
    segments : pandas.DataFrame
        Index ``"segment"`` (the labels passed in, ascending); columns
        ``jaccard_mean``, ``jaccard_sd``, ``jaccard_lower`` (the one-sided
        :data:`CONFIDENCE` lower bound of the mean, :func:`lower_bound`) and
        ``status`` (``"stable"``, ``"weak"`` or ``"unstable"``, from the mean).
    mean_ari : float
        Mean adjusted Rand index between each bootstrap clustering and the
        reference labels, on the customers in that bootstrap sample.
    n_boot : int
        Bootstrap replicates.
    replicates : ndarray of shape (n_boot, n_segments)
        Each replicate's matched Jaccard for each segment (rows in replicate
        order, columns in the order of ``segments``); NaN where none of the
        segment's customers was drawn.
    sample_size : int
        Customers drawn with replacement in each replicate.
    replicate_ari : ndarray of shape (n_boot,)
        Each replicate's adjusted Rand index (``mean_ari`` is their mean).
    n_planned : int or None
        The replicates asked for when fewer were fitted because the verdict was
        settled (``stop_below`` of :func:`bootstrap_stability`); ``None`` when all
        were fitted.
    """

    segments: pd.DataFrame
    mean_ari: float
    n_boot: int
    replicates: np.ndarray = field(repr=False)
    sample_size: int
    replicate_ari: np.ndarray = field(repr=False)
    n_planned: int | None = None

    @property
    def stopped_early(self) -> bool:
        """Whether the refits stopped before ``n_planned`` because no segment set could reach the threshold."""
        return self.n_planned is not None and self.n_planned > self.n_boot

    @property
    def all_stable(self) -> bool:
        """Whether every segment is stable (mean Jaccard >= :data:`STABLE`)."""
        return bool((self.segments["jaccard_mean"] >= STABLE).all())

    @property
    def jaccard_min(self) -> float:
        """The least stable segment's mean Jaccard."""
        return float(self.segments["jaccard_mean"].min())

    @property
    def all_highly_stable(self) -> bool:
        """Whether every segment is highly stable with confidence: its lower bound >= :data:`HIGHLY_STABLE`."""
        return bool((self.segments["jaccard_lower"] >= HIGHLY_STABLE).all())

    @property
    def lower_min(self) -> float:
        """The least stable segment's lower bound (the smallest ``jaccard_lower``)."""
        return float(self.segments["jaccard_lower"].min())

    def to_dict(self) -> dict:
        """JSON-safe summary (plain numbers and strings, NaN as ``None``)."""
        return {
            "n_boot": int(self.n_boot),
            "n_planned": int(self.n_boot if self.n_planned is None else self.n_planned),
            "sample_size": int(self.sample_size),
            "mean_ari": jsonable(self.mean_ari),
            "thresholds": {"stable": STABLE, "unstable": UNSTABLE, "highly_stable": HIGHLY_STABLE,
                           "confidence": CONFIDENCE},
            "segments": [
                {
                    "segment": _label(seg),
                    "jaccard_mean": jsonable(row["jaccard_mean"]),
                    "jaccard_sd": jsonable(row["jaccard_sd"]),
                    "jaccard_lower": jsonable(row["jaccard_lower"]),
                    "status": str(row["status"]),
                }
                for seg, row in self.segments.iterrows()
            ],
        }


def bootstrap_stability(
    X,
    labels,
    *,
    n_boot: int = DEFAULTS.n_boot,
    random_state: seeds.SeedLike = DEFAULTS.seed,
    n_init: int = N_INIT,
    init_centers: np.ndarray | None = None,
    max_n: int = BOOTSTRAP_MAX_N,
    engine: str | Engine = "sklearn",
    resume: Stability | None = None,
    stop_below: float | None = None,
    progress=None,
) -> Stability:
    """Bootstrap the k-means segmentation and score each segment's stability.

    Each replicate draws ``min(len(X), max_n)`` customers with replacement,
    fits k-means with k = the number of distinct ``labels``, and compares the
    result with ``labels`` on the distinct customers drawn. For every reference
    segment the Jaccard similarity ``|A & B| / |A | B|`` is computed against each
    bootstrap segment; reference and bootstrap segments are paired one-to-one by
    the Hungarian method (:func:`match_segments`, maximising total Jaccard) and
    each segment's score is its Jaccard with its partner (0 when it has none).
    Scores are averaged over the replicates (``jaccard_mean``, ``jaccard_sd``,
    and the lower bound ``jaccard_lower``, :func:`lower_bound`).

    Parameters
    ----------
    X : array-like of shape (n_customers, n_features)
        The scaled features the segmentation was fitted on.
    labels : array-like of shape (n_customers,)
        Reference segment of each customer.
    n_boot : int, default=50
        Bootstrap replicates (B).
    random_state : None, int, SeedSequence, RandomState or Generator, default=0
        Seed; each replicate draws its sample and its k-means starts from its own
        child sequence (:func:`custseg.seeds.spawn`). The same inputs and int seed
        give the same result.
    n_init : int, default=N_INIT
        k-means restarts per replicate from k-means++ seeds, the best kept
        (clusterboot's ``kmeansCBI`` uses one run; see :data:`N_INIT` for why
        three). Ignored when ``init_centers`` is given.
    init_centers : ndarray of shape (k, n_features), optional
        Start every replicate from these centres (one run each). Faster, but it
        only measures sampling variability around this one solution: an
        arbitrary split of a homogeneous group tends to be re-found from the same
        start and can look stable. Leave it ``None`` for the clusterboot verdict.
    max_n : int, default=20_000
        Bootstrap sample size cap; above it, each replicate draws ``max_n``
        customers with replacement (an m-out-of-n bootstrap).
    engine : str or Engine, default="sklearn"
        Fits the replicates and assigns the customers to their centres. The stock
        in-memory engines hand these small fits to the compiled
        :class:`custseg.engine.small.SmallEngine` (:func:`custseg.engine.small.for_small`),
        whose threads (``n_threads``) fit that many replicates at once; any other
        engine fits them one after another.
    resume : Stability, optional
        An earlier result of this same call with fewer replicates: its replicates
        are kept and only the rest are fitted. Replicate b always draws from the
        b-th child of the seed, so the result equals a fresh call with ``n_boot``.
    stop_below : float, optional
        Stop as soon as some segment's mean Jaccard over ``n_boot`` replicates can
        no longer reach ``stop_below`` even if every remaining replicate scored 1
        (:func:`settled_below`): then "every segment's mean >= ``stop_below``" is
        false whatever the rest would give. The result holds the replicates fitted
        (``n_boot``) and the number asked for (``n_planned``). The check runs after
        each replicate in order, so where it stops does not depend on threads.
    progress : object with ``update(n)``, optional
        Advanced once per replicate asked for (the skipped ones at the stop).

    Returns
    -------
    Stability

    Raises
    ------
    CustsegError
        When the shapes disagree, there are fewer than two segments,
        ``n_boot`` is below 2, or ``resume`` does not fit this call.
    """
    X = np.asarray(X, dtype=np.float64)
    segments, ref = np.unique(np.asarray(labels), return_inverse=True)
    ref = ref.ravel()
    k = len(segments)
    _check(X, ref, k, n_boot, init_centers)

    engine = get_engine(engine)
    n = len(X)
    m = min(n, max_n)
    jaccard = np.full((n_boot, k), np.nan)
    ari = np.empty(n_boot)
    done = _resumed(resume, segments, m, n_boot)
    if done:
        jaccard[:done], ari[:done] = resume.replicates, resume.replicate_ari
    from custseg.engine.small import for_small  # numba on use: the command line starts without it

    fitter = for_small(engine, m)
    children = seeds.spawn(seeds.derive(random_state, "bootstrap"), n_boot)

    def replicate(b: int):
        drawn, fit_seed = _replicate(children[b], n, m)
        fit = fitter.fit(X[drawn], k, n_init=n_init, seed=fit_seed, init=init_centers)
        kept, first = _first_draws(drawn, n)
        # the fit's own labels of the drawn rows spare a second distance pass
        boot = fit.labels[first] if fit.labels is not None else fitter.assign(X[kept], fit.centres)[0]
        return _scores(ref[kept], boot, k)

    made = n_boot
    with closing(_in_order(replicate, range(done, n_boot), _threads(fitter))) as results:
        for b, (score, rand) in zip(range(done, n_boot), results):
            jaccard[b], ari[b] = score, rand
            tick(progress)
            if stop_below is not None and b + 1 < n_boot and settled_below(jaccard[:b + 1], n_boot, stop_below):
                made = b + 1
                tick(progress, n_boot - made)
                break
    jaccard, ari = jaccard[:made], ari[:made]

    mean = np.nanmean(jaccard, axis=0)
    sd = np.nanstd(jaccard, axis=0, ddof=1)
    table = pd.DataFrame(
        {"jaccard_mean": mean, "jaccard_sd": sd, "jaccard_lower": lower_bound(jaccard),
         "status": [status(j) for j in mean]},
        index=pd.Index(segments, name="segment"),
    )
    return Stability(segments=table, mean_ari=float(ari.mean()), n_boot=int(made), replicates=jaccard,
                     sample_size=int(m), replicate_ari=ari, n_planned=None if made == n_boot else int(n_boot))


def settled_below(replicates, n_boot: int, threshold: float) -> bool:
    """Whether some segment's mean over ``n_boot`` replicates is sure to fall below ``threshold``.

    With ``S`` the sum of a segment's ``c`` scored replicates so far and ``r``
    replicates still to come, the best final mean is ``(S + r) / (c + r)`` (every
    remaining replicate scoring the maximum Jaccard of 1; a replicate that does not
    draw the segment leaves its mean as it is, and ``S / c <= 1``). Below
    ``threshold`` for some segment, no remaining refit can change the verdict.

    Parameters
    ----------
    replicates : array-like of shape (b, n_segments)
        The replicates fitted so far (NaN where a segment was not drawn).
    n_boot : int
        The replicates asked for in all.
    threshold : float
    """
    reps = np.asarray(replicates, dtype=np.float64)
    rest = n_boot - len(reps)
    total = np.nansum(reps, axis=0) + rest
    count = np.sum(~np.isnan(reps), axis=0) + rest
    with np.errstate(invalid="ignore", divide="ignore"):
        best = np.where(count > 0, total / np.maximum(count, 1), 1.0)
    return bool((best < threshold).any())


def lower_bound(replicates, confidence: float = CONFIDENCE) -> np.ndarray:
    """One-sided lower confidence bound of each segment's mean Jaccard over the replicates.

    ``mean - z * sd / sqrt(b)``, with ``z`` the standard normal quantile at
    ``confidence`` and ``b`` the replicates that scored the segment (NaN ones
    skipped). The mean of ``b`` independent refits is close to normal even when
    single refits are bimodal (most find the segment, a few dissolve it), and a
    segment that dissolves now and then has a large ``sd``: the bound is pulled
    down by exactly the refits that make a verdict depend on the seed.

    Parameters
    ----------
    replicates : array-like of shape (n_boot, n_segments)
    confidence : float, default=CONFIDENCE

    Returns
    -------
    ndarray of shape (n_segments,)
    """
    reps = np.asarray(replicates, dtype=np.float64)
    b = np.sum(~np.isnan(reps), axis=0)
    mean = np.nanmean(reps, axis=0)
    se = np.nanstd(reps, axis=0, ddof=1) / np.sqrt(b)
    return mean - norm.ppf(confidence) * se


def status(jaccard_mean: float) -> str:
    """``"stable"`` (>= 0.75), ``"weak"`` (0.6 to 0.75) or ``"unstable"`` (< 0.6)."""
    if jaccard_mean >= STABLE:
        return "stable"
    if jaccard_mean >= UNSTABLE:
        return "weak"
    return "unstable"


def jaccard_matrix(ref, other, n_ref: int | None = None, n_other: int | None = None) -> np.ndarray:
    """Jaccard similarity of every reference segment with every other segment.

    Parameters
    ----------
    ref, other : array-like of int of shape (n,)
        Segment codes ``0..n_ref-1`` and ``0..n_other-1`` of the same points.
        Negative codes in ``other`` (noise) belong to no segment.

    Returns
    -------
    ndarray of shape (n_ref, n_other)
    """
    return _jaccard(*_contingency(ref, other, n_ref, n_other))


def _contingency(ref, other, n_ref, n_other):
    """Points in each (reference, other) pair of segments, and each side's segment sizes."""
    ref = np.asarray(ref, dtype=np.int64)
    other = np.asarray(other, dtype=np.int64)
    n_ref = int(ref.max()) + 1 if n_ref is None else n_ref
    n_other = (int(other.max()) + 1 if len(other) and other.max() >= 0 else 0) if n_other is None else n_other
    size_ref = np.bincount(ref, minlength=n_ref)[:n_ref]
    keep = other >= 0
    size_other = np.bincount(other[keep], minlength=n_other)[:n_other]
    both = np.bincount(ref[keep] * n_other + other[keep], minlength=n_ref * n_other).reshape(n_ref, n_other)
    return both, size_ref, size_other


def _jaccard(both, size_ref, size_other):
    union = size_ref[:, None] + size_other[None, :] - both
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, both / union, 0.0)


def match_segments(ref, other, n_ref: int | None = None, n_other: int | None = None):
    """Pair reference segments with other segments one-to-one (Hungarian method).

    Returns
    -------
    partner : ndarray of shape (n_ref,)
        The other segment paired with each reference segment, -1 if none.
    jaccard : ndarray of shape (n_ref,)
        The Jaccard similarity of each pair (0 when unpaired).
    """
    return _paired(jaccard_matrix(ref, other, n_ref, n_other))


def _paired(sim):
    partner = np.full(sim.shape[0], -1)
    score = np.zeros(sim.shape[0])
    if sim.shape[1]:
        rows, cols = linear_sum_assignment(sim, maximize=True)
        partner[rows] = cols
        score[rows] = sim[rows, cols]
    return partner, score


def _replicate(child, n, m):
    """Replicate ``child``'s draw of ``m`` of ``n`` rows with replacement, and the seed of its fit."""
    draw_seed, fit_seed = seeds.spawn(child, 2)
    return seeds.generator(draw_seed).integers(0, n, size=m), fit_seed


def _first_draws(drawn, n):
    """The distinct rows drawn (ascending) and where each was drawn first: ``np.unique(drawn, return_index=True)``."""
    first = np.full(n, len(drawn))
    np.minimum.at(first, drawn, np.arange(len(drawn)))  # linear time; the sort behind unique costs ten times more
    kept = np.flatnonzero(first < len(drawn))
    return kept, first[kept]


def _threads(fitter) -> int:
    """Replicates fitted at once: the threads of the compiled small-data engine, one for any other engine."""
    from custseg.engine.base import available_cores
    from custseg.engine.small import SmallEngine

    return (fitter.n_threads or available_cores()) if isinstance(fitter, SmallEngine) else 1


def _in_order(fn, items, threads: int):
    """``fn(item)`` for each item, in order, computed up to ``AHEAD * threads`` items ahead on ``threads`` threads.

    Items not yet started when the caller stops reading are never computed.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    items = iter(items)
    pool = ThreadPoolExecutor(threads)
    try:
        pending = deque(pool.submit(fn, item) for item in islice(items, AHEAD * threads))
        while pending:
            result = pending.popleft().result()
            for item in islice(items, 1):
                pending.append(pool.submit(fn, item))
            yield result
    finally:
        pool.shutdown(cancel_futures=True)


def _scores(ref, boot, k):
    """Each reference segment's matched Jaccard (NaN when none of it was drawn) and the adjusted Rand index."""
    both, size_ref, size_boot = _contingency(ref, boot, k, k)
    score = _paired(_jaccard(both, size_ref, size_boot))[1]
    # A segment none of whose customers were drawn has no score this round.
    score[size_ref == 0] = np.nan
    return score, _adjusted_rand(both, len(ref))


def _adjusted_rand(contingency, n):
    """scikit-learn's ``adjusted_rand_score`` from the contingency table (its pair-confusion formula)."""
    sum_squares = int((contingency.astype(np.int64) ** 2).sum())
    rows = contingency.sum(axis=1).astype(np.int64)
    cols = contingency.sum(axis=0).astype(np.int64)
    fp = int((contingency @ cols).sum()) - sum_squares
    fn = int((contingency.T @ rows).sum()) - sum_squares
    tp = sum_squares - n
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def _resumed(resume, segments, m, n_boot) -> int:
    """Replicates of ``resume`` to keep (0 without one), after checking it fits the call."""
    if resume is None:
        return 0
    if resume.replicates.shape[1] != len(segments) or resume.sample_size != m or resume.n_boot > n_boot \
            or not np.array_equal(resume.segments.index.to_numpy(), segments):
        raise CustsegError(
            f"Cannot resume from {resume.n_boot} replicates of {resume.replicates.shape[1]} segments on "
            f"{resume.sample_size} customers: this call has {len(segments)} segments, {m} customers per "
            f"replicate and {n_boot} replicates.")
    return resume.n_boot


def _check(X, ref, k, n_boot, init_centers):
    if X.ndim != 2 or len(X) != len(ref):
        raise CustsegError(f"Features and labels disagree: {X.shape} features for {len(ref)} labels.")
    if not np.isfinite(X).all():
        raise CustsegError("The features contain missing or infinite values; fill or drop them first.")
    if k < 2:
        raise CustsegError("Stability needs at least two segments.")
    if n_boot < 2:
        raise CustsegError(f"Stability needs at least two bootstrap replicates; got {n_boot}.")
    if init_centers is not None and np.shape(init_centers) != (k, X.shape[1]):
        raise CustsegError(
            f"init_centers has shape {np.shape(init_centers)}; expected {(k, X.shape[1])} "
            f"for {k} segments and {X.shape[1]} features."
        )


def _label(seg):
    return seg.item() if hasattr(seg, "item") else seg
