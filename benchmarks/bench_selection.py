"""Time custseg's choice of k (evidence, per-k stability, drill-down, final stability) against the notebook loop.

Usage::

    PYTHONPATH=src python benchmarks/bench_selection.py [path/to/cc_general.csv] [--repeat N]

Both are timed side by side in the same process on the same features: the real
portfolio with missing values filled by column medians, ``log1p`` on the
non-negative amount columns, then ``StandardScaler``.

- loop: for k = 2..12, ``KMeans(k, n_init=10, random_state=0).fit(X)`` then
  ``silhouette_score(X, labels)``;
- custseg: ``select_k(X, range(2, 11))`` (the evidence, the bootstrap stability
  of every k on at most 10,000 customers and the drill-down inside each segment
  of the chosen k), the final fit, then ``bootstrap_stability`` with B = 50 on
  the chosen k (k-means++ restarts, the default), as ``custseg run`` does.

The budget is custseg <= loop. Prints each timing as wall and CPU seconds (user +
system of this process, best of ``--repeat``: on a shared machine the CPU time
is the fairer measure), the choice of k alone (``select_k``) and the ratios.

``--large PORTFOLIO`` (a Parquet or CSV file of millions of customers, e.g. from
``custseg sample --rows 2000000``) times the choice as a large run makes it: on the
uniform sample of ``--sample`` customers (50,000) that ``custseg run`` draws, with
custseg's behaviour features and the chunked engine, against the analyst's loop on
the same sample (k = 2..12, ``KMeans(n_init=10)``; no silhouette, whose n × n
distances do not fit at that size).

``--choice`` times only the choice of k as ``custseg run`` makes it (``select_k`` on
custseg's features of the real file, or of the ``--large`` sample with the chunked
engine), wall and CPU seconds with the load average, and prints a digest of its
whole result. ``--baseline SRC`` (another checkout's ``src``) times the same in a
subprocess of that code, alternating with this one ``--repeat`` times: a before and
after in the same minute, and the digests say whether the results are identical.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
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


def custseg_evidence(X: np.ndarray):
    start = time.process_time()
    sel = select_k(X, range(2, 11))
    print(f"  (select_k alone: {time.process_time() - start:.2f} s CPU)")
    final = KMeansCore(sel.chosen_k, n_init=10, random_state=0).fit(X)  # the final fit, as Segmenter does
    stab = bootstrap_stability(X, final.labels_, n_boot=50)
    return sel, stab


def timed(fn, *args, repeat: int = 1, **kwargs):
    """Best wall and best CPU seconds over ``repeat`` calls, and the last result."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, result


def large_sample(path: Path, size: int) -> np.ndarray:
    """custseg's behaviour features of the sample a large run chooses k on."""
    from custseg.features import make_pipeline
    from custseg.large import sample_rows
    from custseg.load import load
    from custseg.quality import validate
    from custseg.segmenter import Segmenter

    frame = load(path).frame
    sample = frame.iloc[sample_rows(len(frame), size, 0)].reset_index(drop=True)
    portfolio, _ = validate(load(sample), min_rows=20, min_distinct=10)
    return np.asarray(make_pipeline(Segmenter().features).fit_transform(portfolio.frame), dtype=np.float64)


def kmeans_loop(X: np.ndarray) -> None:
    for k in range(2, 13):
        KMeans(k, n_init=10, random_state=0).fit(X)


def main_large(path: Path, size: int, repeat: int) -> None:
    X = large_sample(path, size)
    print(f"sample: {X.shape[0]} customers x {X.shape[1]} features")
    loop_wall, loop_cpu, _ = timed(kmeans_loop, X, repeat=repeat)
    ours_wall, ours_cpu, sel = timed(select_k, X, range(2, 11), engine="chunked", repeat=repeat)
    print(f"analyst loop (k=2..12, KMeans n_init=10):     {loop_wall:7.2f} s wall {loop_cpu:7.2f} s CPU")
    print(f"custseg select_k(2..10), chunked engine:      {ours_wall:7.2f} s wall {ours_cpu:7.2f} s CPU")
    print(f"ratio custseg / loop: wall {ours_wall / loop_wall:.2f}, CPU {ours_cpu / loop_cpu:.2f}")
    print(f"chosen k = {sel.chosen_k} ({sel.headline}); refits per k: "
          + ", ".join(f"{k}: {st.n_boot}{' (stopped early)' if st.stopped_early else ''}"
                      for k, st in sorted(sel.evidence.stability.items())))
    print("drill-down: " + "; ".join(f"segment {d.segment + 1} ({d.n_customers}): {d.k or 'no stable split'}"
                                     for d in sel.drilldown))


def choice_features(args) -> tuple[np.ndarray, str]:
    """custseg's features as ``custseg run`` chooses k on them, and the engine it uses there."""
    if args.large is not None:
        return large_sample(args.large, args.sample), "chunked"
    from custseg.features import make_pipeline
    from custseg.load import load
    from custseg.quality import validate
    from custseg.segmenter import Segmenter

    portfolio, _ = validate(load(args.path), min_rows=20, min_distinct=10)
    return np.asarray(make_pipeline(Segmenter().features).fit_transform(portfolio.frame), dtype=np.float64), "sklearn"


def digest(sel) -> str:
    """A hash of everything the choice returns: table, stabilities and their replicates, centres, drill-down."""
    h = hashlib.sha256()
    h.update(repr((sel.to_dict(), sel.stability_to_dict())).encode())
    h.update(sel.table.to_numpy().tobytes())
    for k, st in sorted(sel.evidence.stability.items()):
        h.update(st.replicates.tobytes() + st.replicate_ari.tobytes() + sel.evidence.centres[k].tobytes())
    for d in sel.drilldown:
        h.update(b"-" if d.labels is None else d.labels.tobytes())
    return h.hexdigest()[:16]


def time_choice(args) -> None:
    X, engine = choice_features(args)
    from custseg.engine.small import SmallEngine

    SmallEngine().fit(X[:200], 3, n_init=1, seed=0)  # load the compiled kernels before the clock starts
    wall, cpu, sel = timed(select_k, X, range(2, 11), engine=engine)
    print(f"select_k on {X.shape[0]:,} x {X.shape[1]} ({engine}): {wall:6.2f} s wall {cpu:6.2f} s CPU  "
          f"load {os.getloadavg()[0]:.2f}  k = {sel.chosen_k}  digest {digest(sel)}", flush=True)


def main_choice(args) -> None:
    if args.baseline is None:
        for _ in range(args.repeat):
            time_choice(args)
        return
    here = [sys.executable, __file__, "--choice", str(args.path), "--sample", str(args.sample)]
    if args.large is not None:
        here += ["--large", str(args.large)]
    for _ in range(args.repeat):
        for label, src in (("baseline", args.baseline), ("this    ", Path(__file__).resolve().parents[1] / "src")):
            out = subprocess.run(here, env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True,
                                 check=True).stdout.strip()
            print(f"{label} {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--large", type=Path, help="time the choice on the sample of this large portfolio")
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--choice", action="store_true", help="time only the choice of k as custseg run makes it")
    parser.add_argument("--baseline", type=Path, help="with --choice: another checkout's src, timed alternately")
    args = parser.parse_args()
    if args.choice:
        main_choice(args)
        return
    if args.large is not None:
        main_large(args.large, args.sample, args.repeat)
        return

    X = features(args.path)
    print(f"X: {X.shape[0]} customers x {X.shape[1]} features")
    loop_wall, loop_cpu, sils = timed(notebook_loop, X, repeat=args.repeat)
    with single_threaded_kmeans():  # as Segmenter.fit and custseg.run do
        ours_wall, ours_cpu, (sel, stab) = timed(custseg_evidence, X, repeat=args.repeat)

    print(f"notebook loop (k=2..12, n_init=10, silhouette_score): {loop_wall:7.2f} s wall {loop_cpu:7.2f} s CPU")
    print(f"custseg select_k(2..10) + final fit + stability(B=50): {ours_wall:7.2f} s wall {ours_cpu:7.2f} s CPU")
    print(f"ratio custseg / loop: wall {ours_wall / loop_wall:.2f}, CPU {ours_cpu / loop_cpu:.2f}  (budget 1.00)")
    drift = max(abs(sils[k] - sel.table.at[k, "silhouette"]) for k in sel.table.index)
    print(f"max |silhouette - silhouette_score| over k=2..10:      {drift:.2e}")
    print(f"chosen k = {sel.chosen_k}, clear structure = {sel.clear_structure}, stable k = {sel.stable_ks}, "
          f"votes = {sel.votes}")
    print(sel.reason)
    print(sel.table.round(4).to_string())
    print("least stable segment's mean Jaccard per k (refits): " + ", ".join(
        f"{k}: {st.jaccard_min:.2f} ({st.n_boot}{' of ' + str(st.n_planned) if st.stopped_early else ''})"
        for k, st in sorted(sel.evidence.stability.items())))
    print("drill-down: " + "; ".join(f"segment {d.segment + 1} ({d.n_customers}): "
                                     f"{d.k or 'no stable split'}" for d in sel.drilldown))
    print(f"stability at k = {sel.chosen_k} (B = 50, k-means++ restarts), mean ARI {stab.mean_ari:.3f}:")
    print(stab.segments.round(3).to_string())


if __name__ == "__main__":
    main()
