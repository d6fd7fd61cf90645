"""SQL sources against real databases: DuckDB and SQLite files, and a PostgreSQL server the tests start.

The BigQuery path is checked with the dialect's own compiler only (no warehouse here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import tiny_portfolio
from servers import PASSWORD, PostgresServer, free_port

from custseg import schema
from custseg.credentials import resolve_url
from custseg.dbload import load_table
from custseg.errors import CustsegError, DataError
from custseg.load import load
from custseg.quality import validate
from custseg.sources.base import Source
from custseg.sources.sql import SQLSource


@pytest.fixture(params=["duckdb", "sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'cards.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cards.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def tiny() -> pd.DataFrame:
    return tiny_portfolio(90)


def test_sql_source_is_a_source_and_reads_only_the_asked_columns(db_url, tiny):
    load_table(tiny, db_url, "cards")
    src = SQLSource(db_url, table="cards")
    assert isinstance(src, Source)
    assert src.columns() == list(tiny.columns)
    part = src.read(["BALANCE", schema.ID])
    assert list(part.columns) == ["BALANCE", schema.ID]
    np.testing.assert_array_equal(part["BALANCE"].to_numpy(), tiny["BALANCE"].to_numpy())
    assert src.count() == len(tiny)


def test_batches_stream_in_order_and_bounded(db_url, tiny):
    load_table(tiny, db_url, "cards")
    src = SQLSource(db_url, query='SELECT * FROM cards ORDER BY "CUST_ID"')
    sizes, ids = [], []
    for batch in src.batches([schema.ID], rows=25):
        sizes.append(len(batch))
        ids.extend(batch[schema.ID].tolist())
    assert max(sizes) <= 25 and sum(sizes) == len(tiny)
    assert ids == sorted(tiny[schema.ID].tolist())


def test_query_parameters_are_bound_not_pasted(db_url, tiny):
    load_table(tiny, db_url, "cards")
    hostile = "x' OR '1'='1"
    query = 'SELECT * FROM cards WHERE "CUST_ID" = :cid'
    assert SQLSource(db_url, query=query, params={"cid": hostile}).read().empty
    one = SQLSource(db_url, query=query, params={"cid": "C10005"}).read()
    assert one[schema.ID].tolist() == ["C10005"]


def test_sample_is_deterministic_and_a_subset(db_url, tiny):
    load_table(tiny, db_url, "cards")
    src = SQLSource(db_url, table="cards", order_by=[schema.ID])
    a, b = src.sample(20, 7, [schema.ID]), src.sample(20, 7, [schema.ID])
    assert a.equals(b) and len(a) == 20
    assert set(a[schema.ID]) <= set(tiny[schema.ID])
    assert not a.equals(src.sample(20, 8, [schema.ID]))


def test_real_file_through_sql_gives_the_same_portfolio(real_data_path, db_url):
    """Rows loaded from the real CSV and read back by table and by query equal the CSV's, value for value."""
    assert load_table(real_data_path, db_url, "cards") == 8950
    by_csv, _ = validate(load(real_data_path))
    for src in (SQLSource(db_url, table="cards"), SQLSource(db_url, query="SELECT * FROM cards")):
        by_sql, _ = validate(load(src.read()))
        assert list(by_sql.frame.columns) == list(by_csv.frame.columns)
        assert by_sql.frame[schema.ID].tolist() == by_csv.frame[schema.ID].tolist()
        numeric = [c for c in by_csv.frame.columns if c != schema.ID]
        np.testing.assert_array_equal(by_sql.frame[numeric].to_numpy(float), by_csv.frame[numeric].to_numpy(float))


def test_original_projects_half_split_by_parameter(tmp_path, tiny):
    """The notebook's MOD(CUST_ID, 2) halves, with the half as a bound parameter."""
    url = f"duckdb:///{tmp_path / 'cards.duckdb'}"
    frame = tiny.assign(CUST_ID=np.arange(1, len(tiny) + 1))
    load_table(frame, url, "cards")
    query = "SELECT * FROM cards WHERE MOD(CUST_ID, 2) = :half"
    even = SQLSource(url, query=query, params={"half": 0}).read()
    odd = SQLSource(url, query=query, params={"half": 1}).read()
    assert len(even) + len(odd) == len(tiny)
    assert (even[schema.ID] % 2 == 0).all() and (odd[schema.ID] % 2 == 1).all()


# -- bad input: exit-2 errors that name the source and never show the password ------------------

def test_missing_table_lists_what_exists(db_url, tiny):
    load_table(tiny, db_url, "cards")
    with pytest.raises(DataError, match="no table 'crads'.*cards"):
        SQLSource(db_url, table="crads").columns()


def test_query_error_names_the_source(db_url, tiny):
    load_table(tiny, db_url, "cards")
    with pytest.raises(DataError) as err:
        SQLSource(db_url, query="SELECT * FROM nowhere").columns()
    assert "query 'SELECT * FROM nowhere'" in str(err.value)
    assert PASSWORD not in str(err.value)


def test_needed_column_missing_from_result(db_url, tiny):
    load_table(tiny, db_url, "cards")
    src = SQLSource(db_url, query='SELECT "CUST_ID", "BALANCE" FROM cards')
    with pytest.raises(DataError, match="no column PURCHASES"):
        src.read(["CUST_ID", "PURCHASES"])


def test_missing_database_file_is_not_created(tmp_path):
    path = tmp_path / "typo.duckdb"
    with pytest.raises(DataError, match="no such database file"):
        SQLSource(f"duckdb:///{path}", table="cards").columns()
    assert not path.exists()


def test_wrong_password_is_refused_and_masked(postgres_server, postgres_url):
    url = postgres_server.url(postgres_url.rsplit("/", 1)[1], password="wrong-pw")
    with pytest.raises(DataError) as err:
        SQLSource(url, table="cards").columns()
    text = str(err.value)
    assert "refused the credentials" in text and "wrong-pw" not in text and "***" in text


def test_unreachable_server_is_named_masked():
    url = PostgresServer("127.0.0.1", free_port(), "custseg", PASSWORD).url("db")
    with pytest.raises(DataError) as err:
        SQLSource(url, table="cards").columns()
    text = str(err.value)
    assert "cannot reach the server" in text and "127.0.0.1" in text
    assert PASSWORD not in text and "s3cret" not in text


def test_url_from_environment_and_password_from_environment(monkeypatch, postgres_server, postgres_url):
    without = postgres_url.replace(postgres_url.split("@")[0], f"postgresql://{postgres_server.user}")
    monkeypatch.setenv("CUSTSEG_DB_URL", without)
    monkeypatch.setenv("CUSTSEG_DB_PASSWORD", PASSWORD)
    load_table(tiny_portfolio(30), None, "cards")
    src = SQLSource(table="cards")
    assert src.count() == 30
    assert PASSWORD not in src.label and "s3cret" not in src.label


def test_query_and_table_are_exclusive(monkeypatch):
    monkeypatch.delenv("CUSTSEG_DB_URL", raising=False)
    with pytest.raises(CustsegError, match="not both"):
        SQLSource("duckdb:///x.duckdb", query="SELECT 1", table="t")
    with pytest.raises(CustsegError, match="CUSTSEG_DB_URL"):
        SQLSource(table="t")


def test_unknown_placeholder_is_explained(tmp_path, tiny):
    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    load_table(tiny, url, "cards")
    with pytest.raises(CustsegError, match=":half"):
        SQLSource(url, query='SELECT * FROM cards WHERE "TENURE" = :half', params={"haf": 1}).columns()


# -- BigQuery: dialect and compiler only -------------------------------------------------------

def test_bigquery_url_and_compiled_query():
    pytest.importorskip("sqlalchemy_bigquery")
    url = resolve_url("bigquery://my-project/my_dataset?credentials_base64=c2VjcmV0")
    dialect_class = url.get_dialect()
    dialect = dialect_class(dbapi=dialect_class.import_dbapi())  # as create_engine builds it, without connecting
    assert dialect.name == "bigquery"
    query = "SELECT * FROM `project.dataset.credit-card-information` WHERE MOD(CUST_ID, 2) = :half"
    src = SQLSource(url, query=query, params={"half": 0})
    assert "c2VjcmV0" not in src.label and "credentials_base64=***" in src.label
    compiled = src.select(["CUST_ID", "BALANCE"]).compile(dialect=dialect)
    sql = str(compiled)
    assert sql.startswith("SELECT `CUST_ID`, `BALANCE` \nFROM (SELECT * FROM `project.dataset.credit-card-information`")
    assert "MOD(CUST_ID, 2) = %(half:INT64)s" in sql and compiled.params == {"half": 0}
    table = SQLSource(url, table="project.dataset.credit-card-information")
    sql = str(table.select(["CUST_ID"]).compile(dialect=dialect))
    assert sql.endswith("FROM `project.dataset`.`credit-card-information`")


def test_bigquery_without_credentials_is_a_clear_error(monkeypatch, tmp_path):
    pytest.importorskip("sqlalchemy_bigquery")
    from google.auth.compute_engine import _metadata

    # a key file that does not exist makes google-auth fail at once, before any metadata-server lookup
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    with pytest.raises(DataError) as err:
        SQLSource("bigquery://my-project/my_dataset", table="credit-card-information").columns()
    assert str(err.value).startswith("bigquery://my-project/my_dataset table credit-card-information:")
    assert "missing-key.json" in str(err.value)


def test_segments_from_sql_equal_segments_from_the_csv(tmp_path):
    """CSV → load_table → SQLSource gives the same segments.csv table as the CSV itself."""
    import custseg

    csv = tmp_path / "cards.csv"
    tiny_portfolio(150, seed=3).to_csv(csv, index=False)
    url = f"duckdb:///{tmp_path / 'cards.duckdb'}"
    load_table(csv, url, "cards")
    config = custseg.RunConfig(k=3, n_boot=2, n_init=2)
    from_csv = custseg.segment(csv, config).segments_table()
    from_sql = custseg.segment(SQLSource(url, table="cards").read(), config).segments_table()
    pd.testing.assert_frame_equal(from_sql, from_csv)
