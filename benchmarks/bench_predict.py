"""custseg predict at 1M, 2M and 10M customers against scikit-learn and the Parquet I/O floor, in one run.

Usage::

    PYTHONPATH=src python benchmarks/bench_predict.py                          # 1M, 2M, 10M
    PYTHONPATH=src python benchmarks/bench_predict.py --rows 2000000 --model out/model.json

For each size, a synthetic portfolio (``custseg sample --rows N``, Parquet, cached
under ``--cache``; ``bench_scale.py``'s files are used when present) is scored, each
command in a fresh child process (imports count):

- **I/O floor**: bare pyarrow — read every column of the file, write its id and two
  of its columns (a string, an integer and a float, as the scores) to Parquet.
- **scikit-learn**: what scoring looks like without custseg — ``pandas.read_parquet``,
  the model's own feature pipeline (``Segmenter.embed``), scikit-learn's
  ``KMeans.predict`` with the model's centres, the ids and segments written with
  ``DataFrame.to_parquet``. No validation, no drift. The anchor of the ratios.
- **custseg predict**: ``custseg predict model.json DATA -o scores.parquet
  --drift-json drift.json`` (validation, scores, drift report).

The model is ``--model``, or the one ``custseg run`` writes for the smallest size
(cached beside the data). Each child's wall time, CPU time (user + system, from
``os.wait4``) and peak resident memory are printed with the throughput in millions
of customers per wall second; the load average is printed with every size, since
the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import SRC, child, ensure_data  # noqa: E402 - beside this file

FLOOR = r"""
import sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
pq.write_table(table.select(["CUST_ID", "TENURE", "BALANCE"]), sys.argv[2])
"""

SKLEARN = r"""
import sys
import numpy as np, pandas as pd
from sklearn.cluster import KMeans
from custseg.persist import load_model
model, state = load_model(sys.argv[2])
frame = pd.read_parquet(sys.argv[1])
Z = model.embed(frame)
centres = model.cluster_centers_
kmeans = KMeans(len(centres), init=centres, n_init=1, max_iter=1).fit(centres)  # each centre its own cluster
labels = kmeans.predict(Z)
pd.DataFrame({"customer_id": frame["CUST_ID"], "segment": labels + 1}).to_parquet(sys.argv[3], index=False)
"""

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "custseg-bench-scale"


def ensure_model(data: Path, model: Path | None, env: dict) -> Path:
    """``model``, or the model of a ``custseg run`` on ``data`` (cached beside it)."""
    if model is not None:
        return model
    out = data.with_name(data.stem + "_run")
    if not (out / "model.json").exists():
        child([sys.executable, "-m", "custseg.cli", "run", str(data), "--out", str(out), "-q", "--force"], env)
    return out / "model.json"


def bench_size(rows: int, data: Path, model: Path, tmp: Path, env: dict) -> list[tuple]:
    py = sys.executable
    sk = child([py, "-c", SKLEARN, str(data), str(model), str(tmp / "sklearn.parquet")], env)
    floor = child([py, "-c", FLOOR, str(data), str(tmp / "floor.parquet")], env)
    ours = child([py, "-m", "custseg.cli", "predict", str(model), str(data), "-o", str(tmp / "scores.parquet"),
                  "--drift-json", str(tmp / "drift.json"), "-q", "--force"], env)
    return [("scikit-learn: pandas read, embed, KMeans.predict, write", sk),
            ("I/O floor: pyarrow read all, write id + 2 columns", floor),
            ("custseg predict (validation, scores, drift)", ours)]


def show(rows: int, table: list[tuple]) -> None:
    anchor, floor = table[0][1]["wall"], table[1][1]["wall"]
    print(f"\n{rows:,} customers (load average {os.getloadavg()[0]:.1f}); ratios = wall / scikit-learn's, "
          "wall / I/O floor's")
    print(f"{'':56} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'M cust/s':>9} {'/ sklearn':>9} {'/ floor':>8}")
    for name, m in table:
        print(f"{name:56} {m['wall']:7.2f} {m['cpu']:7.2f} {m['peak_mb']:8.0f} {rows / m['wall'] / 1e6:9.2f} "
              f"{m['wall'] / anchor:9.2f} {m['wall'] / floor:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000, 10_000_000])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the synthetic files are kept")
    parser.add_argument("--model", type=Path, help="a model.json (default: custseg run on the smallest size)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each size this many times")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    print(f"{os.cpu_count()} CPUs; load average at the start {os.getloadavg()[0]:.1f}")
    files = {rows: ensure_data(rows, args.cache, env) for rows in sorted(args.rows)}
    model = ensure_model(files[min(files)], args.model, env)
    print(f"model: {model}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows, data in files.items():
            for _ in range(args.repeat):
                show(rows, bench_size(rows, data, model, Path(tmp), env))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
