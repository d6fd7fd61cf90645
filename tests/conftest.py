"""Shared fixtures: the real portfolio (skip outside CI when absent, fail under CI), a PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from servers import postgres_server, postgres_url  # noqa: F401  (one PostgreSQL server for the whole session)

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cc_general.csv"


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    if not REAL_DATA.is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the real portfolio is missing at {REAL_DATA}")
        pytest.skip(f"real portfolio not found at {REAL_DATA} (place ../shared beside the checkout)")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_run(real_data_path, tmp_path_factory) -> Path:
    """The outputs of `custseg run` on the real portfolio with the default settings (computed once)."""
    from click.testing import CliRunner

    from custseg.cli import cli

    out = tmp_path_factory.mktemp("real") / "first"
    res = CliRunner().invoke(cli, ["run", str(real_data_path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


def needed_in_ci(reason: str):
    """Skip with ``reason`` outside CI; fail under ``CI=true``, where the tool must be installed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
