"""Time custseg's evidence for k (with stability) against the plain notebook loop.

Usage::

    PYTHONPATH=src python benchmarks/bench_selection.py [path/to/cc_general.csv] [--repeat N]

Both are timed side by side in the same process on the same features: the real
portfolio with missing values filled by column medians, ``log1p`` on the
non-negative amount columns, then ``StandardScaler``.

- loop: for k = 2..12, ``KMeans(k, n_init=10, random_state=0).fit(X)`` then
  ``silhouette_score(X, labels)``;
- custseg: ``select_k(X, range(2, 11))`` then ``bootstrap_stability`` with
  B = 50 on the chosen k (k-means++ restarts, the default).

The budget is custseg <= 2 x loop. Prints each timing (best of ``--repeat``)
and the ratio; the warm-started stability variant is timed for reference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from custseg.core import KMeansCore
from custseg.engine import single_threaded_kmeans
from custseg.selection import select_k
from custseg.stability import bootstrap_stability

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "cc_general.csv"
LOGGED = (
    "BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE",
    "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS", "CASH_ADVANCE_TRX", "PURCHASES_TRX",
)


def features(path: Path) -> np.ndarray:
    frame = pd.read_csv(path).drop(columns="CUST_ID")
    frame = frame.fillna(frame.median())
    frame[list(LOGGED)] = np.log1p(frame[list(LOGGED)])
    return StandardScaler().fit_transform(frame.to_numpy(dtype=np.float64))


def notebook_loop(X: np.ndarray) -> dict[int, float]:
    out = {}
    for k in range(2, 13):
        labels = KMeans(k, n_init=10, random_state=0).fit(X).labels_
        out[k] = silhouette_score(X, labels)
    return out


def custseg_evidence(X: np.ndarray, warm: bool = False):
    sel = select_k(X, range(2, 11))
    final = KMeansCore(sel.chosen_k, n_init=10, random_state=0).fit(X)  # the final fit, as Segmenter does
    centres = final.cluster_centers_ if warm else None
    stab = bootstrap_stability(X, final.labels_, n_boot=50, init_centers=centres)
    return sel, stab


def timed(fn, *args, repeat: int = 1, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    X = features(args.path)
    print(f"X: {X.shape[0]} customers x {X.shape[1]} features")
    t_loop, sils = timed(notebook_loop, X, repeat=args.repeat)
    t_ours, (sel, stab) = timed(custseg_evidence, X, repeat=args.repeat)
    t_warm, (_, stab_warm) = timed(custseg_evidence, X, warm=True, repeat=args.repeat)
    with single_threaded_kmeans():  # as Segmenter.fit and custseg.run do
        t_single, _ = timed(custseg_evidence, X, repeat=args.repeat)

    print(f"notebook loop (k=2..12, n_init=10, silhouette_score): {t_loop:7.2f} s")
    print(f"custseg select_k(2..10) + bootstrap_stability(B=50):   {t_ours:7.2f} s")
    print(f"ratio custseg / loop:                                   {t_ours / t_loop:7.2f}  (budget 2.00)")
    print(f"  (with warm-started stability: {t_warm:.2f} s, ratio {t_warm / t_loop:.2f})")
    print(f"  (k-means single-threaded, as the product runs it: {t_single:.2f} s, ratio {t_single / t_loop:.2f})")
    drift = max(abs(sils[k] - sel.table.at[k, "silhouette"]) for k in sel.table.index)
    print(f"max |silhouette - silhouette_score| over k=2..10:      {drift:.2e}")
    print(f"chosen k = {sel.chosen_k}, auto k = {sel.auto_k}, votes = {sel.votes}")
    print(sel.reason)
    print(sel.table.round(4).to_string())
    print(f"stability (k-means++ restarts), mean ARI {stab.mean_ari:.3f}:")
    print(stab.segments.round(3).to_string())
    print(f"stability (warm start), mean ARI {stab_warm.mean_ari:.3f}:")
    print(stab_warm.segments.round(3).to_string())


if __name__ == "__main__":
    main()
