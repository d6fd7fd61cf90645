"""k-means for small in-memory data: the thousands of short refits behind the choice of k.

The choice of k fits k-means a few thousand times on at most tens of thousands of
customers (bootstrap refits, gap references, the drill-down). At that size a
scikit-learn fit spends more time validating parameters, limiting thread pools and
calling BLAS on tiny blocks than computing, and the chunked engine hands every pass
to a thread pool. :class:`SmallEngine` runs greedy k-means++ and Lloyd's iterations
in one compiled function per fit (numba, nopython, ``cache=True`` so no process
compiles it twice), single-threaded and without releasing to Python between
passes. The kernels release the GIL, so independent fits run side by side on
threads (the bootstrap refits, :func:`custseg.stability.bootstrap_stability`, and
the choice of k's tasks, :mod:`custseg.selection`); results do not depend on the
number of threads.

The arithmetic follows scikit-learn's Lloyd k-means (``algorithm="lloyd"``): greedy
k-means++ with ``2 + int(log k)`` candidates per centre, centres moved to the mean of
their rows, empty clusters relocated to the rows farthest from their centres, and a
stop when the squared centre shift is at most ``tol`` times the mean feature
variance (then one last assignment so labels and centres agree). The random
numbers come from NumPy generators seeded by child ``SeedSequence`` s, so results
differ from scikit-learn's bit for bit but not in kind (see ``docs/evidence.md``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import Engine, Fit, Seed

#: Rows up to which :func:`for_small` hands fits of the stock in-memory engines to :class:`SmallEngine`.
SMALL_MAX_N = 50_000


@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _assign(X, C, labels, dist2):  # pragma: no cover - compiled
    """Nearest centre of every row (ties: the lower index); returns how many rows changed centre."""
    n, p = X.shape
    k = C.shape[0]
    changed = 0
    for i in range(n):
        best = np.inf
        arg = 0
        for j in range(k):
            d = 0.0
            for f in range(p):
                t = X[i, f] - C[j, f]
                d += t * t
            if d < best:
                best = d
                arg = j
        if arg != labels[i]:
            changed += 1
            labels[i] = arg
        dist2[i] = best
    return changed


@njit(nogil=True, cache=True)
def _means(X, labels, dist2, C, out):  # pragma: no cover - compiled
    """Each centre moved to the mean of its rows; an empty one to the next farthest row. Returns the squared shift."""
    n, p = X.shape
    k = C.shape[0]
    counts = np.zeros(k, dtype=np.int64)
    out[:] = 0.0
    for i in range(n):
        j = labels[i]
        counts[j] += 1
        for f in range(p):
            out[j, f] += X[i, f]
    empty = 0
    for j in range(k):
        if counts[j] == 0:
            empty += 1
    if empty:
        far = np.argsort(-dist2, kind="mergesort")
        used = 0
        for j in range(k):
            if counts[j] == 0:
                i = far[used]
                used += 1
                counts[labels[i]] -= 1
                for f in range(p):
                    out[labels[i], f] -= X[i, f]
                    out[j, f] = X[i, f]
                counts[j] = 1
                labels[i] = j
    shift = 0.0
    for j in range(k):
        for f in range(p):
            v = out[j, f] / counts[j] if counts[j] > 0 else C[j, f]
            out[j, f] = v
            t = v - C[j, f]
            shift += t * t
    return shift


@njit(nogil=True, cache=True)
def _lloyd(X, C, max_iter, tol, labels, dist2):  # pragma: no cover - compiled
    """Lloyd's iterations from ``C`` (updated in place); returns the iterations run."""
    nxt = np.empty_like(C)
    labels[:] = -1
    it = 0
    while it < max_iter:
        it += 1
        changed = _assign(X, C, labels, dist2)
        if changed == 0:
            return it  # the centres are already the means of their rows
        shift = _means(X, labels, dist2, C, nxt)
        C[:] = nxt
        if shift <= tol:
            break
    _assign(X, C, labels, dist2)
    return it


@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _plusplus(X, first, uniforms, C):  # pragma: no cover - compiled
    """Greedy k-means++ (scikit-learn's): ``first`` row, then per centre the best of ``uniforms.shape[1]`` draws."""
    n, p = X.shape
    k = C.shape[0]
    trials = uniforms.shape[1]
    closest = np.empty(n)
    cand = np.empty(n)
    best_d = np.empty(n)
    cum = np.empty(n)
    C[0] = X[first]
    pot = 0.0
    for i in range(n):
        d = 0.0
        for f in range(p):
            t = X[i, f] - C[0, f]
            d += t * t
        closest[i] = d
        pot += d
    for c in range(1, k):
        s = 0.0
        for i in range(n):
            s += closest[i]
            cum[i] = s
        best_pot = np.inf
        best_row = 0
        for t in range(trials):
            row = min(np.searchsorted(cum, uniforms[c - 1, t] * s), n - 1)
            cand_pot = 0.0
            for i in range(n):
                d = 0.0
                for f in range(p):
                    u = X[i, f] - X[row, f]
                    d += u * u
                m = min(d, closest[i])
                cand[i] = m
                cand_pot += m
            if cand_pot < best_pot:
                best_pot = cand_pot
                best_row = row
                best_d[:] = cand
        pot = best_pot
        closest[:] = best_d
        C[c] = X[best_row]


def restart_seeds(seed: Seed, n_init: int) -> list[np.random.SeedSequence]:
    """The seed of each restart: the children ``SeedSequence(seed).spawn(n_init)`` would give, without spawning.

    ``spawn`` advances the caller's sequence, so a second fit from the same sequence
    would draw other restarts, and fits run side by side on threads would draw them in
    whatever order the threads reached it. These children are the next ``n_init`` of
    ``seed`` as it stands, and ``seed`` is left as it is.
    """
    parent = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    first = parent.n_children_spawned
    return [np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, first + i), pool_size=parent.pool_size)
            for i in range(max(n_init, 0))]


def seeds_for(X: np.ndarray, k: int, n_init: int, seed: Seed) -> list[tuple[int, np.ndarray]]:
    """The random draws of each restart's k-means++: the first row and the uniforms for the candidates.

    Restart ``i`` draws from the ``i``-th child of ``SeedSequence(seed)`` (:func:`restart_seeds`).
    """
    trials = 2 + int(math.log(k))
    out = []
    for child in restart_seeds(seed, n_init):
        rng = np.random.default_rng(child)
        out.append((int(rng.integers(len(X))), rng.random((k - 1, trials))))
    return out


class SmallEngine(Engine):
    """Compiled single-threaded k-means for data of up to tens of thousands of rows.

    Parameters
    ----------
    max_iter : int, default 300
        Lloyd iterations per restart (scikit-learn's default).
    tol : float, default 1e-4
        Stop when the squared centre shift is at most ``tol`` times the mean feature
        variance (scikit-learn's rule).
    n_threads : int, optional
        Fits that callers run side by side with this engine (the bootstrap refits in
        flight, :func:`custseg.stability.bootstrap_stability`); default: the cores this
        process may use. Results do not depend on it.
    """

    name = "small"

    def __init__(self, max_iter: int = 300, tol: float = 1e-4, n_threads: int | None = None):
        self.max_iter = max_iter
        self.tol = tol
        self.n_threads = n_threads

    def fit(self, X: np.ndarray, k: int, *, n_init: int, seed: Seed, init: np.ndarray | None = None) -> Fit:
        """Best of ``n_init`` restarts by inertia (the first on ties), or one run from ``init``."""
        X = _matrix(X)
        if not 1 <= k <= len(X):
            raise ValueError(f"k must be between 1 and the number of rows ({len(X)}), got {k}")
        if init is not None:
            init = np.asarray(init, dtype=np.float64)
            if init.shape != (k, X.shape[1]):
                raise ValueError(f"expected {k} centres of {X.shape[1]} features, got shape {init.shape}")
            starts = [np.array(init, copy=True)]
        else:
            if n_init < 1:
                raise ValueError(f"n_init must be at least 1, got {n_init}")
            starts = []
            for first, uniforms in seeds_for(X, k, n_init, seed):
                C = np.empty((k, X.shape[1]))
                _plusplus(X, first, uniforms, C)
                starts.append(C)
        tol = self.tol * float(np.mean(np.var(X, axis=0)))
        best = None
        for C in starts:
            labels = np.empty(len(X), dtype=np.int64)
            dist2 = np.empty(len(X))
            n_iter = _lloyd(X, C, self.max_iter, tol, labels, dist2)
            inertia = float(dist2.sum())
            if best is None or inertia < best.inertia:
                best = Fit(centres=C, inertia=inertia, n_iter=int(n_iter), labels=labels)
        return best

    def assign(self, X: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = _matrix(X)
        centres = np.ascontiguousarray(centres, dtype=np.float64)
        labels = np.full(len(X), -1, dtype=np.int64)
        dist2 = np.empty(len(X))
        _assign(X, centres, labels, dist2)
        return labels, np.sqrt(dist2)


def for_small(engine: Engine, n: int, n_threads: int | None = None) -> Engine:
    """The engine to fit ``n`` in-memory rows with: :class:`SmallEngine` in place of a stock local engine.

    scikit-learn's and the chunked engine (exactly those classes, not subclasses)
    give way up to :data:`SMALL_MAX_N` rows; any other engine (Spark, a caller's own)
    is used as it is. ``n_threads`` is the :class:`SmallEngine`'s (``1`` for fits
    that already run side by side on threads of their own); the results do not depend on it.
    """
    from .chunked import ChunkedEngine
    from .sklearn import SklearnEngine

    if type(engine) in (SklearnEngine, ChunkedEngine) and n <= SMALL_MAX_N:
        return _shared() if n_threads is None else SmallEngine(n_threads=n_threads)
    return engine


_SHARED: SmallEngine | None = None


def _shared() -> SmallEngine:
    global _SHARED
    if _SHARED is None:
        _SHARED = SmallEngine()
    return _SHARED


def _matrix(X) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {X.shape}")
    return X
