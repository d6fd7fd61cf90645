"""Benchmark the chunked engine's k-means against scikit-learn's, side by side, in one run.

Run on demand (not a test)::

    PYTHONPATH=src python benchmarks/bench_kmeans.py [--rows 1000000 2000000 10000000] [--k 8]

Data: ``custseg.datasets.generate`` in parts of one million customers (part seeds
spawned from ``SeedSequence(seed)``), the 17 behaviour columns of
:data:`custseg.schema.BEHAVIOUR` with missing values as 0, ``log1p`` of the values
clipped at 0, standardised column by column, float32, C-contiguous: a stand-in
for the product's scaled features with the issue's shape (n × 17). The matrix is
cached as ``.npy`` under ``--cache`` so later runs skip generation.

Each size runs in its own child process (so one size's matrix never sits beside
another's) and measures, for ours (:class:`custseg.engine.chunked.ChunkedEngine`)
and for scikit-learn (``KMeans(k, n_init=1, init=C0)``, its default Lloyd and
threads), from the same initial centres ``C0`` (our sample seeding):

- per iteration: the best of 5 single Lloyd passes from ``C0``: ours
  (``lloyd.relabel_pass``, the pass ``ChunkedEngine.fit`` makes per iteration, from
  the labels of a first pass) and scikit-learn's own pass (its private
  ``sklearn.cluster._k_means_lloyd.lloyd_iter_chunked_dense``, which
  ``KMeans.fit`` calls once per iteration), each on all threads; also the mean
  over a whole fit from ``C0``, ``(t_fit - fixed work) / iterations``;
- fixed work: ``t_one - per iteration``, where ``t_one`` is a whole fit from ``C0``
  with ``max_iter=1`` (validation, tolerance, copies, the final assignment and
  inertia passes);
- seeding: ours on a 100,000-row sample; scikit-learn's ``kmeans_plusplus`` on
  all rows (what ``KMeans(init="k-means++")`` runs);
- the whole fit as a user runs it (seeding + iterations + labels):
  ``ChunkedEngine().fit(X, k, n_init=1, seed=0)`` and
  ``KMeans(k, n_init=1, random_state=0).fit(X)``;
- assignment of every row (labels and distances): ``ChunkedEngine.assign`` and
  ``pairwise_distances_argmin_min``;
- peak memory of each step beyond X: the tracemalloc peak (NumPy reports its
  buffers to tracemalloc), and the child's peak RSS;
- the nearest-centre kernel alone against the BLAS product it replaced, one
  thread, CPU ns per row, best of 5 over the first 1,000,000 rows: ours
  (:func:`custseg.engine.kernels.nearest_block`, scores and arg-min) and NumPy's
  ``matmul`` (OpenBLAS ``sgemm``) on blocks of 4,096 rows (the product only);
- the memory-bandwidth floor: the best of 5 times to read X once, three ways:
  ``X.sum()`` (one thread), one NumPy ``sum`` per row segment on all cores, and a
  compiled streaming read (numba, vectorised float32 sum, no work per element beyond
  the load) per row segment on all cores; the floor is the fastest of the three.

Wall time and process CPU time are both reported: on a shared machine the wall
time includes waiting for the cores, the CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

PART_ROWS = 1_000_000


# ------------------------------------------------------------------ data
def features(rows: int, seed: int, cache: Path) -> np.ndarray:
    """The benchmark matrix (see the module docstring), from the cache when there."""
    path = cache / f"features_{rows}_{seed}.npy"
    if path.exists():
        return np.load(path)
    from custseg import datasets, schema

    X = np.empty((rows, len(schema.BEHAVIOUR)), dtype=np.float32)
    parts = range(0, rows, PART_ROWS)
    for lo, ss in zip(parts, np.random.SeedSequence(seed).spawn(len(parts))):
        frame, _ = datasets.generate(min(PART_ROWS, rows - lo), seed=int(ss.generate_state(1)[0]))
        values = frame[list(schema.BEHAVIOUR)].to_numpy(dtype=np.float64, na_value=0.0)
        X[lo:lo + len(values)] = np.log1p(np.clip(values, 0.0, None))
    mean = X.mean(axis=0, dtype=np.float64)
    squares = sum(((X[lo:lo + PART_ROWS] - mean) ** 2).sum(axis=0) for lo in parts)
    std = np.sqrt(squares / rows)
    std[std == 0] = 1.0
    for lo in parts:
        X[lo:lo + PART_ROWS] = (X[lo:lo + PART_ROWS] - mean) / std
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X


# ------------------------------------------------------------------ measuring
def measure(fn):
    """Run ``fn()``; return (result, wall s, cpu s, tracemalloc peak MiB)."""
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, wall, cpu, peak


def _streaming_read():
    from numba import njit

    @njit(nogil=True, fastmath=True)
    def read(values):  # reassociation lets the sum run in vector registers: the load is the only work
        total = np.float32(0.0)
        for i in range(len(values)):
            total += values[i]
        return total

    return read


def bandwidth_floor(X: np.ndarray) -> dict:
    from custseg.engine import lloyd

    read = _streaming_read()
    flat = X.reshape(-1)
    read(flat[:1024])  # compile
    best = lambda fn: min(measure(fn)[1] for _ in range(5))  # noqa: E731
    with lloyd.Pool() as pool:
        segs = [seg.reshape(-1) for seg in lloyd._segments(X)]
        times = {"numpy_1_thread_s": best(lambda: X.sum()),
                 "numpy_all_cores_s": best(lambda: sum(pool.map(np.sum, segs))),
                 "compiled_all_cores_s": best(lambda: sum(pool.map(read, segs)))}
    floor = min(times.values())
    gb = X.nbytes / 1e9
    return {**times, "gb": gb, "gb_per_s": gb / floor, "floor_s": floor}


def kernel_vs_blas(X: np.ndarray, C0: np.ndarray) -> dict:
    """CPU ns per row, one thread: our nearest-centre kernel (scores + arg-min) and the BLAS product alone."""
    from numba import njit
    from threadpoolctl import threadpool_limits

    from custseg.engine.kernels import centres_for_kernel, nearest_block

    @njit(nogil=True)
    def kernel(X, c2t, cn, block):
        best, low = np.empty(block, dtype=np.int64), np.empty(block, dtype=X.dtype)
        for lo in range(0, X.shape[0], block):
            nearest_block(X[lo:lo + block], c2t, cn, best, low)

    def blas(X, c2t, block):
        G = np.empty((block, c2t.shape[1]), dtype=X.dtype)
        for lo in range(0, len(X), block):
            rows = X[lo:lo + block]
            np.matmul(rows, c2t, out=G[:len(rows)])

    X = X[:1_000_000]
    c2t, cn = centres_for_kernel(C0, X.dtype)
    kernel(X[:64], c2t, cn, 4096)
    best = lambda fn: min(measure(fn)[2] for _ in range(5)) / len(X) * 1e9  # noqa: E731
    with threadpool_limits(1, "blas"):
        return {"kernel_ns": best(lambda: kernel(X, c2t, cn, 4096)),
                "blas_ns": best(lambda: blas(X, np.ascontiguousarray(c2t[:, :len(C0)]), 4096))}


def per_iteration(one_pass, fit_one, fit_full) -> dict:
    passes = [measure(one_pass) for _ in range(5)]
    per, per_cpu = min(p[1] for p in passes), min(p[2] for p in passes)
    _, one, one_cpu, one_mem = measure(fit_one)
    (inertia, n_iter), full, full_cpu, full_mem = measure(fit_full)
    fixed, fixed_cpu = one - per, one_cpu - per_cpu
    return {"n_iter": n_iter, "inertia": inertia, "fit_s": full, "fit_cpu_s": full_cpu,
            "per_iter_s": per, "per_iter_cpu_s": per_cpu, "fixed_s": fixed, "fixed_cpu_s": fixed_cpu,
            "mean_iter_s": (full - fixed) / n_iter, "mean_iter_cpu_s": (full_cpu - fixed_cpu) / n_iter,
            "fit_peak_mib": max(one_mem, full_mem)}


def ours_pass(X: np.ndarray, C0: np.ndarray, pool):
    """One of our passes as ``ChunkedEngine.fit`` makes it mid-fit, as a thunk.

    After a first pass from ``C0`` the thunk alternates between the next centres
    ``C1`` and ``C0``: each pass starts from the labels of the previous one and moves
    the rows a real second iteration moves, with nothing copied between passes.
    """
    from custseg.engine import lloyd

    labels = np.empty(len(X), dtype=np.int64)
    sums, counts, _, _ = lloyd.first_pass(X, C0, labels, pool)
    C1 = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], C0)
    turn = [C1, C0]

    def one():
        turn.reverse()
        return lloyd.relabel_pass(X, turn[1], labels, pool)
    return one


def sklearn_pass(X: np.ndarray, C0: np.ndarray):
    """One of scikit-learn's Lloyd iterations (the call ``KMeans.fit`` makes per iteration), as a thunk."""
    from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense

    from custseg.engine import lloyd

    k = len(C0)
    old = C0.astype(X.dtype)
    new, weight, shift = np.empty_like(old), np.empty(k, X.dtype), np.empty(k, X.dtype)
    labels, w = np.empty(len(X), np.int32), np.ones(len(X), X.dtype)
    return lambda: lloyd_iter_chunked_dense(X, w, old, new, weight, labels, shift, lloyd.available_cores())


def child(rows: int, k: int, seed: int, cache: Path) -> dict:
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.metrics import pairwise_distances_argmin_min

    from custseg.engine import lloyd
    from custseg.engine.chunked import ChunkedEngine

    X = features(rows, seed, cache)
    out = {"rows": rows, "k": k, "features": X.shape[1], "dtype": str(X.dtype), "threads": lloyd.available_cores(),
           "load_before": os.getloadavg()[0]}
    ours = ChunkedEngine()
    def warm_up():  # numba: compile, or load from its cache, every function the measures below call
        small = X[:20_000]
        fit = ours.fit(small, k, n_init=1, seed=seed)
        ours.assign(small, fit.centres)
        ours.fit_batches(lambda: iter([small]), k, init=fit.centres)

    _, compile_s, _, _ = measure(warm_up)
    out["warmup_s"] = compile_s
    out["floor"] = bandwidth_floor(X)

    C0, wall, cpu, peak = measure(lambda: lloyd.seed_centres(X, k, np.random.default_rng(seed)))
    out["ours_seed"] = {"s": wall, "cpu_s": cpu, "peak_mib": peak}
    _, wall, cpu, peak = measure(lambda: kmeans_plusplus(X, k, random_state=seed))
    out["sklearn_seed"] = {"s": wall, "cpu_s": cpu, "peak_mib": peak}
    out["kernel"] = kernel_vs_blas(X, C0)

    def ours_fit(max_iter):
        engine = ChunkedEngine(max_iter=max_iter)
        return lambda: (lambda f: (f.inertia, f.n_iter))(engine.fit(X, k, n_init=1, seed=seed, init=C0))

    sk_centres = []

    def sk_fit(max_iter):
        def fit():
            model = KMeans(k, init=C0.astype(X.dtype), n_init=1, max_iter=max_iter).fit(X)
            sk_centres.append(model.cluster_centers_)
            return float(model.inertia_), int(model.n_iter_)
        return fit

    with lloyd.Pool() as pool:
        out["ours"] = per_iteration(ours_pass(X, C0, pool), ours_fit(1), ours_fit(300))
    out["sklearn"] = per_iteration(sklearn_pass(X, C0), sk_fit(1), sk_fit(300))
    out["inertia_rel_diff"] = abs(out["ours"]["inertia"] - out["sklearn"]["inertia"]) / out["sklearn"]["inertia"]
    # scikit-learn reports a float32 inertia for float32 X; this is its centres' inertia in float64.
    _, dist = ours.assign(X, sk_centres[-1].astype(np.float64))
    out["sklearn_exact_inertia"] = float(dist @ dist)
    out["inertia_rel_diff_exact"] = abs(out["ours"]["inertia"] - out["sklearn_exact_inertia"]) / out["sklearn_exact_inertia"]

    fit, wall, cpu, peak = measure(lambda: ours.fit(X, k, n_init=1, seed=seed))
    out["ours_realistic"] = {"s": wall, "cpu_s": cpu, "peak_mib": peak, "n_iter": fit.n_iter, "inertia": fit.inertia}
    model, wall, cpu, peak = measure(lambda: KMeans(k, n_init=1, random_state=seed).fit(X))
    out["sklearn_realistic"] = {"s": wall, "cpu_s": cpu, "peak_mib": peak, "n_iter": int(model.n_iter_),
                                "inertia": float(model.inertia_)}

    centres = fit.centres
    _, wall, cpu, peak = measure(lambda: ours.assign(X, centres))
    out["ours_assign"] = {"s": wall, "cpu_s": cpu, "peak_mib": peak, "rows_per_s": rows / wall}
    _, wall, cpu, peak = measure(lambda: pairwise_distances_argmin_min(X, centres.astype(X.dtype)))
    out["sklearn_assign"] = {"s": wall, "cpu_s": cpu, "peak_mib": peak, "rows_per_s": rows / wall}
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["x_mib"] = X.nbytes / 2**20
    out["load_after"] = os.getloadavg()[0]
    return out


# ------------------------------------------------------------------ report
def report(r: dict) -> str:
    o, s, fl = r["ours"], r["sklearn"], r["floor"]
    ms = lambda x: f"{x * 1e3:8.1f} ms"  # noqa: E731
    floor = lambda x: f"{x / fl['floor_s']:5.1f}x floor"  # noqa: E731
    lines = [
        f"== {r['rows']:,} rows x {r['features']} {r['dtype']}, k = {r['k']}, {r['threads']} threads "
        f"(load {r['load_before']:.1f} -> {r['load_after']:.1f}); X = {r['x_mib']:.0f} MiB",
        f"  floor: read X once {ms(fl['floor_s'])} ({fl['gb_per_s']:.1f} GB/s; numpy 1 thread "
        f"{ms(fl['numpy_1_thread_s'])}, numpy all cores {ms(fl['numpy_all_cores_s'])}, compiled all cores "
        f"{ms(fl['compiled_all_cores_s'])}); numba warm-up {r['warmup_s']:.2f} s",
        f"  nearest centre, 1 thread: our kernel {r['kernel']['kernel_ns']:.1f} ns a row (scores + arg-min); "
        f"OpenBLAS sgemm alone {r['kernel']['blas_ns']:.1f} ns a row (the product only)",
        "                      ours         sklearn      sklearn/ours",
        f"  one pass         {ms(o['per_iter_s'])}  {ms(s['per_iter_s'])}  {s['per_iter_s'] / o['per_iter_s']:6.2f}x"
        f"   (ours {floor(o['per_iter_s'])}, sklearn {floor(s['per_iter_s'])})",
        f"  one pass (cpu)   {ms(o['per_iter_cpu_s'])}  {ms(s['per_iter_cpu_s'])}  "
        f"{s['per_iter_cpu_s'] / o['per_iter_cpu_s']:6.2f}x",
        f"  mean iteration   {ms(o['mean_iter_s'])}  {ms(s['mean_iter_s'])}  "
        f"{s['mean_iter_s'] / o['mean_iter_s']:6.2f}x   (ours {floor(o['mean_iter_s'])}; over the fit from C0)",
        f"  fixed work       {ms(o['fixed_s'])}  {ms(s['fixed_s'])}  (cpu {ms(o['fixed_cpu_s'])} / "
        f"{ms(s['fixed_cpu_s'])})",
        f"  seeding          {ms(r['ours_seed']['s'])}  {ms(r['sklearn_seed']['s'])}  "
        f"{r['sklearn_seed']['s'] / r['ours_seed']['s']:6.2f}x   (ours: compiled k-means++ on a 100,000-row sample)",
        f"  fit from C0      {o['fit_s']:8.2f} s   {s['fit_s']:8.2f} s   {s['fit_s'] / o['fit_s']:6.2f}x"
        f"   ({o['n_iter']} / {s['n_iter']} iterations; cpu {o['fit_cpu_s']:.2f} / {s['fit_cpu_s']:.2f} s)",
        f"  fit peak mem     {o['fit_peak_mib']:8.0f} MiB {s['fit_peak_mib']:8.0f} MiB (beyond X, tracemalloc)",
        f"  inertia          {o['inertia']:.6e} {s['inertia']:.6e}  rel. diff {r['inertia_rel_diff']:.1e}"
        f"  (sklearn's centres in float64: {r['sklearn_exact_inertia']:.6e}, rel. diff {r['inertia_rel_diff_exact']:.1e})",
        f"  whole fit        {r['ours_realistic']['s']:8.2f} s   {r['sklearn_realistic']['s']:8.2f} s   "
        f"{r['sklearn_realistic']['s'] / r['ours_realistic']['s']:6.2f}x   "
        f"({r['ours_realistic']['n_iter']} / {r['sklearn_realistic']['n_iter']} iterations, "
        f"cpu {r['ours_realistic']['cpu_s']:.2f} / {r['sklearn_realistic']['cpu_s']:.2f} s, "
        f"peak {r['ours_realistic']['peak_mib']:.0f} / {r['sklearn_realistic']['peak_mib']:.0f} MiB)",
        f"  assign           {r['ours_assign']['rows_per_s'] / 1e6:8.1f} M/s  "
        f"{r['sklearn_assign']['rows_per_s'] / 1e6:8.1f} M/s  ({r['ours_assign']['s']:.2f} s / "
        f"{r['sklearn_assign']['s']:.2f} s)",
        f"  child peak RSS   {r['peak_rss_mib']:.0f} MiB",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000, 10_000_000])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/custseg-bench-kmeans"))
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.k, args.seed, args.cache)))
        return
    results = []
    for rows in args.rows:
        done = subprocess.run([sys.executable, __file__, "--child", str(rows), "--k", str(args.k),
                               "--seed", str(args.seed), "--cache", str(args.cache)],
                              check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(report(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
