"""Talking to databases through SQLAlchemy: engines, errors users can fix, bulk inserts.

Shared by SQL sources, :mod:`custseg.dbload` and the run store. Every message that
names a database names it by its masked URL (:func:`custseg.credentials.mask_url`),
and any driver text quoted in it is masked too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from .credentials import mask_text, mask_url, url_secrets
from .errors import CustsegError, DataError

#: Rows per INSERT batch for drivers without a bulk path.
INSERT_ROWS = 10_000

_EXTRA_FOR = {"bigquery": "bigquery", "postgresql": "postgresql"}


def create_engine(url: URL, label: str | None = None, *, read_only: bool = False) -> sa.Engine:
    """An engine that keeps no idle connection open (DuckDB locks its file while one is open).

    ``read_only`` opens an embedded database file only to read it: it must exist, and
    several processes may read a DuckDB file at once.

    Raises
    ------
    CustsegError
        The dialect's package is not installed, or (BigQuery) no credentials can be found.
    """
    kwargs: dict = {"poolclass": NullPool}
    backend = url.get_backend_name()
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    if read_only and backend in ("duckdb", "sqlite"):
        path = embedded_path(url)
        if path is not None and not path.is_file():
            raise DataError(f"{label or mask_url(url)}: no such database file {path}.")
        if backend == "duckdb":
            kwargs["connect_args"] = {"read_only": True}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.NoSuchModuleError, ImportError):
        extra = _EXTRA_FOR.get(backend)
        how = f"pip install 'custseg[{extra}]'" if extra else f"the SQLAlchemy dialect package for {backend}"
        raise CustsegError(f"{mask_url(url)}: the database driver for '{url.drivername}' is not installed; "
                           f"install it with {how}.") from None
    except Exception as exc:  # dialects that connect or authenticate while the engine is made (BigQuery)
        raise DataError(f"{label or mask_url(url)}: {_kind(exc)}{short_reason(exc, url)}") from None
    if backend == "sqlite":
        _sqlite_real_transactions(engine)
    return engine


def embedded_path(url: URL) -> Path | None:
    """The file behind a DuckDB or SQLite URL (``None`` for in-memory databases and servers)."""
    if url.get_backend_name() not in ("duckdb", "sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def _sqlite_real_transactions(engine: sa.Engine) -> None:
    # pysqlite opens transactions lazily and never around DDL; begin them ourselves, as SQLAlchemy documents
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def short_reason(exc: BaseException, url: URL) -> str:
    """The driver's own first line about ``exc``, with every credential masked."""
    inner = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = lines[0] if lines else type(inner).__name__
    return mask_text(text, *url_secrets(url))


@contextlib.contextmanager
def translated(url: URL, label: str) -> Iterator[None]:
    """Turn driver errors inside the block into :class:`DataError` naming the source by ``label``.

    ``label`` must already be masked (it is built from :func:`~custseg.credentials.mask_url`).
    """
    try:
        yield
    except CustsegError:
        raise
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise DataError(f"{label}: {_kind(exc)}{short_reason(exc, url)}") from None
    except Exception as exc:
        # drivers raise their own classes for some failures (DuckDB's IO errors, google-auth)
        if type(exc).__module__.split(".")[0] in {"duckdb", "_duckdb", "psycopg", "google", "sqlite3"}:
            raise DataError(f"{label}: {_kind(exc)}{short_reason(exc, url)}") from None
        raise


def _kind(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "password authentication failed" in text or "authentication failed" in text:
        return "the server refused the credentials: "
    if any(s in text for s in ("connection refused", "could not connect", "connection failed",
                               "timeout expired", "name or service not known", "could not translate host")):
        return "cannot reach the server: "
    if isinstance(exc, sa.exc.OperationalError) and "does not exist" in text and "database" in text:
        return "no such database: "
    return ""


def table_ref(name: str) -> tuple[str | None, str]:
    """Split ``schema.table`` (or BigQuery's ``project.dataset.table``) into schema and table name."""
    name = name.strip()
    if not name or name.startswith(".") or name.endswith("."):
        raise CustsegError(f"'{name}' is not a table name; give NAME or SCHEMA.NAME.")
    schema, _, table = name.rpartition(".")
    return schema or None, table


def find_table(conn: sa.Connection, name: str, label: str) -> sa.TableClause:
    """The table ``name`` as the database spells it (exact match, else the one case-insensitive match).

    Raises
    ------
    DataError
        No such table; the message lists the tables that exist.
    """
    schema, table = table_ref(name)
    names = sa.inspect(conn).get_table_names(schema=schema) + sa.inspect(conn).get_view_names(schema=schema)
    if table not in names:
        folded = [n for n in names if n.lower() == table.lower()]
        if len(folded) != 1:
            shown = ", ".join(sorted(names)[:20]) or "none"
            raise DataError(f"{label}: no table '{name}'. Tables there: {shown}.")
        table = folded[0]
    return sa.table(table, schema=schema)


def read_frame(conn: sa.Connection, statement: sa.Executable) -> pd.DataFrame:
    """The whole result of ``statement`` as a DataFrame (DuckDB hands it over as Arrow, without Python rows)."""
    if conn.dialect.name == "duckdb":
        compiled = statement.compile(dialect=conn.dialect)
        params = [compiled.params[p] for p in (compiled.positiontup or [])]
        return conn.connection.driver_connection.sql(str(compiled), params=params or None).df()
    result = conn.execute(statement)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def column_type(series: pd.Series) -> sa.types.TypeEngine:
    """The SQL column type that holds a pandas column without loss."""
    kind = series.dtype.kind
    if kind == "b":
        return sa.Boolean()
    if kind in "iu":
        return sa.BigInteger()
    if kind == "f":
        return sa.Double()
    if kind == "M":
        return sa.DateTime()
    return sa.Text()


def insert_frame(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Append ``frame`` (columns named as ``table``'s) to ``table`` inside the caller's transaction.

    DuckDB reads the frame in place, PostgreSQL (psycopg) receives it by ``COPY``; other
    databases get multi-row INSERTs of :data:`INSERT_ROWS`. Missing values become NULL.
    """
    if frame.empty:
        return
    backend = conn.dialect.name
    names = [str(c) for c in frame.columns]
    preparer = conn.dialect.identifier_preparer
    target = preparer.format_table(table)
    columns = ", ".join(preparer.quote(c) for c in names)
    if backend == "duckdb":
        raw = conn.connection.driver_connection
        view = "custseg_insert_batch"
        raw.register(view, frame)
        try:
            raw.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {view}")
        finally:
            raw.unregister(view)
    elif backend == "postgresql" and conn.dialect.driver == "psycopg":
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                for row in _rows(frame):
                    copy.write_row(row)
    else:
        for start in range(0, len(frame), INSERT_ROWS):
            part = frame.iloc[start:start + INSERT_ROWS]
            conn.execute(table.insert(), [dict(zip(names, row)) for row in _rows(part)])


def _rows(frame: pd.DataFrame) -> Iterator[tuple]:
    columns = []
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiub":
            values = col.to_numpy().astype(object)
            if col.dtype.kind == "f":
                values[np.isnan(col.to_numpy())] = None
        else:
            values = col.to_numpy(dtype=object, na_value=None)
        columns.append(values.tolist())
    return zip(*columns)
