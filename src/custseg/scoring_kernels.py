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


@njit(nogil=True, cache=True)
def _bin_counts(values, edges, n_edges, counts):  # pragma: no cover - compiled
    """Add ``values`` to ``counts``: bin ``i`` holds ``edges[i-1] < v <= edges[i]``; the last slot, not finite."""
    for r in range(values.shape[0]):
        v = values[r]
        if not math.isfinite(v):
            counts[n_edges + 1] += 1
            continue
        at = 0
        for e in range(n_edges):
            at += v > edges[e]
        counts[at] += 1


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

    def embed(self, X: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """The model features of one batch (features × customers; transposed, the pipeline's ``transform``
        bit for bit). ``X`` holds the validated input columns (rows in :attr:`columns` order) and is
        imputed in place; the input columns' drift bins are added to the first rows of ``counts``."""
        n_columns = len(self.column_tables)
        if counts is None:
            counts = np.zeros((n_columns, self.edges.shape[1] + 2), dtype=np.int64)
        F = np.empty((len(self.ops), X.shape[1]))
        _impute_and_derive(X, self.column_tables, self.edges[:n_columns], self.n_edges[:n_columns],
                           counts[:n_columns], self.medians, self.minimum, self.payments, self.minimum_ratio,
                           self.ops, self.a, self.b, self.caps, F)
        for j in self.logged:  # NumPy's log1p, as the pipeline's LogTransform
            np.clip(F[j], 0.0, None, out=F[j])
            np.log1p(F[j], out=F[j])
        F -= self.mean[:, None]
        F /= self.scale[:, None]
        return F

    def score(self, X: np.ndarray) -> BatchResult:
        """Score one batch (``X`` as :meth:`embed` takes it): nearest centres, distances and drift counts."""
        n_columns = len(self.column_tables)
        counts = np.zeros((len(self.n_edges), self.edges.shape[1] + 2), dtype=np.int64)
        F = self.embed(X, counts)
        labels = np.zeros(X.shape[1], dtype=np.int64)
        distances = np.empty(X.shape[1])
        far = _assign_count(F, self.centres, labels, distances, self.feature_tables, self.edges[n_columns:],
                            self.n_edges[n_columns:], counts[n_columns:], self.far_beyond)
        return BatchResult(labels, distances, counts, int(far))
