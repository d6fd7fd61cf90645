"""custseg at 1M, 2M and 10M customers against the anchors, in one run, with peak memory.

Usage::

    PYTHONPATH=src python benchmarks/bench_scale.py                       # 1M, 2M, 10M and the real file
    PYTHONPATH=src python benchmarks/bench_scale.py --rows 2000000 --no-real

For each size, a synthetic portfolio (``custseg sample --rows N``, Parquet, cached
under ``--cache``) and, each in a fresh child process (imports count):

- **analyst script**: what an analyst would script — ``pandas.read_parquet``, median
  fill, ``log1p`` of the amounts, ``StandardScaler``, one scikit-learn
  ``KMeans(8, n_init=1)`` fit and predict. The anchor of every ratio.
- **k-means, scikit-learn / ours**: one fit of k = 8 with ``n_init=1`` on the same
  float32 matrix (custseg's standardised features of everyone), timed inside the
  child: scikit-learn's ``KMeans`` and custseg's ``ChunkedEngine`` (the large run's
  final fit). Printed as their ratio.
- **custseg run**: ``custseg run DATA --out TMP`` (auto k with the evidence and the
  bootstrap on a sample of ``sample_size``, the fit and assignment of everyone,
  profiles, every figure, the HTML report).
- **custseg predict**: ``custseg predict model.json DATA -o scores.parquet`` with the
  model the run wrote; throughput = customers / wall second.

``--real``: also the real file — the notebook loop of ``bench_run.py`` (k = 2..12,
``n_init=10``, silhouettes) against a full ``custseg run``.

Each child's wall time, CPU time (user + system, from ``os.wait4``) and peak resident
memory (``ru_maxrss``) are printed; ratios are wall-time ratios. The load average is
printed before and after, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# the shared data folder beside the checkout (or beside the worktrees' folder)
REAL = next((p / "shared" / "data" / "cc_general.csv" for p in Path(__file__).resolve().parents
             if (p / "shared" / "data" / "cc_general.csv").is_file()), Path("cc_general.csv"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ANALYST = r"""
import sys
import numpy as np, pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
frame = pd.read_parquet(sys.argv[1]).drop(columns="CUST_ID")
frame = frame.fillna(frame.median())
amounts = ["BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE",
           "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS", "CASH_ADVANCE_TRX", "PURCHASES_TRX"]
frame[amounts] = np.log1p(frame[amounts].clip(lower=0))
X = StandardScaler().fit_transform(frame.to_numpy(dtype=float))
model = KMeans(8, n_init=1, random_state=0).fit(X)
labels = model.predict(X)
"""

KMEANS = r"""
import json, sys, time
import numpy as np
from sklearn.cluster import KMeans
from custseg.engine.chunked import ChunkedEngine
from custseg.features import required_columns
from custseg.large import embed_all, load_validated
from custseg.segmenter import Segmenter
from custseg.sources import open_source
portfolio, _, _ = load_validated(open_source(sys.argv[1]), required_columns("behaviour"))
frame = portfolio.frame
model = Segmenter(n_clusters=8, evidence=False, n_init=1).fit(frame.iloc[:100_000])
X = embed_all(model, frame)
t = time.perf_counter(); KMeans(8, n_init=1, random_state=0).fit(X); sk = time.perf_counter() - t
t = time.perf_counter(); ChunkedEngine().fit(X, 8, n_init=1, seed=0); ours = time.perf_counter() - t
print(json.dumps({"sklearn": sk, "ours": ours}))
"""


class _Popen(subprocess.Popen):
    """``Popen`` that keeps the child's own resource usage (``os.wait4``) when it is reaped."""

    rusage = None

    def _try_wait(self, wait_flags):
        try:
            pid, status, self.rusage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            pid, status = self.pid, 0
        return pid, status


def child(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; its wall and CPU seconds, peak RSS in MB and standard output."""
    start = time.perf_counter()
    proc = _Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{err[-2000:]}")
    usage = proc.rusage
    return {"wall": wall, "stdout": out, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def ensure_data(rows: int, cache: Path, env: dict) -> Path:
    path = cache / f"portfolio_{rows}.parquet"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "custseg.cli", "sample", "--rows", str(rows), "-o", str(path), "-q"],
                       env=env, check=True)
    return path


def bench_size(rows: int, data: Path, tmp: Path, env: dict, flags: list[str]) -> list[tuple]:
    py = sys.executable
    analyst = child([py, "-c", ANALYST, str(data)], env)
    table = [("analyst script (read, log, scale, KMeans(8, n_init=1))", analyst, None)]
    km = child([py, "-c", KMEANS, str(data)], env)
    times = json.loads(km["stdout"])
    out = tmp / f"run{rows}"
    run = child([py, "-m", "custseg.cli", "run", str(data), "--out", str(out), "-q", "--force", *flags], env)
    table.append(("custseg run (auto k, stability, report)", run, None))
    scores = tmp / f"scores{rows}.parquet"
    pred = child([py, "-m", "custseg.cli", "predict", str(out / "model.json"), str(data), "-o", str(scores),
                  "-q", "--force"], env)
    table.append(("custseg predict (Parquet to Parquet)", pred, f"{rows / pred['wall'] / 1e6:.2f} M customers/s"))
    table.append(("k-means fit, scikit-learn KMeans(8, n_init=1)", {"wall": times["sklearn"]}, None))
    table.append(("k-means fit, custseg chunked engine", {"wall": times["ours"]},
                  f"{times['sklearn'] / times['ours']:.1f}x faster than scikit-learn"))
    return table


def bench_real(real: Path, tmp: Path, env: dict) -> list[tuple]:
    from bench_run import LOOP

    loop = child([sys.executable, "-c", LOOP, str(real)], env)
    run = child([sys.executable, "-m", "custseg.cli", "run", str(real), "--out", str(tmp / "real"), "-q", "--force"],
                env)
    return [("notebook loop (k = 2..12, n_init=10, silhouette)", loop, None),
            ("custseg run (auto k, stability, every figure, HTML)", run, None)]


def show(title: str, table: list[tuple]) -> None:
    anchor = table[0][1]["wall"]
    print(f"\n{title}")
    print(f"{'':56} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'ratio':>7}")
    for name, m, note in table:
        cpu = f"{m['cpu']:8.1f}" if "cpu" in m else f"{'':8}"
        peak = f"{m['peak_mb']:8.0f}" if "peak_mb" in m else f"{'':8}"
        print(f"{name:56} {m['wall']:8.2f} {cpu} {peak} {m['wall'] / anchor:7.2f}" + (f"  {note}" if note else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000, 10_000_000])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "custseg-bench-scale")
    parser.add_argument("--real", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--real-data", type=Path, default=REAL)
    parser.add_argument("flags", nargs="*", help="extra flags for custseg run (after --)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    print(f"{os.cpu_count()} CPUs; load average at the start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.real:
            show(f"real file ({args.real_data.name}); ratio = wall / notebook loop",
                 bench_real(args.real_data, Path(tmp), env))
        for rows in args.rows:
            data = ensure_data(rows, args.cache, env)
            show(f"{rows:,} customers; ratio = wall / analyst script (load average "
                 f"{os.getloadavg()[0]:.1f})", bench_size(rows, data, Path(tmp), env, args.flags))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
