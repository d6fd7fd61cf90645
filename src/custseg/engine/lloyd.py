"""Lloyd's k-means close to the machine's memory bandwidth, without copying X.

A pass streams X once. The rows are cut into fixed segments of
:data:`SEGMENT_ROWS` (handed to threads) and each segment into blocks of
:data:`BLOCK_ROWS` that stay in cache: for a block, the nearest-centre kernel of
:mod:`custseg.engine.kernels` scores every row against every centre in vector
registers and takes its arg-min, and compiled code (numba) updates the float64
centre sums while the block is still in cache. Every pass (plain, bounded, over
batches, assignment) scores with that one kernel, so they agree on every label.
Segment results are reduced in segment order, so the result does not depend on
the number of threads.

Iterations follow scikit-learn's Lloyd k-means (``algorithm="lloyd"``): from the same
initial centres they move each centre to the mean of its rows, relocate empty
clusters to the rows farthest from their centres, and stop when the squared
centre shift is at most ``tol`` times the mean feature variance (taken from the
first pass, not from a pass of its own), or after ``max_iter`` passes.

Two drivers share that pass. :func:`lloyd` runs over the chunks a callable yields
once per pass (batches read from Parquet or SQL) and recomputes the sums every
pass. :func:`lloyd_in_memory` keeps each row's label between passes, so only rows
that change centre touch the sums, and computes the inertia from the sums instead
of a distance pass; once few rows change centre it switches to Hamerly's (2010)
bounds (two float32 per row), which skip the rows whose centre provably did not
change. Both give the same labels from the same centres.

Seeding is scikit-learn's greedy k-means++ rule, compiled (:func:`seed_centres`),
on a uniform sample of at most :data:`SEED_SAMPLE` rows drawn without
replacement, so it costs the same at ten million rows as at a hundred thousand.

The threads run compiled code that releases the GIL; NumPy's BLAS is held to one
thread while they run, so it never competes with them for the cores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit
from threadpoolctl import ThreadpoolController

from .base import available_cores
from .kernels import centres_for_kernel, nearest_block, nearest_two_block

#: Rows per block: the block's rows stay in cache between scoring them and updating the sums.
BLOCK_ROWS = 4096
#: Rows per unit of work handed to a thread; results are reduced in this order.
SEGMENT_ROWS = 1 << 18
#: Rows k-means++ seeding looks at (a uniform sample when X has more).
SEED_SAMPLE = 100_000

Chunks = Callable[[], Iterable[np.ndarray]]


@dataclass(frozen=True)
class LloydResult:
    """Centres after Lloyd's iterations, the number of passes that moved them, and the tolerance used."""

    centres: np.ndarray
    n_iter: int
    tol: float


def check_matrix(X) -> np.ndarray:
    """``X`` as a C-contiguous float32 or float64 matrix: as it is when it already is one (no copy)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D matrix of rows × features, got shape {X.shape}")
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(X, dtype=dtype)


# ------------------------------------------------------------------ compiled kernels
# Reassociation lets LLVM vectorise these sums over the features (measured 2x faster at 17
# features); their order then depends on the compiled code only, not on the data or threads.
@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _sqdist(X, r, C, j):  # pragma: no cover - compiled
    """‖X[r] - C[j]‖² in float64."""
    d = 0.0
    for f in range(X.shape[1]):
        v = X[r, f] - C[j, f]
        d += v * v
    return d


@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _sqnorm(X, r):  # pragma: no cover - compiled
    """‖X[r]‖² in float64."""
    d = 0.0
    for f in range(X.shape[1]):
        v = np.float64(X[r, f])
        d += v * v
    return d


@njit(nogil=True, cache=True)
def _add_rows(rows, labels, sums, counts, with_squares):  # pragma: no cover - compiled
    """Each row added to its centre's float64 sum and count; returns the sum of ``‖x‖²`` if asked (else 0)."""
    squares = 0.0
    for r in range(rows.shape[0]):
        j = labels[r]
        for f in range(rows.shape[1]):
            sums[j, f] += rows[r, f]
        counts[j] += 1
    if with_squares:
        for r in range(rows.shape[0]):
            squares += _sqnorm(rows, r)
    return squares


@njit(nogil=True, cache=True)
def _accumulate(X, c2t, cn, sums, counts, with_squares, block):  # pragma: no cover - compiled
    """Per-centre sums and counts of the rows of ``X`` nearest to each centre; the sum of ``‖x‖²`` if asked."""
    best = np.empty(min(block, X.shape[0]), dtype=np.int64)
    low = np.empty(len(best), dtype=X.dtype)
    squares = 0.0
    for lo in range(0, X.shape[0], block):
        rows = X[lo:lo + block]
        nearest_block(rows, c2t, cn, best, low)
        squares += _add_rows(rows, best, sums, counts, with_squares)
    return squares


@njit(nogil=True, cache=True)
def _nearest(X, c2t, cn, C, labels, dist, block):  # pragma: no cover - compiled
    """Nearest centre of each row into ``labels`` and the float64 Euclidean distance to it into ``dist``."""
    low = np.empty(min(block, X.shape[0]), dtype=X.dtype)
    for lo in range(0, X.shape[0], block):
        rows = X[lo:lo + block]
        nearest_block(rows, c2t, cn, labels[lo:lo + block], low)
        for r in range(rows.shape[0]):
            dist[lo + r] = np.sqrt(_sqdist(rows, r, C, labels[lo + r]))


# ------------------------------------------------------------------ one pass
class _Prepared:
    """Centres in the form the kernels read: ``-2 Cᵀ`` and ``‖c‖²`` in X's dtype (padded, see
    :func:`~custseg.engine.kernels.centres_for_kernel`), ``C`` in float64."""

    def __init__(self, centres: np.ndarray, dtype):
        self.C = np.ascontiguousarray(centres, dtype=np.float64)
        self.c2t, self.cn = centres_for_kernel(self.C, dtype)


def _segments(X: np.ndarray) -> list[np.ndarray]:
    return [X[lo:lo + SEGMENT_ROWS] for lo in range(0, len(X), SEGMENT_ROWS)]


def _segment_sums(X: np.ndarray, prep: _Prepared, with_squares: bool):
    # Non-finite rows are reported once, by the caller, after the pass.
    k, p = prep.C.shape
    sums = np.zeros((k, p))
    counts = np.zeros(k, dtype=np.int64)
    squares = _accumulate(X, prep.c2t, prep.cn, sums, counts, with_squares, BLOCK_ROWS)
    return sums, counts, squares


class Pool:
    """Threads over segments with BLAS held to one thread each, for the life of a ``with`` block."""

    def __init__(self, n_threads: int | None = None):
        self.n_threads = n_threads

    def __enter__(self) -> Pool:
        self._limits = _controller().limit(limits=1, user_api="blas")
        self._executor = ThreadPoolExecutor(max_workers=self.n_threads or available_cores())
        return self

    def __exit__(self, *exc) -> None:
        self._executor.shutdown()
        self._limits.restore_original_limits()

    def map(self, fn, items):
        return list(self._executor.map(fn, items))


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # Finding the loaded BLAS libraries costs milliseconds; do it once per process.
    return ThreadpoolController()


def pass_sums(X: np.ndarray, centres: np.ndarray, pool: Pool, *, with_squares: bool = False):
    """One Lloyd pass over ``X``: per-centre float64 sums and counts of the rows nearest to each centre.

    Returns ``(sums (k, p), counts (k,), squares)`` where ``squares`` is the
    float64 sum of ``‖x‖²`` over all rows when ``with_squares`` (else 0).
    """
    prep = _Prepared(centres, X.dtype)
    parts = pool.map(lambda seg: _segment_sums(seg, prep, with_squares), _segments(X))
    k, p = prep.C.shape
    sums, counts, squares = np.zeros((k, p)), np.zeros(k, dtype=np.int64), 0.0
    for s, c, q in parts:
        sums += s
        counts += c
        squares += q
    return sums, counts, squares


def nearest(X: np.ndarray, centres: np.ndarray, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (int64) of each row and the exact Euclidean distance (float64) to it."""
    labels = np.empty(len(X), dtype=np.int64)
    dist = np.empty(len(X), dtype=np.float64)
    prep = _Prepared(centres, X.dtype)
    bounds = range(0, len(X), SEGMENT_ROWS)
    pool.map(lambda lo: _nearest(X[lo:lo + SEGMENT_ROWS], prep.c2t, prep.cn, prep.C, labels[lo:lo + SEGMENT_ROWS],
                                 dist[lo:lo + SEGMENT_ROWS], BLOCK_ROWS), bounds)
    return labels, dist


# ------------------------------------------------------------------ Lloyd
def lloyd(chunks: Chunks, init: np.ndarray, pool: Pool, *, max_iter: int = 300, tol: float = 1e-4) -> LloydResult:
    """Lloyd's iterations from ``init`` over the rows ``chunks()`` yields (called once per pass).

    ``chunks`` yields C-contiguous float matrices; an in-memory X is one chunk, a
    table read in batches is many. Stops as scikit-learn's ``KMeans`` does (see the
    module docstring); empty clusters take the rows farthest from their centres.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    centres = np.array(init, dtype=np.float64, copy=True)
    tol_scaled = None
    for it in range(1, max_iter + 1):
        sums, counts, n, col_sum, squares = _full_pass(chunks, centres, pool, with_squares=tol_scaled is None)
        if tol_scaled is None:
            mean = col_sum / n
            tol_scaled = tol * max(squares / n - float(mean @ mean), 0.0) / len(mean)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            _relocate(chunks, centres, pool, empty, sums, counts)
        moved = sums / counts[:, None]
        shift = float(((moved - centres) ** 2).sum())
        centres = moved
        if shift <= tol_scaled:
            break
    return LloydResult(centres=centres, n_iter=it, tol=tol_scaled)


def _full_pass(chunks: Chunks, centres: np.ndarray, pool: Pool, *, with_squares: bool):
    k, p = centres.shape
    sums, counts, squares, n = np.zeros((k, p)), np.zeros(k, dtype=np.int64), 0.0, 0
    for X in chunks():
        s, c, q = pass_sums(X, centres, pool, with_squares=with_squares)
        sums += s
        counts += c
        squares += q
        n += len(X)
    if n == 0:
        raise ValueError("no rows to cluster")
    if not (np.isfinite(sums).all() and np.isfinite(squares)):
        raise ValueError("the matrix holds NaN or infinite values; impute or drop them before clustering")
    return sums, counts, n, sums.sum(axis=0), squares


def _relocate(chunks: Chunks, centres: np.ndarray, pool: Pool, empty: np.ndarray,
              sums: np.ndarray, counts: np.ndarray) -> list[tuple[int, int]]:
    """Give each empty cluster one of the rows farthest from their centre, as scikit-learn does.

    Returns the (cluster, row number) pairs moved.
    """
    far = _farthest(chunks, centres, pool, len(empty))
    for cluster, (_, _, row, label) in zip(empty, far):
        sums[label] -= row
        counts[label] -= 1
        sums[cluster] = row
        counts[cluster] = 1
    return [(int(cluster), number) for cluster, (_, number, _, _) in zip(empty, far)]


def _farthest(chunks: Chunks, centres: np.ndarray, pool: Pool, m: int) -> list:
    """The ``m`` rows farthest from their nearest centre as (distance, row number, row, label), farthest first."""
    found = []
    offset = 0
    for X in chunks():
        labels, dist = nearest(X, centres, pool)
        top = np.argpartition(-dist, m - 1)[:m] if len(X) > m else np.arange(len(X))
        found += [(float(dist[i]), offset + int(i), X[i].astype(np.float64), int(labels[i])) for i in top]
        offset += len(X)
    found.sort(key=lambda item: (-item[0], item[1]))
    return found[:m]


def inertia_and_labels(chunks: Chunks, centres: np.ndarray, pool: Pool, *,
                       keep_labels: bool) -> tuple[float, np.ndarray | None]:
    """Sum of squared distances of all rows to their nearest centre (float64), and the labels if kept."""
    inertia = 0.0
    kept: list[np.ndarray] = []
    for X in chunks():
        labels, dist = nearest(X, centres, pool)
        inertia += float(np.dot(dist, dist))
        if keep_labels:
            kept.append(labels)
    labels = (kept[0] if len(kept) == 1 else np.concatenate(kept)) if keep_labels else None
    return inertia, labels


# ------------------------------------------------------------------ in memory: labels kept, sums updated
@njit(nogil=True, cache=True)
def _label(X, c2t, cn, labels, sums, counts, block):  # pragma: no cover - compiled
    """Nearest centre of each row into ``labels`` (not read), each row added to its centre's float64 sum;
    returns the sum of ``‖x‖²``."""
    low = np.empty(min(block, X.shape[0]), dtype=X.dtype)
    squares = 0.0
    for lo in range(0, X.shape[0], block):
        rows = X[lo:lo + block]
        nearest_block(rows, c2t, cn, labels[lo:lo + block], low)
        squares += _add_rows(rows, labels[lo:lo + block], sums, counts, True)
    return squares


@njit(nogil=True, cache=True)
def _relabel(X, c2t, cn, labels, sums, counts, block):  # pragma: no cover - compiled
    """Nearest centre of each labelled row; only rows that change centre touch the float64 sums.

    A row leaves its old centre's sum and joins its new one's. Returns the number
    of rows that changed centre.
    """
    m, p = X.shape
    best = np.empty(min(block, m), dtype=np.int64)
    low = np.empty(len(best), dtype=X.dtype)
    changed = 0
    for lo in range(0, m, block):
        rows = X[lo:lo + block]
        nearest_block(rows, c2t, cn, best, low)
        for r in range(rows.shape[0]):
            new = best[r]
            old = labels[lo + r]
            if old == new:
                continue
            changed += 1
            labels[lo + r] = new
            counts[new] += 1
            counts[old] -= 1
            for f in range(p):
                sums[new, f] += rows[r, f]
                sums[old, f] -= rows[r, f]
    return changed


def first_pass(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, pool: Pool):
    """The first Lloyd assignment pass: writes every row's nearest centre into ``labels`` (int64, never read,
    so it may be fresh from :func:`numpy.empty`).

    Returns the per-centre float64 sums and counts, the float64 sum of ``‖x‖²``
    and the number of rows; segments are reduced in order, so the result does not
    depend on the number of threads. The label array's pages are first touched
    here, by the threads, not by a fill of their own.
    """
    prep = _Prepared(centres, X.dtype)
    k, p = prep.C.shape

    def segment(lo):
        sums, counts = np.zeros((k, p)), np.zeros(k, dtype=np.int64)
        seg = X[lo:lo + SEGMENT_ROWS]
        squares = _label(seg, prep.c2t, prep.cn, labels[lo:lo + SEGMENT_ROWS], sums, counts, BLOCK_ROWS)
        return sums, counts, squares, len(seg)

    return _reduce(pool.map(segment, range(0, len(X), SEGMENT_ROWS)), k, p)


def _relabel_segment(X: np.ndarray, labels: np.ndarray, prep: _Prepared):
    k, p = prep.C.shape
    sums, counts = np.zeros((k, p)), np.zeros(k, dtype=np.int64)
    changed = _relabel(X, prep.c2t, prep.cn, labels, sums, counts, BLOCK_ROWS)
    return sums, counts, 0.0, changed


def relabel_pass(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, pool: Pool):
    """One Lloyd assignment pass after :func:`first_pass`: updates ``labels`` (int64) in place.

    Returns the change of the per-centre float64 sums and counts caused by the rows
    that changed centre, 0, and the number of rows that changed centre. Segments
    are reduced in order, so the result does not depend on the number of threads.
    """
    prep = _Prepared(centres, X.dtype)
    starts = range(0, len(X), SEGMENT_ROWS)
    parts = pool.map(lambda lo: _relabel_segment(X[lo:lo + SEGMENT_ROWS], labels[lo:lo + SEGMENT_ROWS], prep), starts)
    return _reduce(parts, *prep.C.shape)


def _reduce(parts, k: int, p: int):
    sums, counts, squares, number = np.zeros((k, p)), np.zeros(k, dtype=np.int64), 0.0, 0
    for s, c, q, m in parts:
        sums += s
        counts += c
        squares += q
        number += m
    return sums, counts, squares, number


# ------------------------------------------------------------------ Hamerly's bounds for the last passes
# Slack for float64 rounding in the bounds: every distance and drift is off by far less.
_TINY = 1e-12
#: Passes switch to Hamerly's bounds once fewer rows than this share changed centre in a pass...
BOUNDS_FROM = 0.02
#: ...and back to plain passes when more rows than this share fail the bounds.
BOUNDS_UNTIL = 0.4


@njit(nogil=True, cache=True)
def _up(v):  # pragma: no cover - compiled
    # A float32 at or above v: rounding to nearest moves a value by at most 2^-24 of it.
    return np.float32(v + abs(v) * 2.0 ** -23 + 1e-30)


@njit(nogil=True, cache=True)
def _down(v):  # pragma: no cover - compiled
    return np.float32(v - abs(v) * 2.0 ** -23 - 1e-30)


@njit(nogil=True, cache=True)
def _screen(X, labels, upper, lower, drift, max_drift, half_gap, C, fail):  # pragma: no cover - compiled
    """Hamerly's test: the rows whose nearest centre may have changed, written to ``fail``; returns how many.

    A row keeps its centre ``a`` when its distance to ``a`` (at most ``upper +
    drift[a]``) is no more than half the gap from ``a`` to the next centre, nor more
    than its distance to any other centre (at least ``lower - max_drift``). Rows
    whose stored bounds fail get the exact distance to ``a`` before giving up. The
    lists are built without branches (always write, advance by the test): the
    outcome is unpredictable from row to row.
    """
    m = 0
    for i in range(X.shape[0]):
        a = labels[i]
        fail[m] = i
        m += upper[i] + drift[a] > max(half_gap[a], lower[i] - max_drift)
    tight = 0
    for q in range(m):
        i = fail[q]
        a = labels[i]
        fail[tight] = i
        d = np.sqrt(_sqdist(X, i, C, a)) * (1.0 + _TINY)
        upper[i] = _up(d - drift[a] * (1.0 - _TINY))
        tight += d > max(half_gap[a], lower[i] - max_drift)
    return tight


@njit(nogil=True, cache=True)
def _gather(X, rows, out):  # pragma: no cover - compiled
    for r in range(len(rows)):
        i = rows[r]
        for f in range(X.shape[1]):
            out[r, f] = X[i, f]


@njit(nogil=True, cache=True)
def _reassign(X, rows, c2t, cn, rho, unit, drift, max_drift, labels, upper, lower, sums, counts,
              best, low, second, bounds):  # pragma: no cover - compiled
    """Nearest centre of the rows ``X`` (segment rows ``rows``), with fresh bounds.

    The labels are :func:`_relabel`'s (the same kernel). The bounds come from the
    scores ``‖c‖² - 2x·c`` and ``d² = ‖x‖² + score``: the dot product is rounded in
    X's dtype, so each bound gives up the worst-case error ``e`` of a length-p dot
    product and stays a bound. A row that changes centre moves between the float64
    sums. ``best``, ``low``, ``second`` and ``bounds`` are scratch space.
    """
    m, p = X.shape
    nearest_two_block(X, c2t, cn, best, low, second)
    for r in range(m):
        xx = _sqnorm(X, r)
        e = unit * (rho * rho + (p + 2) * (xx + 1.0) * rho)  # (xx + 1) / 2 >= ‖x‖
        bounds[0, r] = max(xx + low[r] + e, 0.0)
        # k = 1: no second centre; 3e38 is an infinite float32 lower bound
        bounds[1, r] = max(xx + min(np.float64(second[r]), 3e38) - e, 0.0)
    for r in range(m):  # a loop of its own, so that the square roots vectorise
        bounds[0, r] = np.sqrt(bounds[0, r])
        bounds[1, r] = np.sqrt(bounds[1, r])
    for r in range(m):
        i = rows[r]
        top = best[r]
        old = labels[i]
        upper[i] = _up(bounds[0, r] * (1.0 + _TINY) - drift[top] * (1.0 - _TINY))
        lower[i] = _down(bounds[1, r] * (1.0 - _TINY) + max_drift * (1.0 + _TINY))
        if old == top:
            continue
        labels[i] = top
        counts[top] += 1
        counts[old] -= 1
        for f in range(p):
            sums[top, f] += X[r, f]
            sums[old, f] -= X[r, f]


class _Bounds:
    """Hamerly's (2010) per-row bounds: an upper one on the distance to the row's centre, a lower one on the
    distance to every other centre (float32).

    They are stored relative to each centre's total movement ``drift`` and to the
    sum of each pass's largest movement ``max_drift`` (lazily moved), so a row whose
    bounds hold is read and never written: its distance to its centre is at most
    ``upper + drift[label]``, to any other centre at least ``lower - max_drift``.
    Until a pass has set them (``fresh``), every row is recomputed.
    """

    def __init__(self, n: int, k: int, centres: np.ndarray):
        self.upper = np.empty(n, dtype=np.float32)
        self.lower = np.empty(n, dtype=np.float32)
        self.drift = np.zeros(k)
        self.max_drift = 0.0
        self.fresh = True
        self.centres(centres)

    def move(self, old: np.ndarray, new: np.ndarray) -> None:
        """Account for the centres moving from ``old`` to ``new``."""
        step = np.sqrt(((new - old) ** 2).sum(axis=1)) * (1.0 + _TINY)
        self.drift += step
        self.max_drift += float(step.max())
        self.centres(new)

    def centres(self, centres: np.ndarray) -> None:
        """Half the distance from each centre to its nearest other centre (infinite when k = 1)."""
        between = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))
        np.fill_diagonal(between, np.inf)
        self.half_gap = 0.5 * between.min(axis=1) * (1.0 - _TINY)

    def forget(self, row: int) -> None:
        """``row`` changed centre by hand (an empty cluster): compute its distances on the next pass."""
        self.upper[row] = np.inf
        self.lower[row] = -np.inf


@njit(nogil=True, cache=True)
def _recompute(seg, fail, m, c2t, cn, rho, unit, drift, max_drift, labels, upper, lower, sums, counts,
               block):  # pragma: no cover - compiled
    """:func:`_reassign` for the segment rows ``fail[:m]``, a block at a time (gathered unless consecutive)."""
    p = seg.shape[1]
    size = min(block, max(m, 1))
    buf = np.empty((size, p), dtype=seg.dtype)
    best = np.empty(size, dtype=np.int64)
    low = np.empty(size, dtype=seg.dtype)
    second = np.empty(size, dtype=seg.dtype)
    bounds = np.empty((2, size))
    for start in range(0, m, block):
        rows = fail[start:min(start + block, m)]
        first = rows[0]
        if rows[-1] - first == len(rows) - 1:  # consecutive rows: use X in place
            part = seg[first:first + len(rows)]
        else:
            part = buf[:len(rows)]
            _gather(seg, rows, part)
        _reassign(part, rows, c2t, cn, rho, unit, drift, max_drift, labels, upper, lower, sums, counts,
                  best, low, second, bounds)


class _Scratch(threading.local):
    """Per-thread list of a bounded pass's failing rows."""

    def get(self) -> np.ndarray:
        if getattr(self, "size", None) != SEGMENT_ROWS:
            self.size = SEGMENT_ROWS
            self.fail = np.empty(SEGMENT_ROWS, dtype=np.int64)
        return self.fail


_scratch = _Scratch()


def _bounded_segment(X: np.ndarray, lo: int, labels: np.ndarray, state: _Bounds, prep: _Prepared, rho: float):
    seg = X[lo:lo + SEGMENT_ROWS]
    hi = lo + len(seg)
    k, p = prep.C.shape
    fail = _scratch.get()
    labels, upper, lower = labels[lo:hi], state.upper[lo:hi], state.lower[lo:hi]
    sums, counts = np.zeros((k, p)), np.zeros(k, dtype=np.int64)
    unit = float(np.finfo(X.dtype).eps)
    if state.fresh:
        m = len(seg)
        fail[:m] = np.arange(m)
    else:
        m = _screen(seg, labels, upper, lower, state.drift, state.max_drift, state.half_gap, prep.C, fail)
    _recompute(seg, fail, m, prep.c2t, prep.cn, rho, unit, state.drift, state.max_drift, labels, upper, lower,
               sums, counts, BLOCK_ROWS)
    return sums, counts, 0.0, m


def bounded_pass(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, state: _Bounds, pool: Pool):
    """:func:`relabel_pass` for rows that all have a label, skipping those that Hamerly's bounds ``state``
    prove unchanged. Returns the changes of the sums and counts, 0, and the number of rows recomputed."""
    prep = _Prepared(centres, X.dtype)
    rho = float(np.sqrt((prep.C ** 2).sum(axis=1)).max())
    parts = pool.map(lambda lo: _bounded_segment(X, lo, labels, state, prep, rho), range(0, len(X), SEGMENT_ROWS))
    state.fresh = False
    return _reduce(parts, *prep.C.shape)


@dataclass(frozen=True)
class MemoryResult:
    """What :func:`lloyd_in_memory` found: centres, passes that moved them, tolerance, final labels, inertia,
    and the rows whose distances each pass computed (all of them in a plain pass)."""

    centres: np.ndarray
    n_iter: int
    tol: float
    labels: np.ndarray
    inertia: float
    computed: tuple[int, ...]


def lloyd_in_memory(X: np.ndarray, init: np.ndarray, pool: Pool, *, max_iter: int = 300,
                    tol: float = 1e-4) -> MemoryResult:
    """:func:`lloyd` on an in-memory ``X``, keeping each row's label between passes.

    The iterates are those of :func:`lloyd` (same assignment arithmetic, stopping
    rule and empty-cluster rule), but the centre sums are carried from pass to pass
    and only the rows that change centre are added and subtracted, so a pass
    computes the distances and writes almost nothing. Once fewer than
    :data:`BOUNDS_FROM` of the rows change centre in a pass, :func:`bounded_pass`
    skips the rows Hamerly's bounds prove unchanged (same labels), until more than
    :data:`BOUNDS_UNTIL` fail them. After the last move, a final
    pass assigns every row to the final centres, as scikit-learn does; the inertia
    is ``Σ‖x‖² - 2 Σ_j c_j·S_j + Σ_j n_j ‖c_j‖²`` over those labels (``S_j``, ``n_j``:
    the sums and counts), in float64, with ``Σ‖x‖²`` from the first pass: no pass of
    its own.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    n = len(X)
    if n == 0:
        raise ValueError("no rows to cluster")
    centres = np.array(init, dtype=np.float64, copy=True)
    k, p = centres.shape
    labels = np.empty(n, dtype=np.int64)  # written by the first pass
    sums, counts = np.zeros((k, p)), np.zeros(k, dtype=np.int64)
    squares, tol_scaled, bounds, computed = 0.0, 0.0, None, []
    for it in range(1, max_iter + 1):
        fresh = bounds is not None and bounds.fresh
        ds, dc, q, number = first_pass(X, centres, labels, pool) if it == 1 else _pass(X, centres, labels, bounds, pool)
        sums += ds
        counts += dc
        computed.append(n if bounds is None else number)
        if it == 1:
            if not (np.isfinite(sums).all() and np.isfinite(q)):
                raise ValueError("the matrix holds NaN or infinite values; impute or drop them before clustering")
            squares = q
            mean = sums.sum(axis=0) / n
            tol_scaled = tol * max(squares / n - float(mean @ mean), 0.0) / p
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            for cluster, row in _relocate(lambda: one_pass(X), centres, pool, empty, sums, counts):
                labels[row] = cluster
                if bounds is not None:
                    bounds.forget(row)
        moved = sums / counts[:, None]
        shift = float(((moved - centres) ** 2).sum())
        if bounds is None and number < BOUNDS_FROM * n:
            bounds = _Bounds(n, k, moved)
        elif bounds is not None and not fresh and number > BOUNDS_UNTIL * n:
            bounds = None
        elif bounds is not None:
            bounds.move(centres, moved)
        centres = moved
        if shift <= tol_scaled:
            break
    ds, dc, _, m = _pass(X, centres, labels, bounds, pool)
    sums += ds
    counts += dc
    computed.append(n if bounds is None else m)
    inertia = squares - 2.0 * float((centres * sums).sum()) + float(counts @ (centres * centres).sum(axis=1))
    return MemoryResult(centres=centres, n_iter=it, tol=tol_scaled, labels=labels, inertia=max(inertia, 0.0),
                        computed=tuple(computed))


def _pass(X: np.ndarray, centres: np.ndarray, labels: np.ndarray, bounds: _Bounds | None, pool: Pool):
    """A plain pass, or a bounded one when there are bounds; the last value is rows changed (plain) or
    recomputed (bounded)."""
    if bounds is None:
        return relabel_pass(X, centres, labels, pool)
    return bounded_pass(X, centres, labels, bounds, pool)


# ------------------------------------------------------------------ seeding
@njit(nogil=True, cache=True)
def _kmeans_pp(X, first, draws, centres):  # pragma: no cover - compiled
    """Greedy k-means++ (scikit-learn's rule) into ``centres``: row ``first`` starts; ``draws`` (k - 1, trials)
    are uniform in [0, 1).

    For each next centre, ``trials`` candidate rows are drawn with probability
    proportional to their squared distance to the nearest chosen centre (the
    cumulative sum of those distances, searched), and the candidate that leaves the
    smallest sum of squared distances is kept.
    """
    n, p = X.shape
    k, trials = centres.shape[0], draws.shape[1]
    for f in range(p):
        centres[0, f] = X[first, f]
    closest = np.empty(n)
    for r in range(n):
        closest[r] = _sqdist(X, r, centres, 0)
    cumulative = np.empty(n)
    trial = np.empty((trials, n))
    candidates = np.empty((trials, p))
    for c in range(1, k):
        total = 0.0
        for r in range(n):
            total += closest[r]
            cumulative[r] = total
        for t in range(trials):
            row = min(np.searchsorted(cumulative, draws[c - 1, t] * total), n - 1)
            for f in range(p):
                candidates[t, f] = X[row, f]
        pots = np.zeros(trials)
        for r in range(n):
            for t in range(trials):
                d = min(closest[r], _sqdist(X, r, candidates, t))
                trial[t, r] = d
                pots[t] += d
        best = np.argmin(pots)
        for f in range(p):
            centres[c, f] = candidates[best, f]
        closest[:] = trial[best]


def seed_centres(X: np.ndarray, k: int, rng: np.random.Generator, *, sample: int = SEED_SAMPLE) -> np.ndarray:
    """Greedy k-means++ centres (scikit-learn's rule, ``2 + ln k`` candidates a step) from a uniform sample of at
    most ``sample`` rows; a compiled version of :func:`sklearn.cluster.kmeans_plusplus`."""
    return _seed(X, k, rng, sample)[1]


def start_centres(X: np.ndarray, k: int, rng: np.random.Generator, pool: Pool, *, sample: int = SEED_SAMPLE,
                  max_iter: int = 300, tol: float = 1e-4) -> np.ndarray:
    """:func:`seed_centres`, then, when X has more rows than the sample, Lloyd's iterations on the sample.

    The sample's fixed point lies close to all rows' one, so the fit on all rows
    then takes a few passes instead of tens (measured on 2M rows, k = 8: 2-3
    passes instead of 11-27, for the same inertia to 4e-6).
    """
    rows, centres = _seed(X, k, rng, sample)
    if len(rows) < len(X):
        centres = lloyd_in_memory(rows, centres, pool, max_iter=max_iter, tol=tol).centres
    return centres


def _seed(X: np.ndarray, k: int, rng: np.random.Generator, sample: int) -> tuple[np.ndarray, np.ndarray]:
    """The sample (X itself when it has at most ``sample`` rows) and k-means++ centres drawn from it."""
    if len(X) > sample:
        X = X[np.sort(rng.choice(len(X), size=sample, replace=False))]
    centres = np.empty((k, X.shape[1]))
    first = int(rng.integers(len(X)))
    draws = rng.random((k - 1, 2 + int(np.log(k))))
    _kmeans_pp(X, first, draws, centres)
    return X, centres


def one_pass(X: np.ndarray) -> Iterator[np.ndarray]:
    """An in-memory matrix as the single chunk of a pass."""
    yield X
