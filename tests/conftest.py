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
