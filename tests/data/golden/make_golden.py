"""Write the golden results that tests/test_golden.py guards.

Run only when a change of results is deliberate, and say why in the commit:

    .venv/bin/python tests/data/golden/make_golden.py

It segments ``portfolio.csv`` (500 synthetic customers with the real file's quirks,
from ``custseg sample --rows 500 --seed 5 --quirks``) with the settings in
``SETTINGS`` and keeps the files and numbers that must not move by accident:
``segments.csv`` and ``profiles.csv`` byte for byte, and from ``metrics.json`` the
chosen k, the inertia and every evidence column that involves no resampling.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = ["--k-max", "6", "--n-init", "4", "--bootstrap", "5", "--gap-refs", "3", "--seed", "0", "--quiet"]
#: Evidence columns computed without resampling (exact silhouettes: 500 customers < the sample size).
FIXED_COLUMNS = ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "gmm_bic")
KEPT_FILES = ("segments.csv", "profiles.csv")


def run_golden(out: Path) -> None:
    from click.testing import CliRunner

    from custseg.cli import cli

    res = CliRunner().invoke(cli, ["run", str(HERE / "portfolio.csv"), "--out", str(out), *SETTINGS])
    if res.exit_code != 0:
        raise RuntimeError(res.output)


def fixed_numbers(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "chosen_k": metrics["chosen_k"],
        "inertia": metrics["inertia"],
        "evidence": [{c: row[c] for c in ("k", *FIXED_COLUMNS)} for row in metrics["selection"]["table"]],
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        run_golden(out)
        for name in KEPT_FILES:
            (HERE / name).write_bytes((out / name).read_bytes())
        (HERE / "expected.json").write_text(json.dumps(fixed_numbers(out), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
