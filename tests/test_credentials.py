"""Database URLs: where they come from, and that secrets never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from custseg.credentials import mask_text, mask_url, resolve_url
from custseg.errors import CustsegError


def test_mask_url_hides_password_and_secret_query_values():
    url = "postgresql://bank:p%40ss:w0rd@db.internal:5432/cards?sslmode=require&password=other"
    shown = mask_url(url)
    assert shown == "postgresql://bank:***@db.internal:5432/cards?password=***&sslmode=require"
    bq = mask_url("bigquery://proj/ds?credentials_base64=eyJzZWNyZXQiOiAxfQ==&location=EU")
    assert "eyJz" not in bq and "credentials_base64=***" in bq and "location=EU" in bq


def test_mask_text_finds_urls_and_quoted_secrets_in_driver_messages():
    text = ('could not connect with postgresql://bank:hunter2@db/cards; '
            'password "hunter2" rejected; retry ?token=abc123&x=1')
    masked = mask_text(text, "hunter2")
    assert "hunter2" not in masked and "abc123" not in masked
    assert "postgresql://bank:***@db/cards" in masked and "x=1" in masked


def test_resolve_url_from_path_env_and_password_env(monkeypatch, tmp_path):
    assert resolve_url(str(tmp_path / "c.duckdb")).drivername == "duckdb"
    assert resolve_url(str(tmp_path / "c.sqlite")).drivername == "sqlite"
    monkeypatch.setenv("CUSTSEG_DB_URL", "postgres://analyst@db/cards")
    monkeypatch.setenv("CUSTSEG_DB_PASSWORD", "from-env")
    url = resolve_url(None)
    assert (url.drivername, url.username, url.password) == ("postgresql+psycopg", "analyst", "from-env")
    assert "from-env" not in mask_url(url)
    monkeypatch.delenv("CUSTSEG_DB_URL")
    with pytest.raises(CustsegError, match="CUSTSEG_DB_URL"):
        resolve_url("")


def test_nonsense_is_not_a_url_and_is_masked_in_the_message():
    with pytest.raises(CustsegError, match="not a database URL") as err:
        resolve_url("cards.xlsx")
    assert Path("cards.xlsx").suffix in str(err.value)
    with pytest.raises(CustsegError) as err:
        resolve_url("postgresql://u:topsecret@host:notaport/db")
    assert "topsecret" not in str(err.value)
