"""Customers from a database: a query or a whole table, through SQLAlchemy.

DuckDB (the embedded default), SQLite and PostgreSQL work out of the box with the
``sql`` extra; BigQuery through the ``sqlalchemy-bigquery`` dialect (the ``bigquery``
extra). The user's query is used as written, as a subquery; everything this module
adds to it (the columns to read, a table name, ``LIMIT``, ``COUNT``) is built with
SQLAlchemy constructs, so identifiers are quoted by the dialect and values travel as
bound parameters, never pasted into SQL text.

Only the requested columns are read, and :meth:`SQLSource.batches` streams the
result (DuckDB's Arrow reader, a server-side cursor on PostgreSQL, ``fetchmany``
elsewhere), so a large result is never held twice.
"""

from __future__ import annotations

import contextlib
import decimal
import re
from collections.abc import Iterator, Mapping, Sequence

import pandas as pd
import sqlalchemy as sa

from ..credentials import mask_url, resolve_url
from ..db import create_engine, find_table, table_ref, translated
from ..errors import CustsegError, DataError
from .base import BATCH_ROWS, Source

SUBQUERY = "custseg_source"
_SUMMARY_CHARS = 60


class SQLSource(Source):
    """A query's result or a table in a database, read as a table of customers.

    Parameters
    ----------
    url : str or sqlalchemy URL, optional
        ``duckdb:///cards.duckdb``, ``sqlite:///cards.sqlite``, ``postgresql://user@host/db``,
        ``bigquery://project/dataset``, or a ``.duckdb``/``.sqlite`` path. Default: the
        ``CUSTSEG_DB_URL`` environment variable. A password missing from the URL comes
        from ``CUSTSEG_DB_PASSWORD``.
    query : str, optional
        A ``SELECT`` returning one row per customer. Values go in as ``:name`` placeholders
        filled from ``params``.
    table : str, optional
        A table or view (``NAME``, ``SCHEMA.NAME``, ``project.dataset.NAME`` on BigQuery),
        instead of ``query``. Matched case-insensitively when the exact spelling is absent.
    name : str, optional
        How messages call the source (default: masked URL and table or query).
    params : mapping, optional
        Values for the query's ``:name`` placeholders.
    order_by : sequence of str, optional
        Columns (source spelling) to order rows by. Without it rows come in the
        database's order, which DuckDB and SQLite keep stable for a plain table; give an
        order on PostgreSQL or BigQuery when a run must be reproducible.

    Raises
    ------
    CustsegError
        Neither or both of ``query`` and ``table``, or no URL.
    """

    def __init__(self, url=None, *, query: str | None = None, table: str | None = None, name: str | None = None,
                 params: Mapping[str, object] | None = None, order_by: Sequence[str] | None = None):
        if (query is None) == (table is None):
            raise CustsegError("Give either a query (--sql) or a table (--table) to read customers from, not both.")
        self.url = resolve_url(url)
        self.query = _strip_query(query) if query is not None else None
        if self.query == "":
            raise CustsegError("The SQL query is empty; give a SELECT that returns one row per customer.")
        self.table = table
        self.params = dict(params or {})
        self.order_by = list(order_by or [])
        what = f"table {table}" if table is not None else f"query {_summary(self.query)}"
        self.label = name or f"{mask_url(self.url)} {what}"
        self.path = None
        self.notes = []
        self._columns: list[str] | None = None
        self._from: sa.FromClause | None = None
        self._engine: sa.Engine | None = None

    # -- the Source interface ------------------------------------------------------------------

    def columns(self) -> list[str]:
        if self._columns is None:
            with self._connect() as conn:
                result = conn.execute(sa.select(sa.literal_column("*")).select_from(self._source(conn)).limit(0))
                self._columns = [str(k) for k in result.keys()]
                result.close()
            if len(set(self._columns)) != len(self._columns):
                twice = sorted({c for c in self._columns if self._columns.count(c) > 1})
                raise DataError(f"{self.label}: the result has more than one column named {', '.join(twice)}; "
                                "give each column its own name (AS ...).")
        return list(self._columns)

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        parts = list(self.batches(columns, rows=BATCH_ROWS))
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return frame

    def batches(self, columns: Sequence[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        names = self._checked(columns)
        with self._connect() as conn:
            statement = self.select(names, conn)
            if conn.dialect.name == "duckdb":
                yield from self._duckdb_batches(conn, statement, names, rows)
            else:
                yield from self._cursor_batches(conn, statement, names, rows)

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self._source(conn))).scalar_one())

    # -- statements ----------------------------------------------------------------------------

    def select(self, columns: Sequence[str], conn: sa.Connection | None = None) -> sa.Select:
        """The ``SELECT`` of ``columns`` (quoted identifiers) from the table or the query.

        Without a connection a table is referenced as given (for compiling, e.g. with
        the BigQuery dialect); with one it is first looked up in the database.
        """
        source = self._source(conn) if conn is not None else self._unresolved()
        statement = sa.select(*[sa.column(c) for c in columns]).select_from(source)
        if self.order_by:
            statement = statement.order_by(*[sa.column(c) for c in self.order_by])
        return statement

    def _unresolved(self) -> sa.FromClause:
        if self.query is not None:
            return self._subquery()
        schema, table = table_ref(self.table)
        return sa.table(table, schema=schema)

    def _source(self, conn: sa.Connection) -> sa.FromClause:
        if self._from is None:
            self._from = self._subquery() if self.query is not None else find_table(conn, self.table, self.label)
        return self._from

    def _subquery(self) -> sa.Subquery:
        text = sa.text(self.query)
        try:
            text = text.bindparams(**self.params)
        except sa.exc.ArgumentError as exc:
            raise CustsegError(f"{self.label}: {exc}; the query's placeholders are "
                               f"{', '.join(':' + p for p in _placeholders(self.query)) or 'none'}.") from None
        return text.columns().subquery(SUBQUERY)

    def _checked(self, columns: Sequence[str] | None) -> list[str]:
        available = self.columns()
        if columns is None:
            return available
        missing = [c for c in columns if c not in available]
        if missing:
            raise DataError(f"{self.label}: the result has no column {', '.join(missing)}; "
                            f"it has {', '.join(available)}.")
        return list(columns)

    # -- reading -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A connection to the source's database; driver errors inside the block name the source."""
        with translated(self.url, self.label):
            if self._engine is None:
                self._engine = create_engine(self.url, self.label, read_only=True)
            with self._engine.connect() as conn:
                yield conn

    def _duckdb_batches(self, conn, statement, names, rows) -> Iterator[pd.DataFrame]:
        compiled = statement.compile(dialect=conn.dialect)
        params = [compiled.params[p] for p in (compiled.positiontup or [])]
        reader = conn.connection.driver_connection.sql(str(compiled), params=params or None).to_arrow_reader(rows)
        empty = True
        for batch in reader:
            empty = False
            yield batch.to_pandas().reset_index(drop=True)
        if empty:
            yield pd.DataFrame({c: pd.Series(dtype=t.to_pandas_dtype()) for c, t in
                                zip(names, reader.schema.types)})

    def _cursor_batches(self, conn, statement, names, rows) -> Iterator[pd.DataFrame]:
        result = conn.execution_options(stream_results=True, max_row_buffer=rows).execute(statement)
        empty = True
        try:
            while True:
                chunk = result.fetchmany(rows)
                if not chunk:
                    break
                empty = False
                yield _frame(chunk, names)
        finally:
            result.close()
        if empty:
            yield pd.DataFrame({c: pd.Series(dtype=object) for c in names})


def _frame(rows: list, names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)
    for name in names:
        col = frame[name]
        if col.dtype == object:
            first = col.dropna().iloc[0] if col.notna().any() else None
            if isinstance(first, decimal.Decimal):  # NUMERIC columns: amounts are analysed as floats
                frame[name] = pd.to_numeric(col.astype("Float64"), errors="coerce").astype("float64")
    return frame


def _strip_query(query: str) -> str:
    return query.strip().rstrip(";").strip()


def _summary(query: str) -> str:
    flat = " ".join(query.split())
    return f"'{flat}'" if len(flat) <= _SUMMARY_CHARS else f"'{flat[:_SUMMARY_CHARS - 1]}…'"


def _placeholders(query: str) -> list[str]:
    return sorted(set(re.findall(r"(?<![:\w\\]):(\w+)(?!:)", query)))
