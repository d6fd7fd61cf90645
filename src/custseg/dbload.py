"""Load a portfolio file (or any source) into a database table, all or nothing.

``custseg load-db DATA --db URL --table T`` is this module: the file's columns keep
their names, numbers become ``DOUBLE``/``BIGINT``, text ``TEXT``. The rows go in batch
by batch inside one transaction, so a failure leaves the database as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .credentials import mask_url, resolve_url
from .db import column_type, create_engine, insert_frame, table_ref, translated
from .errors import CustsegError, DataError
from .sources.base import BATCH_ROWS, Source

MODES = ("replace", "append")


def load_table(source: Source | pd.DataFrame | str | os.PathLike, url=None, table: str = "customers", *,
               mode: str = "replace", rows: int = BATCH_ROWS) -> int:
    """Copy every row of ``source`` into ``table``; return the number of rows written.

    Parameters
    ----------
    source : Source, DataFrame or path
        A CSV or Parquet file, a frame, or any :class:`~custseg.sources.base.Source`.
    url : str or sqlalchemy URL, optional
        The database (default ``CUSTSEG_DB_URL``); a DuckDB or SQLite file is created if absent.
    table : str
        ``NAME`` or ``SCHEMA.NAME``, spelled as it should be stored.
    mode : {"replace", "append"}
        ``replace`` drops an existing table of that name and creates it from the source's
        columns; ``append`` adds the rows to an existing table (created when absent) whose
        columns must include the source's; values are converted by the database to the
        table's column types.
    rows : int
        Rows per batch.

    Raises
    ------
    CustsegError
        Unknown mode, or no URL.
    DataError
        The database cannot be reached or refuses the rows, the table lacks a column of
        the source, or a column changes from whole numbers to fractions part-way.
    """
    if mode not in MODES:
        raise CustsegError(f"mode must be one of {', '.join(MODES)}, not '{mode}'.")
    url = resolve_url(url)
    schema, name = table_ref(table)
    label = f"{mask_url(url)} table {table}"
    engine = create_engine(url, label)
    written = 0
    with translated(url, label), engine.begin() as conn:
        target = None
        for batch in _batches(source, rows):
            if target is None:
                target = _prepare(conn, schema, name, batch, mode, label)
            batch = _fit(batch, target, label, written)
            insert_frame(conn, target, batch)
            written += len(batch)
        if target is None:  # a source with no batch at all still gets its (empty) table
            _prepare(conn, schema, name, pd.DataFrame(), mode, label)
    engine.dispose()
    return written


def _batches(source, rows: int) -> Iterator[pd.DataFrame]:
    if isinstance(source, pd.DataFrame):
        for start in range(0, max(len(source), 1), rows):
            yield source.iloc[start:start + rows].reset_index(drop=True)
        return
    if not isinstance(source, Source):
        source = _file_source(source)
    yield from source.batches(None, rows)


def _file_source(path) -> Source:
    from .sources import open_source

    return open_source(path)


def _prepare(conn: sa.Connection, schema: str | None, name: str, batch: pd.DataFrame, mode: str,
             label: str) -> sa.Table:
    exists = sa.inspect(conn).has_table(name, schema=schema)
    target = sa.Table(name, sa.MetaData(), *[sa.Column(str(c), column_type(batch[c])) for c in batch.columns],
                      schema=schema)
    if mode == "append" and exists:
        # column names from an empty SELECT: reflection is not available on every dialect (duckdb-engine)
        present = conn.execute(sa.select(sa.literal_column("*")).select_from(target).limit(0)).keys()
        missing = [c.name for c in target.c if c.name not in present]
        if missing:
            raise DataError(f"{label}: the table has no column {', '.join(missing)}; append needs every "
                            f"column of the data (the table has {', '.join(present)}); "
                            "use mode replace to recreate it.")
        return target
    if exists:
        target.drop(conn)
    target.create(conn)
    return target


def _fit(batch: pd.DataFrame, target: sa.Table, label: str, offset: int) -> pd.DataFrame:
    """Make a batch's columns match the table's types, refusing what would lose information."""
    batch = batch.copy()
    batch.columns = [str(c) for c in batch.columns]
    for name in batch.columns:
        col, kind = batch[name], target.c[name].type
        if isinstance(kind, sa.Integer) and col.dtype.kind == "f":
            values = col.to_numpy()
            fractional = np.flatnonzero(~np.isnan(values) & (values != np.round(values)))
            if fractional.size:
                raise DataError(f"{label}: column {name} holds whole numbers in the first rows but "
                                f"{values[fractional[0]]} at row {offset + fractional[0] + 1}; "
                                "store it as a number with decimals (convert the column first) and load again.")
            batch[name] = col.astype("Int64")
        elif isinstance(kind, (sa.Text, sa.String)) and col.dtype.kind not in "OSUT" and \
                not pd.api.types.is_string_dtype(col):
            batch[name] = col.astype("string")
    return batch
