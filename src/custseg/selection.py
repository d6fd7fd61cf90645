"""Choose the number of segments from the evidence, or say there is none.

k-means always returns k groups, real or not. Selection is a step of its own,
before the final fit: :func:`evaluate_k` fits k-means for every candidate k and
records, for each, six pieces of evidence (inertia, silhouette,
Calinski-Harabasz, Davies-Bouldin, the gap statistic and the BIC of a Gaussian
mixture) as an :class:`Evidence`; :func:`choose_k`, a documented ``auto`` rule,
combines them and either names a k, with the criteria that agree on it, or
reports that the data show no clear structure. :func:`select_k` is the two in
sequence. See ``docs/evidence.md`` for the method and measured figures.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from threadpoolctl import threadpool_limits

from custseg import seeds
from custseg.engine import Engine, gaussian_mixture, get_engine, single_threaded_kmeans
from custseg.engine.base import available_cores
from custseg.errors import CustsegError
from custseg.settings import DEFAULTS
from custseg.jsonio import jsonable
from custseg.progress import tick
from custseg.stability import N_INIT as STABILITY_N_INIT
from custseg.stability import CONFIDENCE, HIGHLY_STABLE, STABLE, Stability, bootstrap_stability

COLUMNS = (
    "inertia",
    "silhouette",
    "silhouette_se",
    "calinski_harabasz",
    "davies_bouldin",
    "gap",
    "gap_se",
    "gmm_bic",
)

#: Kaufman & Rousseeuw (1990): an average silhouette at or below 0.25 means
#: "no substantial structure has been found".
SILHOUETTE_FLOOR = 0.25
#: The gap statistic and its reference fits use at most this many customers.
GAP_MAX_N = 3_000
#: Standard errors the best gap must beat Gap(1) by before k = 1 is rejected.
GAP_NULL_SE = 2.0
#: ... and by at least this much (log W units: about 10 % tighter than expected).
GAP_MIN_LIFT = 0.1
#: k-means restarts for each gap fit (observed sample and every reference set).
GAP_N_INIT = 3
#: The Gaussian mixture behind ``gmm_bic`` is fitted on at most this many customers.
GMM_MAX_N = 5_000
#: EM iterations of that mixture.
GMM_MAX_ITER = 200
#: Bootstrap refits per candidate k in the stability part of the choice.
CHOICE_BOOT = DEFAULTS.choice_boot
#: Customers drawn (with replacement) in each of those refits; all of them below this.
CHOICE_MAX_N = DEFAULTS.choice_max_n
#: k-means++ starts per refit (best kept): as the run's own bootstrap, so the
#: choice and the reported stability agree (see :data:`custseg.stability.N_INIT`).
CHOICE_N_INIT = STABILITY_N_INIT
#: A usable level is confirmed on this many times ``choice_boot`` refits (added ``choice_boot`` at a time).
CONFIRM_FACTOR = 3
#: Candidate numbers of sub-segments tried inside each segment for the drill-down.
DRILL_KS = (2, 3, 4)
#: Rows of the distance matrix held at once while computing silhouettes.
_CHUNK_BYTES = 64 * 2**20
#: Rows of such a chunk taken through the element-wise steps at once (a few MB, in cache).
_BLOCK_ROWS = 16


@dataclass(frozen=True)
class Evidence:
    """What the data say about each candidate k, before any choice.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per evaluated k (index ``"k"``, ascending) with the columns in
        :data:`COLUMNS`.
    centres : dict of int to ndarray of shape (k, n_features)
        The k-means centres found for each k (in the engine's order).
    baseline : dict of str to float
        The k = 1 values the knee and the gap rule use (``inertia``, ``gap``,
        ``gap_se``).
    silhouette_sample_size : int or None
        Customers the silhouettes were computed on; ``None`` when exact.
    stability : dict of int to Stability
        Bootstrap stability of the k-means segments at each k
        (:func:`custseg.stability.bootstrap_stability`, k-means++ refits on samples
        of at most ``CHOICE_MAX_N`` customers); the choice of k rests on it. Each
        k has the refits :func:`evaluate_k` gave it (``Stability.n_boot``).
    confirm_boot : int
        The refits a usable level is confirmed on (:func:`is_level`).
    """

    table: pd.DataFrame
    centres: dict[int, np.ndarray] = field(repr=False)
    baseline: dict[str, float]
    silhouette_sample_size: int | None
    stability: dict[int, Stability] = field(repr=False)
    confirm_boot: int


@dataclass
class SubSegments:
    """The drill-down inside one segment: the stability rule applied to its customers alone.

    Attributes
    ----------
    segment : int
        The segment (0-based, by decreasing size).
    n_customers : int
        Its customers.
    k : int or None
        Sub-segments: the largest candidate in :data:`DRILL_KS` whose
        sub-segments are all stable; ``None`` when no split reproduces.
    stability : dict of int to Stability
        The bootstrap stability of each candidate split tried (from the largest
        down to the first whose sub-segments are all stable).
    labels : ndarray of shape (n_customers,) or None
        Sub-segment (0-based, by decreasing size) of each of the segment's
        customers, in the order they appear in the data; ``None`` without a split.
    """

    segment: int
    n_customers: int
    k: int | None
    stability: dict[int, Stability] = field(repr=False)
    labels: np.ndarray | None = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-safe summary; ``sizes`` are the sub-segments' customers."""
        chosen = None if self.k is None else self.stability[self.k]
        return {
            "segment": int(self.segment),
            "n_customers": int(self.n_customers),
            "k": None if self.k is None else int(self.k),
            "sizes": [] if self.labels is None else np.bincount(self.labels).astype(int).tolist(),
            "stability": None if chosen is None else chosen.to_dict(),
            "tried": [{"k": int(k), "all_stable": st.all_stable, "jaccard_min": jsonable(st.jaccard_min),
                       "n_boot": int(st.n_boot), "stopped_early": st.stopped_early}
                      for k, st in sorted(self.stability.items())],
        }


@dataclass
class Selection:
    """The k chosen, and why.

    Attributes
    ----------
    chosen_k : int
        The k to use: ``fixed_k`` when given, else the auto rule's pick.
    auto_k : int or None
        What the auto rule picked (a usable level even when the structure is
        unclear: the largest k whose segments are all highly stable with
        confidence); ``None`` when the rule was not run.
    clear_structure : bool or None
        Whether the evidence shows separated groups (the criteria agree, the
        silhouette is above 0.25 and their k reproduces); ``None`` when the
        evidence was not computed (a fixed k without evidence).
    reason : str
        One plain-language paragraph: why this k, or why no clear structure.
    evidence : Evidence or None
        The evidence the choice was made from; ``None`` when it was not computed.
    votes : dict of str to int or None
        The k each criterion points to (``knee``, ``silhouette``, ``gap``,
        ``bic``); ``gap`` is 1 when the gap statistic sees a single group.
    stable_ks : list of int
        The candidates whose segments are all stable (mean Jaccard >= 0.75).
    highly_stable_ks : list of int
        The candidates confirmed as usable levels (:func:`is_level`: every
        segment's lower bound >= 0.85 on ``confirm_boot`` refits).
    drilldown : list of SubSegments
        For each segment of ``chosen_k`` (numbered by decreasing size, as
        :class:`custseg.segmenter.Segmenter` numbers them), the reproduction test
        (mean Jaccard >= 0.75) applied to its customers alone; empty when the
        evidence was not computed.
    """

    chosen_k: int
    auto_k: int | None
    clear_structure: bool | None
    reason: str
    evidence: Evidence | None = field(repr=False)
    votes: dict[str, int | None] = field(default_factory=dict)
    stable_ks: list[int] = field(default_factory=list)
    highly_stable_ks: list[int] = field(default_factory=list)
    drilldown: list[SubSegments] = field(default_factory=list)

    @property
    def headline(self) -> str:
        """A few words for the command line: what kind of k this is."""
        if self.evidence is None:
            return f"k = {self.chosen_k} fixed; the evidence for other k was not computed"
        stab = self.evidence.stability[self.chosen_k]
        reproduce = ("every segment reproduces" if stab.all_stable else
                     f"{int((stab.segments['jaccard_mean'] < STABLE).sum())} of {self.chosen_k} segments "
                     "do not reproduce")
        if self.auto_k != self.chosen_k:
            return f"k = {self.chosen_k} fixed; {reproduce}; the rule would choose k = {self.auto_k}"
        if self.clear_structure:
            return f"clear structure; {reproduce}"
        if self.chosen_k in self.highly_stable_ks:
            return "no clear structure; the largest k whose segments are all highly stable"
        return "no clear structure, and no k whose segments are all highly stable; the most stable k"

    @property
    def table(self) -> pd.DataFrame:
        """The evidence table (empty, with :data:`COLUMNS`, when not computed)."""
        if self.evidence is None:
            return pd.DataFrame(columns=list(COLUMNS), index=pd.Index([], name="k"), dtype="float64")
        return self.evidence.table

    @property
    def baseline(self) -> dict[str, float]:
        return {} if self.evidence is None else self.evidence.baseline

    @property
    def silhouette_sample_size(self) -> int | None:
        return None if self.evidence is None else self.evidence.silhouette_sample_size

    def to_dict(self) -> dict:
        """JSON-safe summary (plain numbers and strings, NaN as ``None``)."""
        rows = [
            {"k": int(k), **{c: jsonable(row[c]) for c in COLUMNS}}
            for k, row in self.table.iterrows()
        ]
        return {
            "chosen_k": int(self.chosen_k),
            "auto_k": None if self.auto_k is None else int(self.auto_k),
            "clear_structure": None if self.clear_structure is None else bool(self.clear_structure),
            "reason": self.reason,
            "silhouette_sample_size": (
                None if self.silhouette_sample_size is None else int(self.silhouette_sample_size)
            ),
            "votes": {name: (None if v is None else int(v)) for name, v in self.votes.items()},
            "baseline": {name: jsonable(v) for name, v in self.baseline.items()},
            "table": rows,
        }

    def stability_to_dict(self) -> dict:
        """The stability behind the choice and the drill-down, as JSON-safe data.

        ``per_k``: for each evaluated k, the bootstrap stability of its segments
        (:meth:`custseg.stability.Stability.to_dict`), whether all are stable and
        whether it is a confirmed level (``highly_stable``, :func:`is_level`);
        ``drilldown``: :meth:`SubSegments.to_dict` for each segment of ``chosen_k``.
        """
        if self.evidence is None:
            return {"stable_ks": [], "highly_stable_ks": [], "per_k": [], "drilldown": []}
        need = self.evidence.confirm_boot
        return {
            "stable_ks": [int(k) for k in self.stable_ks],
            "highly_stable_ks": [int(k) for k in self.highly_stable_ks],
            "per_k": [{"k": int(k), "all_stable": stab.all_stable, "jaccard_min": jsonable(stab.jaccard_min),
                       "highly_stable": is_level(stab, need), "lower_min": jsonable(stab.lower_min),
                       **stab.to_dict()} for k, stab in sorted(self.evidence.stability.items())],
            "drilldown": [d.to_dict() for d in self.drilldown],
        }


def evaluate_k(
    X,
    ks=DEFAULTS.k_values(),
    *,
    engine: str | Engine = "sklearn",
    n_init: int = DEFAULTS.n_init,
    seed: seeds.SeedLike = DEFAULTS.seed,
    silhouette_max_n: int = DEFAULTS.silhouette_max_n,
    n_refs: int = DEFAULTS.n_refs,
    stability_boot: int = CHOICE_BOOT,
    stability_max_n: int = CHOICE_MAX_N,
    levels=None,
    confirm_boot: int | None = None,
    full_ks=(),
    progress=None,
) -> Evidence:
    """Fit k-means for every k in ``ks`` and record the evidence for each.

    For each k the engine fits k-means (best of ``n_init`` k-means++ starts
    seeded with ``seed`` itself, so the final fit at that k finds the same
    centres) and the evidence recorded is: inertia; the mean silhouette (exact
    when ``len(X) <= silhouette_max_n``, otherwise on one random sample of that
    many customers, with the standard error of its mean); Calinski-Harabasz;
    Davies-Bouldin; the gap statistic with its ``s_k`` (on at most
    :data:`GAP_MAX_N` customers, ``n_refs`` uniform reference sets over the
    principal-component box); and the BIC of a diagonal Gaussian mixture
    started from the k-means centres (on at most :data:`GMM_MAX_N` customers);
    and the bootstrap stability of each segment (``stability_boot`` k-means
    refits, each the best of :data:`CHOICE_N_INIT` k-means++ starts, on ``min(n, stability_max_n)`` customers drawn with
    replacement, :func:`custseg.stability.bootstrap_stability`; the same draws
    for every k; a k stops refitting as soon as some segment's mean Jaccard can
    no longer reach 0.75, :func:`custseg.stability.settled_below`, so its verdict
    is that of all ``stability_boot`` refits). Then the search for the usable
    level (:func:`confirm_levels`) adds refits, up to ``confirm_boot``, to the
    largest candidates in ``levels`` whose verdict is still open (stopping, in the
    same way, once some mean can no longer reach 0.85). When no level is found,
    the ks stopped early get all ``stability_boot`` refits, as the rule then
    ranks every k by its least stable bound. The samples and the reference
    sets draw from streams derived from ``seed`` (:func:`custseg.seeds.derive`).

    Parameters
    ----------
    X : array-like of shape (n_customers, n_features)
        Scaled features.
    ks : iterable of int, default=range(2, 11)
        The numbers of segments to evaluate, each at least 2.
    engine : str or Engine, default="sklearn"
        Fits the k-means models (:func:`custseg.engine.get_engine`).
    n_init : int, default=10
        k-means restarts per k.
    seed : None, int, SeedSequence, RandomState or Generator, default=0
        Seed for every random step; the same inputs and int seed give the same result.
    silhouette_max_n : int, default=10_000
        Above this many customers, silhouettes are computed on a sample.
    n_refs : int, default=10
        Reference data sets (B) for the gap statistic.
    stability_boot : int, default=CHOICE_BOOT
        Bootstrap refits per k for the stability.
    stability_max_n : int, default=CHOICE_MAX_N
        Customers drawn in each of those refits, at most.
    levels : iterable of int, optional
        The candidates the usable level is searched among (default: ``ks``).
    confirm_boot : int, optional
        Refits a usable level is confirmed on; default ``CONFIRM_FACTOR *
        stability_boot``, at least ``stability_boot``.
    full_ks : iterable of int, default=()
        Candidates given all ``stability_boot`` refits whatever they show (a
        fixed k, whose segments are reported one by one).
    progress : object with ``update(n)``, optional
        Advanced ``5 * len(ks)`` times in total.

    Returns
    -------
    Evidence

    Raises
    ------
    CustsegError
        When ``X`` is not a finite 2-D array, a k is below 2, there are
        fewer than two customers per segment for the largest k, ``n_refs``
        is below 2, ``levels`` are not among ``ks`` or ``confirm_boot`` is
        below ``stability_boot``.
    """
    X = _as_matrix(X)
    ks = _candidate_ks(ks)
    check_size(len(X), ks)
    if n_refs < 2:
        raise CustsegError(f"n_refs must be at least 2 to estimate the gap's spread; got {n_refs}.")
    levels = ks if levels is None else _candidate_ks(levels)
    if not set(levels) <= set(ks):
        raise CustsegError(f"The levels {sorted(set(levels) - set(ks))} are not among the evaluated k.")
    confirm_boot = CONFIRM_FACTOR * stability_boot if confirm_boot is None else int(confirm_boot)
    if confirm_boot < stability_boot:
        raise CustsegError(f"confirm_boot ({confirm_boot}) must be at least stability_boot ({stability_boot}).")
    engine = get_engine(engine)
    seed = seeds.resolve(seed)
    refit = dict(max_n=stability_max_n, n_init=CHOICE_N_INIT, random_state=seeds.derive(seed, "choice-stability"))
    # Every piece of evidence depends only on the fits: each runs as its own task on the cores, fits inside a
    # task one after another (``side``), and results are read back in a fixed order. The largest k, the
    # longest fits, go first so that no core waits for one at the end.
    side = _side_by_side(engine, min(len(X), stability_max_n))
    down = ks[::-1]
    with ThreadPoolExecutor(_threads(engine)) as pool:
        fits = dict(zip(down, pool.map(lambda k: engine.fit(X, k, n_init=n_init, seed=seed), down)))
        tick(progress, len(ks))
        labels = {k: _labels(engine, X, fits[k]) for k in ks}
        # a k with a segment that cannot reproduce any more is settled: no level, not stable
        first = _Part([partial(bootstrap_stability, X, labels[k], n_boot=stability_boot, engine=side,
                               stop_below=None if k in full_ks else STABLE, **refit) for k in down],
                      lambda done: dict(sorted(zip(down, done))), len(ks))
        parts = [first, _bic_part(X, {k: fits[k].centres for k in ks}, seed),
                 _gap_part(X, ks, n_refs, engine, seeds.derive(seed, "gap")),
                 _silhouette_part(X, [labels[k] for k in ks], silhouette_max_n, seeds.derive(seed, "silhouette")),
                 _Part([partial(_separation, X, labels[k]) for k in ks], list)]
        stability, bic, (gap, gap_se, gap1, gap1_se), (sil, sil_se, sample_size), separation = \
            _run(pool, parts, progress)
        found = confirm_levels(stability, levels, confirm_boot, lambda k, st, b: bootstrap_stability(
            X, labels[k], n_boot=b, resume=st, stop_below=HIGHLY_STABLE, engine=engine, **refit))
        if found is None:
            # without a level the rule ranks every k by its least stable segment's bound: on all the refits
            short = [k for k in ks if stability[k].n_boot < stability_boot]
            stability.update(zip(short, pool.map(lambda k: bootstrap_stability(
                X, labels[k], n_boot=stability_boot, resume=stability[k], engine=side, **refit), short)))

    table = pd.DataFrame(
        {
            "inertia": [float(fits[k].inertia) for k in ks],
            "silhouette": sil,
            "silhouette_se": sil_se,
            "calinski_harabasz": [ch for ch, _ in separation],
            "davies_bouldin": [db for _, db in separation],
            "gap": gap,
            "gap_se": gap_se,
            "gmm_bic": bic,
        },
        index=pd.Index(ks, name="k"),
    ).astype("float64")
    inertia1 = float(((X - X.mean(axis=0)) ** 2).sum())
    return Evidence(
        table=table,
        centres={k: fits[k].centres for k in ks},
        baseline={"inertia": inertia1, "gap": gap1, "gap_se": gap1_se},
        silhouette_sample_size=sample_size,
        stability=stability,
        confirm_boot=confirm_boot,
    )


def confirm_levels(stability: dict[int, Stability], levels, confirm_boot: int, refit) -> int | None:
    """Search the largest usable level, adding refits only where the verdict is open.

    From the largest k in ``levels`` down: a k whose some segment's mean
    Jaccard is below 0.85 is passed over (more refits would hardly lift its
    lower bound above it); otherwise refits are added, ``n`` at a time (``n``
    the refits it has), up to ``confirm_boot``, re-checking the means after each
    batch. The first k that reaches ``confirm_boot`` refits with every
    segment's lower bound at least 0.85 (:func:`is_level`) ends the search:
    smaller k are not needed. ``stability`` is updated in place.

    Parameters
    ----------
    stability : dict of int to Stability
    levels : iterable of int
    confirm_boot : int
    refit : callable ``(k, stability, n_boot) -> Stability``
        Extends ``stability`` of k to ``n_boot`` replicates.

    Returns
    -------
    int or None
        The level found, or ``None``.
    """
    for k in sorted(levels, reverse=True):
        step = stability[k].n_boot
        while stability[k].n_boot < confirm_boot and _promising(stability[k]):
            stability[k] = refit(k, stability[k], min(stability[k].n_boot + step, confirm_boot))
        if is_level(stability[k], confirm_boot):
            return k
    return None


def is_level(stab: Stability, confirm_boot: int) -> bool:
    """Whether a k is a usable level: every segment highly stable with confidence on enough refits.

    At least ``confirm_boot`` refits, and every segment's one-sided 95 % lower
    bound of the mean Jaccard at least 0.85 (Hennig's "highly stable";
    :attr:`custseg.stability.Stability.all_highly_stable`).
    """
    return stab.n_boot >= confirm_boot and stab.all_highly_stable


def _promising(stab: Stability) -> bool:
    return bool((stab.segments["jaccard_mean"] >= HIGHLY_STABLE).all())


def choose_k(evidence: Evidence, k_values=None, *, fixed_k: int | None = None) -> Selection:
    """Apply the auto rule to the evidence for ``k_values`` (default: every k evaluated).

    The rule:

    1. Each criterion votes for one k: the *knee* of the log-inertia curve
       (offline Kneedle, :func:`kneedle`, on k = 1 and the candidates); the
       highest *silhouette*; the *gap* statistic (:func:`gap_rule`: 1 unless
       the best gap beats Gap(1) by more than both 2 s and 0.1, else the
       smallest k within one s of the best gap); and the lowest *BIC*.
       The candidate is the k with the most votes; ties go to the higher
       silhouette. A gap or BIC vote for the largest candidate k does not count
       unless the silhouette also peaks there: the criterion is still improving
       at the edge of the range and has not located a k.
    2. A k *reproduces* when every one of its segments is stable in the
       evidence's bootstrap (mean Jaccard >= 0.75, Hennig 2007). A k is a
       *usable level* when, on at least ``evidence.confirm_boot`` refits,
       every segment is highly stable with confidence: the one-sided 95 %
       lower bound of its mean Jaccard is at least 0.85 (:func:`is_level`).
    3. The structure is clear only when (a) the gap vote is not 1 (a single
       homogeneous group is rejected), (b) the candidate's silhouette is above
       0.25 (Kaufman and Rousseeuw's "no substantial structure" line), (c) at
       least two criteria vote for the candidate and (d) the candidate
       reproduces. Then the candidate is chosen.
    4. Otherwise there is no clear structure, and the choice is the largest
       usable level; when there is none, the k whose least stable segment has
       the highest lower bound (ties: the smaller k).

    The levels are searched, and their refits added, by :func:`evaluate_k`
    (:func:`confirm_levels`) among its ``levels``; here every k is judged on
    the refits it has.

    Parameters
    ----------
    evidence : Evidence
    k_values : iterable of int, optional
        The candidates the rule chooses among; each must have been evaluated.
    fixed_k : int, optional
        Use this k whatever the evidence says (the reason says whether the rule
        agrees); it must have been evaluated, and it does not vote.

    Returns
    -------
    Selection
    """
    evaluated = [int(k) for k in evidence.table.index]
    auto_ks = evaluated if k_values is None else _candidate_ks(k_values)
    missing = sorted(set(auto_ks) - set(evaluated)) + (
        [int(fixed_k)] if fixed_k is not None and int(fixed_k) not in evaluated else [])
    if missing:
        raise CustsegError(f"There is no evidence for k = {', '.join(map(str, missing))}; evaluate it first.")
    stability = {k: evidence.stability[k] for k in auto_ks}
    votes, auto_k, clear, why = _auto_rule(evidence.table.loc[auto_ks], evidence.baseline, stability,
                                           evidence.confirm_boot)
    chosen = int(fixed_k) if fixed_k is not None else auto_k
    reason = why if fixed_k is None else _fixed_reason(int(fixed_k), auto_k, evidence.stability[int(fixed_k)], why)
    return Selection(chosen_k=chosen, auto_k=auto_k, clear_structure=clear, reason=reason, evidence=evidence,
                     votes=votes, stable_ks=[k for k in auto_ks if stability[k].all_stable],
                     highly_stable_ks=[k for k in auto_ks if is_level(stability[k], evidence.confirm_boot)])


def fixed_k_without_evidence(k: int) -> Selection:
    """The selection of a fixed k when the evidence for other k was not computed."""
    return Selection(
        chosen_k=int(k), auto_k=None, clear_structure=None,
        reason=(f"k = {int(k)} was fixed; the evidence for other k was not computed "
                "(pass --evidence to compute it)."),
        evidence=None,
    )


def select_k(
    X,
    k_values=DEFAULTS.k_values(),
    *,
    fixed_k: int | None = None,
    engine: str | Engine = "sklearn",
    n_init: int = DEFAULTS.n_init,
    random_state: seeds.SeedLike = DEFAULTS.seed,
    silhouette_max_n: int = DEFAULTS.silhouette_max_n,
    n_refs: int = DEFAULTS.n_refs,
    stability_boot: int = CHOICE_BOOT,
    stability_max_n: int = CHOICE_MAX_N,
    progress=None,
) -> Selection:
    """Evaluate every candidate k (:func:`evaluate_k`), choose one (:func:`choose_k`), drill down.

    ``fixed_k`` is evaluated too when outside ``k_values``, but never votes.
    The drill-down (:func:`drill_down`) splits each segment of the chosen k,
    numbered by decreasing size; it uses the same ``n_init``, bootstrap size
    and sample cap. ``progress`` is advanced :func:`n_steps` times in total.
    """
    auto_ks = _candidate_ks(k_values)
    ks = sorted(set(auto_ks) | ({int(fixed_k)} if fixed_k is not None else set()))
    engine = get_engine(engine)
    seed = seeds.resolve(random_state)
    # Thousands of small products: BLAS and OpenMP threads cost more in start-up and spinning than they save
    # (card file, load 8 on 2 cores: 10.5 s CPU with threaded BLAS, 6.8 s without); the refits use the cores.
    with threadpool_limits(limits=1):
        return _select_k(X, ks, auto_ks, fixed_k, engine, n_init, seed, silhouette_max_n, n_refs, stability_boot,
                         stability_max_n, progress)


def _select_k(X, ks, auto_ks, fixed_k, engine, n_init, seed, silhouette_max_n, n_refs, stability_boot,
              stability_max_n, progress):
    evidence = evaluate_k(X, ks, engine=engine, n_init=n_init, seed=seed, silhouette_max_n=silhouette_max_n,
                          n_refs=n_refs, stability_boot=stability_boot, stability_max_n=stability_max_n,
                          levels=auto_ks, full_ks=() if fixed_k is None else (int(fixed_k),), progress=progress)
    selection = choose_k(evidence, auto_ks, fixed_k=fixed_k)
    X = _as_matrix(X)
    with single_threaded_kmeans():  # OpenMP threads only add contention on short passes
        labels = engine.assign(X, evidence.centres[selection.chosen_k])[0]
    selection.drilldown = drill_down(X, by_size(labels), engine=engine, n_init=n_init,
                                     seed=seeds.derive(seed, "drill-down"), n_boot=stability_boot,
                                     max_n=stability_max_n)
    return selection


def drill_down(X, labels, ks=DRILL_KS, *, engine: str | Engine = "sklearn", n_init: int = DEFAULTS.n_init,
               seed: seeds.SeedLike = DEFAULTS.seed, n_boot: int = CHOICE_BOOT, max_n: int = CHOICE_MAX_N) -> list[SubSegments]:
    """Split each segment where a split reproduces: the stability rule inside each segment.

    For each segment, k-means (best of ``n_init`` k-means++ starts) is fitted to
    its customers alone for the k in ``ks`` that leave at least two customers
    per sub-segment, from the largest down, each split is bootstrapped like the
    evidence (``n_boot`` refits on at most ``max_n`` customers), and the
    segment's sub-segments are those of the first (largest) k whose sub-segments
    are all stable (mean Jaccard >= 0.75); smaller k are then not tried, as they
    could not change the answer. When none is, the segment has no stable split
    (``k`` is ``None``). A split's refits stop once some sub-segment's mean can no
    longer reach 0.75 (:func:`custseg.stability.settled_below`): its verdict is
    that of all ``n_boot``.

    Parameters
    ----------
    X : ndarray of shape (n_customers, n_features)
    labels : array-like of int of shape (n_customers,)
        Segment of each customer, ``0..n_segments-1``.
    ks : iterable of int, default=DRILL_KS
    engine, n_init, seed, n_boot, max_n
        As :func:`evaluate_k`; each segment draws from its own child of ``seed``.

    Returns
    -------
    list of SubSegments
        One per segment, in segment order.
    """
    engine = get_engine(engine)
    labels = np.asarray(labels)
    n_segments = int(labels.max()) + 1
    # the segments are independent: each is a task on the cores (the largest first), read back in order
    with ThreadPoolExecutor(_threads(engine)) as pool:
        return list(pool.map(lambda job: _split(X[labels == job[0]], *job, ks, engine, n_init, n_boot, max_n),
                             zip(range(n_segments), seeds.spawn(seed, n_segments))))


def _split(Xs, segment, seed, ks, engine, n_init, n_boot, max_n) -> SubSegments:
    """:func:`drill_down` of one segment, its fits one after another (it runs beside the other segments)."""
    fitter = _small(engine, len(Xs), n_threads=1)
    fit_seed, boot_seed = seeds.spawn(seed, 2)
    found, stability = {}, {}
    k = None
    # from the largest split down: the first whose sub-segments are all stable is the answer; each fit draws
    # its restarts from the children of fit_seed after the earlier fits' (as one sequence of fits would)
    tries = sorted((k for k in ks if len(Xs) >= 2 * k), reverse=True)
    for j, k_try in enumerate(tries):
        found[k_try] = _labels(fitter, Xs, fitter.fit(Xs, k_try, n_init=n_init, seed=_after(fit_seed, j * n_init)))
        if len(np.unique(found[k_try])) < 2:
            continue
        # only "every sub-segment stable" is asked: a split is settled once one cannot be
        stability[k_try] = bootstrap_stability(Xs, found[k_try], n_boot=n_boot, max_n=max_n,
                                               n_init=CHOICE_N_INIT, random_state=boot_seed,
                                               engine=_side_by_side(engine, min(len(Xs), max_n)),
                                               stop_below=STABLE)
        if stability[k_try].all_stable:
            k = k_try
            break
    return SubSegments(segment=segment, n_customers=len(Xs), k=k, stability=stability,
                       labels=None if k is None else by_size(found[k]))


def by_size(labels) -> np.ndarray:
    """Renumber ``labels`` ``0..k-1`` by decreasing size (ties keep their order)."""
    labels = np.asarray(labels)
    order = np.argsort(-np.bincount(labels), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels]


def n_steps(k_values=DEFAULTS.k_values(), fixed_k: int | None = None, *, evidence: bool | None = None) -> int:
    """Total ``progress`` units selection reports (:func:`select_k`, or ``Segmenter.fit``'s selection).

    ``evidence`` as ``Segmenter``'s: ``None`` means computed for ``"auto"`` and skipped for a fixed k.
    """
    if not (fixed_k is None if evidence is None else evidence):
        return 0
    ks = set(_candidate_ks(k_values)) | ({int(fixed_k)} if fixed_k is not None else set())
    return 5 * len(ks)


# --------------------------------------------------------------------------- input


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise CustsegError(f"Expected a non-empty 2-D table of features; got shape {X.shape}.")
    if not np.isfinite(X).all():
        raise CustsegError("The features contain missing or infinite values; fill or drop them first.")
    return X


def _candidate_ks(k_values) -> list[int]:
    ks = sorted({int(k) for k in k_values})
    if not ks:
        raise CustsegError("No candidate numbers of segments were given.")
    if ks[0] < 2:
        raise CustsegError(f"Every candidate number of segments must be at least 2; got {ks[0]}.")
    return ks


def check_size(n: int, ks: list[int]) -> None:
    """Refuse fewer than two customers per segment at the largest k."""
    k_max = max(ks)
    if n < 2 * k_max:
        raise CustsegError(
            f"There are {n} customers, too few for {k_max} segments: the evidence needs at "
            f"least two customers per segment, so at least {2 * k_max} rows. Use fewer "
            f"segments or more customers."
        )



# ---------------------------------------------------------------------- silhouette


def _small(engine, n, n_threads=None):
    from custseg.engine.small import for_small  # numba on use: the command line starts without it

    return for_small(engine, n, n_threads)


def _labels(engine, X, fit):
    return fit.labels if fit.labels is not None else engine.assign(X, fit.centres)[0]


def _silhouette_part(X, label_sets, max_n, seed) -> _Part:
    """Mean silhouette and its standard error for each labelling, as a part (:func:`_run`).

    Exact (``se`` NaN) up to ``max_n`` rows; above, on one uniform sample of
    ``max_n`` rows shared by every labelling, with ``se = sd / sqrt(max_n)``.
    Its jobs are the row chunks of the distance sums (:class:`_Silhouettes`).
    """
    n = len(X)
    if n <= max_n:
        idx, sample_size = None, None
    else:
        idx = np.sort(seeds.generator(seed).choice(n, size=max_n, replace=False))
        sample_size = max_n
    Xs = X if idx is None else X[idx]
    sets = label_sets if idx is None else [np.asarray(lab)[idx] for lab in label_sets]
    work = _Silhouettes(Xs, sets)

    def finish(_) -> tuple[list[float], list[float], int | None]:
        per_point = work.samples()
        means = [float(s.mean()) for s in per_point]
        if idx is None:
            ses = [math.nan] * len(per_point)
        else:
            ses = [float(s.std(ddof=1) / math.sqrt(len(s))) for s in per_point]
        return means, ses, sample_size

    return _Part([partial(work.chunk, start) for start in work.starts], finish, len(label_sets))


def silhouette_samples_many(X, label_sets) -> list[np.ndarray]:
    """Per-point silhouettes for several labellings of the same points at once.

    Equivalent to ``sklearn.metrics.silhouette_samples(X, labels)`` for each
    labelling, but the Euclidean distance matrix is computed once, in row
    chunks, and multiplied by the stacked one-hot encodings of all labellings:
    row i of ``D @ onehot(labels)`` holds point i's summed distance to every
    cluster. Singletons get 0, as in scikit-learn. The chunks run on every core.

    Parameters
    ----------
    X : ndarray of shape (n, p)
    label_sets : sequence of array-like of shape (n,)
        Any hashable labels; each labelling needs 2 <= n_labels <= n - 1.

    Returns
    -------
    list of ndarray of shape (n,)
    """
    work = _Silhouettes(X, label_sets)
    with ThreadPoolExecutor(available_cores()) as pool:  # NumPy releases the GIL in products and sqrt
        list(pool.map(work.chunk, work.starts))
    return work.samples()


class _Silhouettes:
    """The distance sums behind :func:`silhouette_samples_many`, one row chunk at a time.

    ``D @ onehot`` is computed without holding the n x n distance matrix ``D``: each
    chunk of rows alone (:meth:`chunk`, any order, any thread), so the sums do not
    depend on the number of threads; :meth:`samples` turns them into silhouettes.
    """

    def __init__(self, X, label_sets):
        X = np.asarray(X, dtype=np.float64)
        n = len(X)
        self.codes, self.sizes = [], []
        for labels in label_sets:
            _, inverse, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
            if not 2 <= len(counts) <= n - 1:
                raise ValueError(f"silhouette needs 2 <= n_labels <= n - 1; got {len(counts)} labels for {n} points")
            self.codes.append(inverse.ravel())
            self.sizes.append(counts)
        self.offsets = np.cumsum([0] + [len(c) for c in self.sizes])
        self.onehot = np.zeros((n, self.offsets[-1]), dtype=np.float32)
        for code, start in zip(self.codes, self.offsets[:-1]):
            self.onehot[np.arange(n), start + code] = 1.0
        self.X = X
        self.sq = np.einsum("ij,ij->i", X, X)
        self.rows = max(1, _CHUNK_BYTES // (8 * n))
        self.starts = range(0, n, self.rows)
        self.sums = np.empty((n, self.onehot.shape[1]), dtype=np.float32)
        self._buffers = threading.local()

    def chunk(self, start: int) -> None:
        """Rows ``start`` to ``start + rows`` of the sums."""
        X, sq, n = self.X, self.sq, len(self.X)
        stop = min(n, start + self.rows)
        twice, d2, dist = self._scratch(stop - start)
        np.matmul(X[start:stop], X.T, out=twice)
        twice *= 2.0
        # (|x|^2 + |y|^2) - 2 x.y, clipped at 0, square-rooted and rounded to float32, as one NumPy expression
        # would, but a block of rows at a time so each step reads what the last one left in cache
        for lo in range(0, stop - start, _BLOCK_ROWS):
            hi = min(stop - start, lo + _BLOCK_ROWS)
            block = d2[: hi - lo]
            np.add(sq[start + lo:start + hi, None], sq[None, :], out=block)
            np.subtract(block, twice[lo:hi], out=block)
            np.maximum(block, 0.0, out=block)
            block[np.arange(hi - lo), np.arange(start + lo, start + hi)] = 0.0
            np.sqrt(block, out=block)
            dist[lo:hi] = block
        # float64 distances keep small gaps exact; the big product runs in float32.
        np.matmul(dist, self.onehot, out=self.sums[start:stop])

    def _scratch(self, rows: int):
        """This thread's buffers, kept between its chunks (fresh pages cost more than the arithmetic)."""
        held = getattr(self._buffers, "arrays", None)
        if held is None:
            n = len(self.X)
            held = self._buffers.arrays = (np.empty((self.rows, n)), np.empty((_BLOCK_ROWS, n)),
                                           np.empty((self.rows, n), dtype=np.float32))
        return held[0][:rows], held[1], held[2][:rows]

    def samples(self) -> list[np.ndarray]:
        """Each labelling's per-point silhouettes, once every chunk is done (the chunks' buffers are let go)."""
        self._buffers = threading.local()
        out = []
        for code, count, start, stop in zip(self.codes, self.sizes, self.offsets[:-1], self.offsets[1:]):
            out.append(_silhouette_from_sums(self.sums[:, start:stop].astype(np.float64), code, count))
        return out


def _silhouette_from_sums(sums, code, count):
    n = len(code)
    rows = np.arange(n)
    own_size = count[code]
    a = sums[rows, code] / np.maximum(own_size - 1, 1)
    mean_to = sums / count[None, :]
    mean_to[rows, code] = np.inf
    b = mean_to.min(axis=1)
    denom = np.maximum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(denom > 0, (b - a) / denom, 0.0)
    s[own_size == 1] = 0.0
    return s


# ----------------------------------------------------------------------------- gap


def _gap_part(X, ks, n_refs, engine, seed) -> _Part:
    """Gap statistic (Tibshirani, Walther & Hastie 2001) for k = 1 and ``ks``, as a part (:func:`_run`).

    Observed and reference data are clustered the same way (k-means with
    :data:`GAP_N_INIT` restarts) on the same number of rows, at most
    :data:`GAP_MAX_N`, so ``log W_k`` is comparable. References are uniform over
    the bounding box of the sample's principal components (the paper's method b).
    The sample, the observed fits and each reference set draw from their own
    child of ``seed``; on one set, the fit of the j-th k draws its restarts from the
    children after the earlier ks' (as fitting them one after another would).
    Its jobs are the k-means fits, one each.
    """
    sample_seed, observed_seed, *ref_seeds = seeds.spawn(seed, 2 + n_refs)
    n = len(X)
    if n > GAP_MAX_N:
        X = X[np.sort(seeds.generator(sample_seed).choice(n, size=GAP_MAX_N, replace=False))]
    centred = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    scores = centred @ vt.T
    lo, hi = scores.min(axis=0), scores.max(axis=0)
    sets, fit_seeds = [X], [observed_seed]
    for ref_seed in ref_seeds:
        data_seed, fit_seed = seeds.spawn(ref_seed, 2)
        sets.append(seeds.generator(data_seed).uniform(lo, hi, size=scores.shape) @ vt)
        fit_seeds.append(fit_seed)
    fitter = _small(engine, len(X), n_threads=1)
    jobs = [partial(fitter.fit, data, k, n_init=GAP_N_INIT, seed=_after(fit_seed, j * GAP_N_INIT))
            for data, fit_seed in zip(sets, fit_seeds) for j, k in enumerate(ks)]

    def finish(fits):
        log_w = _log_w(sets, [1, *ks], iter(fits))
        observed, refs = log_w[0], log_w[1:]
        gap = refs.mean(axis=0) - observed
        # The paper's sd_k uses 1/B; s_k inflates it for the simulation error.
        se = refs.std(axis=0, ddof=0) * math.sqrt(1.0 + 1.0 / n_refs)
        return list(gap[1:]), list(se[1:]), float(gap[0]), float(se[0])

    return _Part(jobs, finish, len(ks))


def _log_w(sets, ks, fits):
    """``log W_k`` of each data set (rows) for each k (columns), the fits for k > 1 taken from ``fits`` in order."""
    out = np.empty((len(sets), len(ks)))
    for i, X in enumerate(sets):
        for j, k in enumerate(ks):
            w = float(((X - X.mean(axis=0)) ** 2).sum()) if k == 1 else next(fits).inertia
            out[i, j] = math.log(max(w, np.finfo(float).tiny))
    return out


# ----------------------------------------------------------------------------- BIC


def _bic_part(X, centres, seed) -> _Part:
    """BIC of a diagonal Gaussian mixture per k, started from the k-means centres, as a part (:func:`_run`).

    The mixture is seeded with ``seed`` itself; the sample it is fitted on
    (above :data:`GMM_MAX_N` customers) draws from a stream derived from it.
    Its jobs are the mixtures, one per k.
    """
    n = len(X)
    if n > GMM_MAX_N:
        X = X[np.sort(seeds.generator(seeds.derive(seed, "gmm-sample")).choice(n, size=GMM_MAX_N, replace=False))]
    return _Part([partial(_bic, X, k, means, seed) for k, means in centres.items()], list, len(centres))


def _bic(X, k, means, seed) -> float:
    gmm = gaussian_mixture(k, seed, means_init=means, max_iter=GMM_MAX_ITER)
    with single_threaded_kmeans():  # its k-means initialisation
        gmm.fit(X)
    return float(gmm.bic(X))


def _separation(X, labels) -> tuple[float, float]:
    """Calinski-Harabasz and Davies-Bouldin of one labelling."""
    return float(calinski_harabasz_score(X, labels)), float(davies_bouldin_score(X, labels))


# ------------------------------------------------------------------------- tasks


@dataclass
class _Part:
    """One piece of evidence as independent jobs and what turns their results, in order, into it."""

    jobs: list[Callable[[], object]]
    finish: Callable[[list], object]
    #: ``progress`` units the part stands for.
    steps: int = 0


def _run(pool: ThreadPoolExecutor, parts: list[_Part], progress=None) -> list:
    """Every job of every part on ``pool`` (submitted in the order given), then each part's result in order.

    ``progress`` advances by each part's ``steps`` once its result is in (in the calling thread).
    """
    futures = [[pool.submit(job) for job in part.jobs] for part in parts]
    out = []
    for part, pending in zip(parts, futures):
        out.append(part.finish([f.result() for f in pending]))
        if part.steps:
            tick(progress, part.steps)
    return out


def _threads(engine: Engine) -> int:
    """Threads for independent tasks: the cores with the stock in-memory engines, one with any other."""
    from custseg.engine.chunked import ChunkedEngine
    from custseg.engine.sklearn import SklearnEngine
    from custseg.engine.small import SmallEngine

    return available_cores() if type(engine) in (SklearnEngine, ChunkedEngine, SmallEngine) else 1


def _side_by_side(engine: Engine, n: int) -> Engine:
    """The engine for fits of ``n`` rows inside a task that runs beside others: one thread of its own."""
    return _small(engine, n, n_threads=1)


def _after(seed: np.random.SeedSequence, spawned: int) -> np.random.SeedSequence:
    """``seed`` as it stands once ``spawned`` more children were spawned from it (``seed`` is not changed)."""
    return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size,
                                  n_children_spawned=seed.n_children_spawned + spawned)


# ------------------------------------------------------------------------ auto rule


def kneedle(x, y) -> int:
    """Index of the knee of a decreasing, convex curve (offline Kneedle).

    Both axes are scaled to [0, 1]; the knee is the point furthest below the
    chord from the first to the last point (Satopaa et al. 2011, the maximum of
    the difference curve).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3:
        return int(np.argmin(y))
    xn = (x - x[0]) / (x[-1] - x[0])
    span = y[0] - y[-1]
    yn = (y - y[-1]) / span if span > 0 else np.zeros_like(y)
    return int(np.argmax((1.0 - xn) - yn))


def gap_rule(ks, gap, gap_se, *, null_se: float = GAP_NULL_SE, min_lift: float = GAP_MIN_LIFT) -> int:
    """The k the gap statistic points to (a "globalSEmax" rule).

    Take k* with the largest gap. If ``ks`` starts at 1 and the best gap does
    not beat ``Gap(1)`` by more than both ``null_se * s_k*`` and ``min_lift``,
    answer 1 (no evidence against a single homogeneous group); otherwise answer the smallest k whose gap is
    within one ``s`` of the best, ``Gap(k) >= Gap(k*) - s_k*`` (Dudoit and
    Fridlyand 2002; Tibshirani et al.'s one-standard-error idea applied to the
    global maximum).

    Two deliberate departures from the paper's literal rule (smallest k with
    ``Gap(k) >= Gap(k+1) - s_k+1``): it stops at the first plateau, and with
    several well-separated groups ``Gap(1)`` and ``Gap(2)`` are often equal, so
    it answers 1 on clearly clustered data; and the best of many noisy gaps is
    biased upwards, so leaving k = 1 needs ``null_se`` (default 2) standard
    errors rather than one, and a lift of at least ``min_lift`` (0.1): on
    uniform noise the lift reached 0.07 and, with only B reference sets, 2.7
    standard errors, while clear blobs lift by 0.2 or more.
    """
    gap = np.asarray(gap, dtype=float)
    gap_se = np.asarray(gap_se, dtype=float)
    best = int(np.argmax(gap))
    if ks[0] == 1 and gap[best] - gap[0] <= max(null_se * gap_se[best], min_lift):
        return 1
    within = np.flatnonzero(gap[: best + 1] >= gap[best] - gap_se[best])
    within = within[np.asarray(ks)[within] > 1]
    return int(ks[int(within[0])])


def _auto_rule(table, baseline, stability, confirm_boot):
    """Votes, the chosen k, whether the structure is clear, and the reason."""
    ks = [int(k) for k in table.index]
    sil = table["silhouette"].to_numpy()
    votes = {
        "knee": [1, *ks][kneedle([1, *ks], np.log(np.maximum([baseline["inertia"], *table["inertia"]], 1e-300)))],
        "silhouette": ks[int(np.argmax(sil))],
        "gap": gap_rule([1, *ks], [baseline["gap"], *table["gap"]], [baseline["gap_se"], *table["gap_se"]]),
        "bic": ks[int(np.nanargmin(table["gmm_bic"].to_numpy()))],
    }
    counted = _counted_votes(votes, ks)
    tally = {k: sum(counted[name] == k for name in counted) for k in ks}
    most_votes = max(tally.values())
    tied = [k for k in ks if tally[k] == most_votes]
    candidate = max(tied, key=lambda k: table.at[k, "silhouette"])
    cand_sil = float(table.at[candidate, "silhouette"])

    problems = []
    if votes["gap"] == 1:
        best = int(np.argmax(table["gap"].to_numpy()))
        best_gap, best_se = table["gap"].iloc[best], table["gap_se"].iloc[best]
        problems.append(
            "the gap statistic does not reject a single homogeneous group (the best gap, "
            f"{best_gap:.3f} at k = {ks[best]}, is only {best_gap - baseline['gap']:.3f} above "
            f"Gap(1) = {baseline['gap']:.3f}; leaving k = 1 needs more than both "
            f"{GAP_NULL_SE:g} standard errors ({GAP_NULL_SE * best_se:.3f}) and {GAP_MIN_LIFT:g})"
        )
    if cand_sil <= SILHOUETTE_FLOOR:
        problems.append(
            f"the silhouette at k = {candidate} is {cand_sil:.2f}, at or below the "
            f"{SILHOUETTE_FLOOR} below which Kaufman and Rousseeuw find no substantial structure"
        )
    if most_votes < 2:
        problems.append("no two criteria agree on a number of segments")
    if not stability[candidate].all_stable:
        st = stability[candidate]
        problems.append(
            f"at k = {candidate} only {int((st.segments['jaccard_mean'] >= STABLE).sum())} of {candidate} "
            f"segments reproduce (least stable: mean Jaccard {st.jaccard_min:.2f})"
        )
    summary = _vote_summary(votes)
    open_ended = [name for name in votes if counted[name] is None and votes[name] == ks[-1]]
    if open_ended and len(ks) > 1:
        which = " and ".join(_SHORT[name] for name in open_ended)
        summary += (
            f"; the {which} {'is' if len(open_ended) == 1 else 'are'} still improving at k = {ks[-1]}, "
            f"the largest candidate, so {'it does' if len(open_ended) == 1 else 'they do'} not vote"
        )
    boot = _bootstrap_phrase(stability[candidate])
    if not problems:
        why = (
            f"k = {candidate}: {_support(counted, candidate)} ({summary}). The gap statistic rejects a "
            f"single homogeneous group, the silhouette of {cand_sil:.2f} is above {SILHOUETTE_FLOOR}, and "
            f"every segment reproduces in {boot} (least stable: mean Jaccard "
            f"{stability[candidate].jaccard_min:.2f}), so the data show separated groups.{_stopped(stability, ks)}"
        )
        return votes, candidate, True, why
    head = f"No clear structure: {'; '.join(problems)}. The criteria point to {summary}."
    highly = [k for k in ks if is_level(stability[k], confirm_boot)]
    if highly:
        k = max(highly)
        st = stability[k]
        why = (
            f"{head} k = {k} is the largest number of segments that are all highly stable: in "
            f"{_bootstrap_phrase(st)} every segment's mean Jaccard is at least {HIGHLY_STABLE} with "
            f"{CONFIDENCE:.0%} confidence (least stable: mean {st.jaccard_min:.2f}, lower bound "
            f"{st.lower_min:.2f}){_above(stability, ks, k)}. Use them as a convenient partition of a "
            f"continuum rather than as distinct groups; the drill-down splits each segment further where "
            f"a split reproduces.{_stopped(stability, ks)}"
        )
        return votes, k, False, why
    k = max(ks, key=lambda c: (stability[c].lower_min, -c))
    why = (
        f"{head} No k from {ks[0]} to {ks[-1]} has all its segments highly stable (mean Jaccard at least "
        f"{HIGHLY_STABLE} with {CONFIDENCE:.0%} confidence in {confirm_boot} bootstrap refits); k = {k} has "
        f"the most stable least-stable segment (mean Jaccard {stability[k].jaccard_min:.2f}, lower bound "
        f"{stability[k].lower_min:.2f} in {stability[k].n_boot} refits). Treat the segments as tentative."
        f"{_stopped(stability, ks)}"
    )
    return votes, k, False, why


def _above(stability, ks, k):
    """Why the larger candidates are not the level: each one's least stable segment."""
    larger = [c for c in ks if c > k]
    if not larger:
        return ""
    bounds = ", ".join(f"{stability[c].lower_min:.2f}" for c in larger)
    return (f"; every larger k has a segment that falls short (lower bound of the least stable segment at "
            f"k = {', '.join(map(str, larger))}: {bounds})")


def _bootstrap_phrase(stab: Stability) -> str:
    made = f"{stab.n_boot} of {stab.n_planned} planned" if stab.stopped_early else f"{stab.n_boot}"
    return f"{made} bootstrap refits on {stab.sample_size:,} customers"


def _stopped(stability, ks):
    """A sentence naming the ks whose refits stopped once their verdict was settled ("" when none did)."""
    early = [k for k in ks if stability[k].stopped_early]
    if not early:
        return ""
    counts = ", ".join(f"k = {k} after {stability[k].n_boot} of {stability[k].n_planned}" for k in early)
    return (f" Refits stopped early where the verdict was settled ({counts}): the mean Jaccard of a segment could "
            f"no longer reach the threshold ({STABLE} for stable, {HIGHLY_STABLE} while confirming a level) even "
            f"if every remaining refit found it exactly, so more refits could not change the verdict; their "
            f"figures rest on the refits made.")


def _counted_votes(votes, ks):
    """Votes that count towards the tally.

    The gap and the BIC keep improving with k on large samples of continuous
    data; when either peaks at the largest candidate while the silhouette does
    not, it has not located a k (only "k_max or more") and abstains.
    """
    counted = dict(votes)
    if len(ks) > 1:
        for name in ("gap", "bic"):
            if votes[name] == ks[-1] and votes["silhouette"] != ks[-1]:
                counted[name] = None
    return counted


_LABELS = {
    "knee": "the knee of the inertia curve",
    "silhouette": "the highest silhouette",
    "gap": "the gap statistic",
    "bic": "the lowest Gaussian-mixture BIC",
}


def _support(votes, k):
    agree = [_LABELS[name] for name, v in votes.items() if v is not None and v == k]
    if not agree:
        return "no criterion picks it directly"
    if len(agree) == 1:
        return f"{agree[0]} picks it"
    return f"{', '.join(agree[:-1])} and {agree[-1]} agree on it"


_SHORT = {"knee": "knee", "silhouette": "silhouette", "gap": "gap", "bic": "BIC"}


def _vote_summary(votes):
    return ", ".join(f"{_SHORT[name]} {v}" for name, v in votes.items())


def _fixed_reason(fixed_k, auto_k, stab, why):
    if stab.all_stable:
        reproduce = f"all {fixed_k} segments reproduce (least stable: mean Jaccard {stab.jaccard_min:.2f})"
    else:
        reproduce = (f"{int((stab.segments['jaccard_mean'] < STABLE).sum())} of its {fixed_k} segments do not "
                     f"reproduce (least stable: mean Jaccard {stab.jaccard_min:.2f})")
    agree = "the rule agrees" if auto_k == fixed_k else f"on its own the rule would choose k = {auto_k}"
    return f"k = {fixed_k} was fixed by the user; {reproduce}, and {agree}. {why}"
