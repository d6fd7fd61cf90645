"""The clustering engine seam: the one place that knows how k-means is computed.

Selection, stability, compare-models and the final fit ask an :class:`Engine` to fit
k centres and to assign points to centres; they never construct a clustering
algorithm themselves. The in-memory scikit-learn engine is the first implementation;
a chunked engine for tens of millions of rows and a Spark engine fit the same calls.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

Seed = int | np.random.SeedSequence


@dataclass(frozen=True)
class Fit:
    """What fitting k centres produced.

    Attributes
    ----------
    centres : ndarray of shape (k, n_features)
        In the engine's order (callers renumber segments themselves).
    inertia : float
        Sum of squared distances of the fitted points to their nearest centre.
    n_iter : int
        Iterations of the best restart.
    labels : ndarray of shape (n_samples,) or None
        Nearest centre of each fitted point, when the engine had the points in memory
        (``None`` after :meth:`Engine.fit_batches`).
    """

    centres: np.ndarray
    inertia: float
    n_iter: int
    labels: np.ndarray | None = None


class Engine(abc.ABC):
    """Fit k-means centres and assign points to them."""

    #: Short name, as ``--engine`` spells it.
    name: str

    @abc.abstractmethod
    def fit(self, X: np.ndarray, k: int, *, n_init: int, seed: Seed, init: np.ndarray | None = None) -> Fit:
        """Best of ``n_init`` k-means runs on ``X`` (k-means++ starts drawn from ``seed``),
        or one run from ``init`` centres when given."""

    @abc.abstractmethod
    def assign(self, X: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centre (int64) of each row and the Euclidean distance (float64) to it."""

    def fit_batches(self, batches: Callable[[], Iterable[np.ndarray]], k: int, *, init: np.ndarray,
                    max_iter: int = 100, tol: float = 1e-4) -> Fit:
        """Lloyd iterations over data too large to hold, from ``init`` centres.

        ``batches`` is called once per pass and yields the rows in batches. Each pass
        assigns every row to its nearest centre and moves each centre to the mean of
        its rows; it stops when no centre moves by more than ``tol`` times the mean
        feature variance, or after ``max_iter`` passes.
        """
        centres = np.array(init, dtype=np.float64, copy=True)
        p = centres.shape[1]
        for it in range(1, max_iter + 1):
            sums = np.zeros((k, p))
            counts = np.zeros(k)
            inertia = 0.0
            s1 = np.zeros(p)
            s2 = np.zeros(p)
            n = 0
            for X in batches():
                labels, dist = self.assign(X, centres)
                np.add.at(sums, labels, X)
                counts += np.bincount(labels, minlength=k)
                inertia += float(np.dot(dist, dist))
                s1 += X.sum(axis=0)
                s2 += np.einsum("ij,ij->j", X, X)
                n += len(X)
            moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            shift = float(((moved - centres) ** 2).sum())
            centres = moved
            threshold = tol * float(np.mean(s2 / max(n, 1) - (s1 / max(n, 1)) ** 2))
            if shift <= threshold:
                break
        return Fit(centres=centres, inertia=inertia, n_iter=it)


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
