"""Time a whole ``custseg run`` on the real file against the bare notebook loop, in one run.

Usage::

    .venv/bin/python benchmarks/bench_run.py [path/to/cc_general.csv] [--repeat N] [--baseline-src DIR] [-- RUN FLAGS]

- notebook loop: read the CSV with pandas, fill gaps with medians, ``log1p`` the
  amounts, standardise, then for k = 2..12 ``KMeans(k, n_init=10)`` and
  ``silhouette_score`` — the original notebook's model selection, in a fresh
  Python process (so imports count, as they do for the notebook's first cell).
- custseg: ``python -m custseg.cli run DATA --out TMP -q`` in a fresh process:
  load, validate, features, evidence for every k, bootstrap stability, profiles,
  names, every output file and the report.
- ``--baseline-src DIR``: also time the same command with ``PYTHONPATH=DIR``
  (e.g. a checkout of an earlier commit), to compare before and after.

Each command runs ``--repeat`` times (best wall time kept, peak RSS of the child
reported); the printed ratio is custseg / notebook loop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "cc_general.csv"
SRC = Path(__file__).resolve().parents[1] / "src"

LOOP = r"""
import sys
import numpy as np, pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
frame = pd.read_csv(sys.argv[1]).drop(columns="CUST_ID")
frame = frame.fillna(frame.median())
amounts = ["BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE",
           "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS", "CASH_ADVANCE_TRX", "PURCHASES_TRX"]
frame[amounts] = np.log1p(frame[amounts])
X = StandardScaler().fit_transform(frame.to_numpy(dtype=float))
for k in range(2, 13):
    labels = KMeans(k, n_init=10, random_state=0).fit(X).labels_
    silhouette_score(X, labels)
"""


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and this child's own peak resident memory in MB."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def best(cmd, env, repeat):
    runs = [timed(cmd, env) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs)


def custseg_cmd(data: Path, out: Path, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "custseg.cli", "run", str(data), "--out", str(out), "-q", "--force", *flags]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("flags", nargs="*", help="extra flags for custseg run (after --)")
    args = parser.parse_args()

    rows = []
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        loop = best([sys.executable, "-c", LOOP, str(args.data)], None, args.repeat)
        rows.append(("notebook loop (k = 2..12, n_init=10, silhouette)", *loop))
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        rows.append(("custseg run (this checkout)",
                     *best(custseg_cmd(args.data, Path(tmp) / "now", args.flags), env, args.repeat)))
        if args.baseline_src:
            env = {**os.environ, "PYTHONPATH": str(args.baseline_src)}
            rows.append((f"custseg run ({args.baseline_src})",
                         *best(custseg_cmd(args.data, Path(tmp) / "before", args.flags), env, args.repeat)))
    print(f"{'':52} {'wall s':>8} {'ratio':>6} {'CPU s':>8} {'ratio':>6} {'peak MB':>8}")
    for name, seconds, cpu, peak in rows:
        print(f"{name:52} {seconds:8.2f} {seconds / rows[0][1]:6.2f} {cpu:8.2f} {cpu / rows[0][2]:6.2f} {peak:8.0f}")
    print(f"(best of {args.repeat}; ratio = seconds / notebook loop; {os.cpu_count()} CPUs, "
          f"load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
