"""Compiled per-batch work of scoring: features, nearest centre and drift counts in a few passes.

A batch arrives as the validated input columns, one row per column (``X``, float64,
``m × n``). :class:`FeatureProgram` turns the model's fitted feature steps into
arrays; :meth:`FeatureProgram.score` then

1. counts the input columns into their drift bins and imputes them in place
   (:func:`_impute_and_derive`, compiled), computing each behaviour feature as
   the pipeline's ``DomainImputer`` and ``DeriveBehaviour`` do, operation for operation;
2. takes ``log1p`` of the logged features with NumPy's own ``log1p`` (a compiled
   ``log1p`` can differ from NumPy's in the last bit, NumPy's is the pipeline's);
3. standardises (NumPy), assigns each customer to the nearest centre, and counts
   the features and far customers into their drift bins (:func:`_assign_count`).

The nearest centre is the one at the least squared Euclidean distance, summed
feature by feature in feature order (ties to the first centre); :func:`assign` is
that step alone, which :func:`custseg.score.nearest` uses, so scoring in one go and
in batches agree to the last bit. Every kernel releases the GIL, so two batches are
computed on two cores at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

#: How each behaviour feature is computed from the imputed columns ``a`` and ``b`` (see ``features._compute``).
RAW, RATIO, SHARE, UTILISATION, PAYMENT_RATIO = range(5)
#: Rows whose squared distances to one centre are summed at a time (they stay in the first-level cache).
ASSIGN_BLOCK = 512
#: Rows compared with every drift bin edge at a time (they stay in the first-level cache).
COUNT_BLOCK = 2048
#: Values per group of :func:`has_repeat` (its set of twice as many slots, 0.5 MB, stays in the cache).
REPEAT_GROUP = 32768


@njit(nogil=True, cache=True)
def _bin_counts(values, edges, n_edges, counts):  # pragma: no cover - compiled
    """Add ``values`` to ``counts``: bin ``i`` holds ``edges[i-1] < v <= edges[i]``; the last slot, not finite.

    Counted as how many values lie above each (sorted) edge, a block of rows at a time: comparisons
    without branches, which the compiler vectorises; a bin is the difference of two neighbouring counts."""
    n = values.shape[0]
    above = np.zeros(n_edges, dtype=np.int64)
    finite = 0
    infinite = 0  # +inf lies above every edge but is counted as not finite
    for lo in range(0, n, COUNT_BLOCK):
        block = values[lo:min(lo + COUNT_BLOCK, n)]
        f = 0
        i = 0
        for r in range(block.shape[0]):
            f += abs(block[r]) < np.inf
            i += block[r] == np.inf
        finite += f
        infinite += i
        for e in range(n_edges):
            edge = edges[e]
            a = 0
            for r in range(block.shape[0]):
                a += block[r] > edge
            above[e] += a
    below = finite
    for e in range(n_edges):
        beyond = above[e] - infinite
        counts[e] += below - beyond
        below = beyond
    counts[n_edges] += below
    counts[n_edges + 1] += n - finite


@njit(nogil=True, cache=True)
def _ratio(num, den, empty):  # pragma: no cover - compiled
    out = num / den if den > 0 else np.nan
    return empty if out != out else out


@njit(nogil=True, cache=True)
def _clip(value, low, high):  # pragma: no cover - compiled
    return min(max(value, low), high)


@njit(nogil=True, cache=True)
def _impute_and_derive(X, counted, edges, n_edges, counts, medians, minimum, payments, minimum_ratio,
                       ops, a, b, caps, F):  # pragma: no cover - compiled
    """Drift counts of the input rows ``counted`` (before imputation), then impute ``X`` in place and
    write the behaviour features into ``F`` (one row per feature)."""
    for t in range(counted.shape[0]):
        _bin_counts(X[counted[t]], edges[t], n_edges[t], counts[t])
    n = X.shape[1]
    if minimum >= 0 and payments >= 0:
        for r in range(n):  # an empty minimum payment from the payments before they are imputed
            if X[minimum, r] != X[minimum, r]:
                X[minimum, r] = X[payments, r] * minimum_ratio
    for i in range(X.shape[0]):
        fill = medians[i]
        for r in range(n):
            if X[i, r] != X[i, r]:
                X[i, r] = fill
    for j in range(ops.shape[0]):
        op, x, y, cap = ops[j], X[a[j]], X[b[j]], caps[j]
        out = F[j]
        if op == RAW:
            out[:] = x
        elif op == RATIO:
            for r in range(n):
                out[r] = _ratio(x[r], y[r], 0.0)
        elif op == SHARE:
            for r in range(n):
                out[r] = _ratio(x[r], x[r] + y[r], 0.0)
        elif op == UTILISATION:
            for r in range(n):
                out[r] = _clip(_ratio(x[r], y[r], 0.0), 0.0, cap)
        else:  # PAYMENT_RATIO: without a minimum payment, the cap when something was paid, else 0
            for r in range(n):
                q = _ratio(x[r], y[r], np.nan)
                if q != q:
                    q = cap if x[r] > 0 else 0.0
                out[r] = _clip(q, 0.0, cap)


@njit(nogil=True, cache=True)
def _standardise(F, mean, scale):  # pragma: no cover - compiled
    """``F = (F - mean) / scale`` row by row, in place: NumPy's two in-place steps in one pass, bit for bit."""
    for j in range(F.shape[0]):
        m, s, row = mean[j], scale[j], F[j]
        for r in range(row.shape[0]):
            row[r] = (row[r] - m) / s


@njit(nogil=True, cache=True)
def _assign(F, C, labels, dist):  # pragma: no cover - compiled
    """Nearest centre of each column of ``F`` (features × customers) and the Euclidean distance to it."""
    p, n = F.shape
    k = C.shape[0]
    square = np.empty(ASSIGN_BLOCK)
    least = np.empty(ASSIGN_BLOCK)
    for lo in range(0, n, ASSIGN_BLOCK):
        w = min(ASSIGN_BLOCK, n - lo)
        for c in range(k):
            square[:w] = 0.0
            for j in range(p):
                centre, row = C[c, j], F[j, lo:lo + w]
                for r in range(w):
                    d = row[r] - centre
                    square[r] += d * d
            for r in range(w):
                if c == 0 or square[r] < least[r]:
                    least[r] = square[r]
                    labels[lo + r] = c
        for r in range(w):
            dist[lo + r] = math.sqrt(least[r])


@njit(nogil=True, cache=True)
def _assign_count(F, C, labels, dist, counted, edges, n_edges, counts, far_beyond):  # pragma: no cover - compiled
    """Assign, count the feature rows ``counted`` into their bins; return the customers farther than
    ``far_beyond`` from their centre (NaN: none)."""
    _assign(F, C, labels, dist)
    for t in range(counted.shape[0]):
        _bin_counts(F[counted[t]], edges[t], n_edges[t], counts[t])
    far = 0
    for r in range(dist.shape[0]):
        far += dist[r] > far_beyond
    return far


#: Odd 64-bit constants of the id hash (FNV-1a's prime, and MurmurHash3's finaliser).
_PRIME, _MIX1, _MIX2 = np.uint64(0x100000001B3), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)


@njit(nogil=True, cache=True)
def hash_text(offsets, data, out):  # pragma: no cover - compiled
    """A 64-bit hash of each text's bytes and length, eight bytes at a time, into ``out``: text ``i`` is
    ``data[offsets[i]:offsets[i + 1]]`` (an Arrow string array's buffers)."""
    for i in range(out.shape[0]):
        start, end = offsets[i], offsets[i + 1]
        h = np.uint64(end - start) * _PRIME
        for at in range(start, end, 8):
            word = np.uint64(0)
            for b in range(min(8, end - at)):
                word |= np.uint64(data[at + b]) << np.uint64(8 * b)
            h = (h ^ word) * _PRIME
            h ^= h >> np.uint64(29)
        h ^= h >> np.uint64(33)
        h *= _MIX1
        h ^= h >> np.uint64(33)
        h *= _MIX2
        h ^= h >> np.uint64(33)
        out[i] = h


def has_repeat(parts: list[np.ndarray]) -> bool:
    """Whether two of the values in ``parts`` (uint64 arrays of uniformly spread values: hashes) are equal.

    The values are grouped by their leading bits into groups of about
    :data:`REPEAT_GROUP`, and each group goes through an open-addressing set small
    enough to stay in the processor's cache: three passes over the values, no sorting.
    """
    n = sum(len(p) for p in parts)
    bits = 0
    while (n >> bits) > REPEAT_GROUP:
        bits += 1
    starts = np.zeros((1 << bits) + 1, dtype=np.int64)
    for part in parts:
        _count_groups(part, bits, starts)
    np.cumsum(starts, out=starts)
    grouped = np.empty(n, dtype=np.uint64)
    at = starts[:-1].copy()
    for part in parts:
        _scatter_groups(part, bits, at, grouped)
    return _any_repeat_in_groups(grouped, starts)


@njit(nogil=True, cache=True)
def _group(value, bits):  # pragma: no cover - compiled
    return np.intp(value >> np.uint64(64 - bits)) if bits else 0


@njit(nogil=True, cache=True)
def _count_groups(values, bits, starts):  # pragma: no cover - compiled
    for r in range(values.shape[0]):
        starts[_group(values[r], bits) + 1] += 1


@njit(nogil=True, cache=True)
def _scatter_groups(values, bits, at, grouped):  # pragma: no cover - compiled
    for r in range(values.shape[0]):
        g = _group(values[r], bits)
        grouped[at[g]] = values[r]
        at[g] += 1


@njit(nogil=True, cache=True)
def _any_repeat_in_groups(grouped, starts):  # pragma: no cover - compiled
    largest = 0
    for g in range(starts.shape[0] - 1):
        largest = max(largest, starts[g + 1] - starts[g])
    size = 1
    while size < 2 * largest:
        size *= 2
    mask = np.uint64(size - 1)
    slots = np.zeros(size, dtype=np.uint64)  # 0 marks an empty slot; the value 0 is tracked apart
    zero = False
    for g in range(starts.shape[0] - 1):
        for r in range(starts[g], starts[g + 1]):
            v = grouped[r]
            if v == 0:
                if zero:
                    return True
                zero = True
                continue
            s = v & mask
            while slots[s] != 0:
                if slots[s] == v:
                    return True
                s = (s + np.uint64(1)) & mask
            slots[s] = v
        slots[:] = 0
    return False


def assign(Zt: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (int64) of each column of ``Zt`` (features × customers, float64) and its distance."""
    Zt = np.ascontiguousarray(Zt, dtype=np.float64)
    labels = np.zeros(Zt.shape[1], dtype=np.int64)
    dist = np.empty(Zt.shape[1], dtype=np.float64)
    _assign(Zt, np.ascontiguousarray(centres, dtype=np.float64), labels, dist)
    return labels, dist


def edge_table(tables: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Drift bin edges as one padded matrix (a row per table) and the number of edges of each."""
    width = max((len(e) for e in tables), default=0)
    edges = np.full((len(tables), max(width, 1)), np.inf)
    for t, e in enumerate(tables):
        edges[t, :len(e)] = e
    return edges, np.array([len(e) for e in tables], dtype=np.int64)


@dataclass(frozen=True)
class BatchResult:
    """One batch scored: labels, distances, drift bin counts (a row per table, padded) and far customers."""

    labels: np.ndarray
    distances: np.ndarray
    counts: np.ndarray
    far: int


@dataclass(frozen=True)
class FeatureProgram:
    """A fitted feature pipeline, centres and drift bins as arrays, for :meth:`score`.

    Attributes
    ----------
    columns : tuple of str
        The input columns, in the row order of the ``X`` that :meth:`score` takes.
    medians, minimum, payments, minimum_ratio
        The imputer: each column's median, the rows of ``MINIMUM_PAYMENTS`` and
        ``PAYMENTS`` (-1 when absent) and the minimum-payment ratio.
    ops, a, b, caps
        Per feature: how it is computed (:data:`RAW` ...), from which rows, and its cap.
    logged : tuple of int
        Features taken ``log1p`` of (after clipping at 0).
    mean, scale : ndarray
        The standardisation.
    centres : ndarray
        Segment centres, one row each.
    column_tables, feature_tables : ndarray of int
        Rows of ``X`` and of the features counted for drift, in the drift tables' order
        (input columns first).
    edges, n_edges : ndarray
        The drift tables' bin edges (:func:`edge_table`).
    far_beyond : float
        Distance beyond which a customer is far from every centre (NaN: none counted).
    """

    columns: tuple
    medians: np.ndarray
    minimum: int
    payments: int
    minimum_ratio: float
    ops: np.ndarray
    a: np.ndarray
    b: np.ndarray
    caps: np.ndarray
    logged: tuple
    mean: np.ndarray
    scale: np.ndarray
    centres: np.ndarray
    column_tables: np.ndarray
    feature_tables: np.ndarray
    edges: np.ndarray
    n_edges: np.ndarray
    far_beyond: float

    def embed(self, X: np.ndarray, counts: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The model features of one batch (features × customers; transposed, the pipeline's ``transform``
        bit for bit). ``X`` holds the validated input columns (rows in :attr:`columns` order) and is
        imputed in place; the input columns' drift bins are added to the first rows of ``counts``; the
        features go into ``out`` when given (C-contiguous, features × customers)."""
        n_columns = len(self.column_tables)
        if counts is None:
            counts = np.zeros((n_columns, self.edges.shape[1] + 2), dtype=np.int64)
        F = np.empty((len(self.ops), X.shape[1])) if out is None else out
        _impute_and_derive(X, self.column_tables, self.edges[:n_columns], self.n_edges[:n_columns],
                           counts[:n_columns], self.medians, self.minimum, self.payments, self.minimum_ratio,
                           self.ops, self.a, self.b, self.caps, F)
        for j in self.logged:  # NumPy's log1p, as the pipeline's LogTransform
            np.clip(F[j], 0.0, None, out=F[j])
            np.log1p(F[j], out=F[j])
        _standardise(F, self.mean, self.scale)
        return F

    def score(self, X: np.ndarray, work: Workspace | None = None) -> BatchResult:
        """Score one batch (``X`` as :meth:`embed` takes it): nearest centres, distances and drift counts.

        With ``work``, the features, labels and distances are written into its arrays (valid until
        its next use), not into new ones."""
        n_columns = len(self.column_tables)
        n = X.shape[1]
        work = Workspace() if work is None else work
        counts = np.zeros((len(self.n_edges), self.edges.shape[1] + 2), dtype=np.int64)
        F = self.embed(X, counts, work.array("features", (len(self.ops), n)))
        labels = work.array("labels", (n,), np.int64)
        distances = work.array("distances", (n,))
        far = _assign_count(F, self.centres, labels, distances, self.feature_tables, self.edges[n_columns:],
                            self.n_edges[n_columns:], counts[n_columns:], self.far_beyond)
        return BatchResult(labels, distances, counts, int(far))


class Workspace:
    """Arrays a thread reuses from batch to batch: their memory is touched once, not once per batch
    (fresh arrays of a batch's size cost a page fault every 4 KB, each time)."""

    def __init__(self):
        self._arrays = {}

    def array(self, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        """The C-contiguous array ``name`` of ``shape`` (contents undefined), the same memory as its last use
        when that was at least as large."""
        size = math.prod(shape)
        have = self._arrays.get(name)
        if have is None or have.size < size or have.dtype != np.dtype(dtype):
            have = self._arrays[name] = np.empty(size, dtype=dtype)
        return have[:size].reshape(shape)
