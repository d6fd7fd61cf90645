"""Benchmark ``custseg.datasets.write_sample``: wall time, peak memory, rows per second.

Run on demand (not a test)::

    PYTHONPATH=src python benchmarks/bench_sample.py [ROWS] [--format parquet|csv]

The work runs in a child process so that the peak resident set size reported
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``) is the writer's own, not the
parent's.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import sys
from custseg.datasets import write_sample
write_sample(sys.argv[1], int(sys.argv[2]), seed=0)
"""


def run(rows: int, fmt: str) -> dict:
    """Write ``rows`` customers to a temporary file in a child process and measure it."""
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmp:
        path = Path(tmp) / f"sample.{fmt}"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _CHILD, str(path), str(rows)], check=True)
        wall = time.perf_counter() - start
        size = path.stat().st_size
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"rows": rows, "format": fmt, "seconds": wall, "peak_rss_mib": peak_kib / 1024,
            "rows_per_s": rows / wall, "file_mib": size / 2**20}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args(argv)
    r = run(args.rows, args.format)
    print(f"write_sample: {r['rows']:,} rows to {r['format']}")
    print(f"  wall time : {r['seconds']:.1f} s")
    print(f"  peak RSS  : {r['peak_rss_mib']:.0f} MiB")
    print(f"  throughput: {r['rows_per_s']:,.0f} rows/s")
    print(f"  file size : {r['file_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
