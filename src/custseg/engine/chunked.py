"""The chunked engine: k-means for tens of millions of rows on one machine.

In memory, :meth:`ChunkedEngine.fit` runs the fused, multi-threaded Lloyd passes of
:mod:`custseg.engine.lloyd` on X as it is (float32 or float64, no copy), keeping each
row's label between passes so that only rows that change centre update the sums;
it starts from k-means++ on a uniform sample, refined by Lloyd's iterations on the
sample. :meth:`ChunkedEngine.fit_batches` runs the same
iterations over batches that a callable yields once per pass (a Parquet file or a
SQL table read in batches), so data larger than memory are clustered with the
same arithmetic. See ``docs/scale.md`` for measured times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from . import lloyd
from .base import Engine, Fit, Seed
from .small import restart_seeds


class ChunkedEngine(Engine):
    """Fused Lloyd k-means in cache-sized blocks over row segments on all cores.

    Parameters
    ----------
    n_threads : int, optional
        Threads over row segments; default: the cores this process may use. The
        results do not depend on it.
    max_iter : int, default 300
        Lloyd passes per run of :meth:`fit` (scikit-learn's default).
    tol : float, default 1e-4
        Stop when the squared centre shift is at most ``tol`` times the mean
        feature variance (scikit-learn's rule).
    seed_sample : int, default 100_000
        k-means++ seeding, and the Lloyd iterations that refine it, look at a
        uniform sample of at most this many rows.
    """

    name = "chunked"

    def __init__(self, n_threads: int | None = None, max_iter: int = 300, tol: float = 1e-4,
                 seed_sample: int = lloyd.SEED_SAMPLE):
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.tol = tol
        self.seed_sample = seed_sample

    def fit(self, X: np.ndarray, k: int, *, n_init: int, seed: Seed, init: np.ndarray | None = None) -> Fit:
        """Best of ``n_init`` runs by inertia, or one run from ``init``.

        A run without ``init`` starts from k-means++ on a uniform sample of at most
        ``seed_sample`` rows, refined by Lloyd's iterations on that sample when X has
        more rows (:func:`~custseg.engine.lloyd.start_centres`). Restart ``i`` draws
        its sample and seeding from the ``i``-th child of ``SeedSequence(seed)``, so
        the same seed gives the same fit.
        """
        X = lloyd.check_matrix(X)
        _check_k(k, len(X))
        if init is not None:
            starts: Iterable[np.ndarray] = [_check_init(init, k, X.shape[1])]
        else:
            if n_init < 1:
                raise ValueError(f"n_init must be at least 1, got {n_init}")
            children = restart_seeds(seed, n_init)
            # drawn one at a time inside the pool below (the refinement on the sample runs on it)
            starts = (lloyd.start_centres(X, k, np.random.default_rng(ss), pool, sample=self.seed_sample,
                                          max_iter=self.max_iter, tol=self.tol) for ss in children)
        best = None
        with lloyd.Pool(self.n_threads) as pool:
            for start in starts:
                run = lloyd.lloyd_in_memory(X, start, pool, max_iter=self.max_iter, tol=self.tol)
                if best is None or run.inertia < best.inertia:
                    best = Fit(centres=run.centres, inertia=run.inertia, n_iter=run.n_iter, labels=run.labels)
        return best

    def assign(self, X: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = lloyd.check_matrix(X)
        centres = _check_init(centres, len(centres), X.shape[1])
        with lloyd.Pool(self.n_threads) as pool:
            labels, dist = lloyd.nearest(X, centres, pool)
        if not np.isfinite(dist).all():
            raise ValueError("the matrix holds NaN or infinite values; impute or drop them before assigning")
        return labels, dist

    def fit_batches(self, batches: Callable[[], Iterable[np.ndarray]], k: int, *, init: np.ndarray,
                    max_iter: int = 100, tol: float = 1e-4) -> Fit:
        """Lloyd iterations from ``init`` over ``batches()`` (called once per pass), then one pass for the inertia.

        Same stopping rule, empty-cluster handling and inertia as :meth:`fit`; the
        result equals the in-memory fit from ``init`` up to float rounding of the
        sums (batch boundaries change the order of additions).
        """
        init = _check_init(init, k, None)

        def chunks() -> Iterator[np.ndarray]:
            for batch in batches():
                batch = lloyd.check_matrix(batch)
                if batch.shape[1] != init.shape[1]:
                    raise ValueError(f"a batch has {batch.shape[1]} features, the centres {init.shape[1]}")
                if len(batch):
                    yield batch

        with lloyd.Pool(self.n_threads) as pool:
            run = lloyd.lloyd(chunks, init, pool, max_iter=max_iter, tol=tol)
            inertia, _ = lloyd.inertia_and_labels(chunks, run.centres, pool, keep_labels=False)
        return Fit(centres=run.centres, inertia=inertia, n_iter=run.n_iter)


def _check_k(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), got {k}")


def _check_init(init, k: int, p: int | None) -> np.ndarray:
    init = np.asarray(init, dtype=np.float64)
    if init.ndim != 2 or len(init) != k or (p is not None and init.shape[1] != p):
        raise ValueError(f"expected {k} centres of {p or 'n_features'} features, got an array of shape {init.shape}")
    return init
