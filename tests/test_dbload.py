"""Loading files and frames into database tables: replace, append, all or nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import tiny_portfolio
from servers import PASSWORD, PostgresServer, free_port

from custseg import schema
from custseg.dbload import load_table
from custseg.errors import CustsegError, DataError
from custseg.sources.base import Source
from custseg.sources.sql import SQLSource


@pytest.fixture(params=["duckdb", "sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'cards.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cards.sqlite'}"
    return request.getfixturevalue("postgres_url")


def test_replace_then_append_in_batches(db_url):
    frame = tiny_portfolio(75)
    assert load_table(frame, db_url, "cards", rows=20) == 75
    assert load_table(frame.iloc[:10], db_url, "cards", mode="append", rows=4) == 10
    assert SQLSource(db_url, table="cards").count() == 85
    assert load_table(frame.iloc[:5], db_url, "cards") == 5  # replace drops the old rows
    back = SQLSource(db_url, table="cards").read()
    assert back[schema.ID].tolist() == frame[schema.ID].iloc[:5].tolist()
    np.testing.assert_array_equal(back["PAYMENTS"].to_numpy(), frame["PAYMENTS"].iloc[:5].to_numpy())


def test_missing_values_become_null_and_come_back_missing(db_url):
    frame = tiny_portfolio(12)
    frame.loc[[2, 7], "MINIMUM_PAYMENTS"] = np.nan
    frame.loc[3, schema.ID] = None
    load_table(frame, db_url, "cards")
    back = SQLSource(db_url, table="cards").read()
    assert back["MINIMUM_PAYMENTS"].isna().tolist() == frame["MINIMUM_PAYMENTS"].isna().tolist()
    assert back[schema.ID].isna().sum() == 1


def test_a_failed_load_leaves_the_table_as_it_was(db_url):
    load_table(tiny_portfolio(30), db_url, "cards")
    first = pd.DataFrame({"CUST_ID": ["A", "B"], "TENURE": [12, 12]})
    second = pd.DataFrame({"CUST_ID": ["C", "D"], "TENURE": [11.5, 12.0]})
    source = GivenBatches([first, second])
    with pytest.raises(DataError, match="column TENURE holds whole numbers.*11.5 at row 3"):
        load_table(source, db_url, "cards")
    assert SQLSource(db_url, table="cards").count() == 30


def test_append_needs_the_table_to_have_every_column(db_url):
    load_table(tiny_portfolio(10), db_url, "cards")
    extra = tiny_portfolio(3).assign(REGION="north")
    with pytest.raises(DataError, match="no column REGION"):
        load_table(extra, db_url, "cards", mode="append")
    assert SQLSource(db_url, table="cards").count() == 10


def test_parquet_file_and_schema_qualified_name(tmp_path):
    frame = tiny_portfolio(40)
    path = tmp_path / "cards.parquet"
    frame.to_parquet(path)
    url = f"duckdb:///{tmp_path / 'cards.duckdb'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA bank")
    engine.dispose()
    assert load_table(path, url, "bank.cards") == 40
    assert SQLSource(url, table="bank.cards").read()[schema.ID].tolist() == frame[schema.ID].tolist()


def test_bad_mode_and_unreachable_server(tmp_path):
    with pytest.raises(CustsegError, match="mode must be one of replace, append"):
        load_table(tiny_portfolio(5), f"duckdb:///{tmp_path / 'x.duckdb'}", "cards", mode="upsert")
    url = PostgresServer("127.0.0.1", free_port(), "custseg", PASSWORD).url("db")
    with pytest.raises(DataError) as err:
        load_table(tiny_portfolio(5), url, "cards")
    assert "cannot reach the server" in str(err.value) and "s3cret" not in str(err.value)


class GivenBatches(Source):
    """A source whose batches are given (to put a bad value in the second batch)."""

    label = "given batches"

    def __init__(self, parts):
        self.parts, self.notes = parts, []

    def columns(self):
        return list(self.parts[0].columns)

    def read(self, columns=None):
        return pd.concat(self.parts, ignore_index=True)

    def batches(self, columns=None, rows=0):
        yield from self.parts
