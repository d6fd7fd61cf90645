"""A source's columns in batches as NumPy columns and Arrow ids, the values :func:`custseg.load.load` reads.

A Parquet file goes from its row groups straight to float64 arrays (pyarrow decodes
in its own threads; no pandas on the way); any other source hands over pandas
batches, converted column by column. The ids come as a pyarrow ``large_string``
array: stripped text, null where empty, integers written without a decimal point,
as :func:`custseg.load.load` gives them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from .. import schema

#: Matches an id that is a whole number (what the "customer ids are integers" note says).
_INTEGER_ID = r"^\s*\d+\s*$"


def column_batches(source, canonical: Sequence[str], names: Sequence[str],
                   rows: int, *, threads: bool = True) -> Iterator[tuple[object, dict, bool]]:
    """(ids, numeric columns, whether every id so far is an integer) per batch of at most ``rows`` rows.

    Parameters
    ----------
    source : Source
        The customers.
    canonical : sequence of str
        Canonical names of the columns to read, :data:`custseg.schema.ID` among them.
    names : sequence of str
        The same columns as the source spells them.
    rows : int
        Rows per batch.
    threads : bool
        Whether pyarrow decodes a Parquet file's columns in its own threads (the
        batches are the same either way).

    Yields
    ------
    ids : pyarrow.Array
        ``large_string`` ids.
    columns : dict
        Each numeric canonical column as a float64 array, or as a pandas Series of
        text when the source holds text there (validation reads it as numbers).
    integer : bool
        Whether the ids of this batch and every earlier one are whole numbers.
    """
    position = list(canonical).index(schema.ID)
    integer = True
    arrow = getattr(source, "arrow_batches", None)
    batches = arrow(names, rows, threads=threads) if arrow is not None else None
    if batches is not None:
        for batch in batches:
            columns = {c: _arrow_values(a) for c, a in zip(canonical, batch.columns) if c != schema.ID}
            ids, integer = _arrow_ids(batch.column(position), integer)
            yield ids, columns, integer
        return
    for frame in source.batches(list(names), rows=rows):
        columns = {c: _pandas_values(frame.iloc[:, j]) for j, c in enumerate(canonical) if c != schema.ID}
        ids, batch_integer = _pandas_ids(frame.iloc[:, position])
        integer = integer and batch_integer
        yield ids, columns, integer


def _arrow_values(array):
    import pyarrow as pa

    if pa.types.is_floating(array.type) or pa.types.is_integer(array.type):
        return array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return array.to_pandas()


def _pandas_values(values: pd.Series):
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _pandas_ids(raw: pd.Series):
    """Ids as :func:`custseg.load.load` gives them, as a pyarrow array, and whether they are integers."""
    import pyarrow as pa

    from ..load import _id_note, _ids_as_text

    ids = pa.array(_ids_as_text(raw), type=pa.large_string(), from_pandas=True)
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    return ids, _id_note(raw).endswith("integers")


def _arrow_ids(array, integer: bool):
    """Ids of an Arrow column, and whether they are integers (looked at only while ``integer``: the earlier
    batches' ids all were)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(array.type):
        return pc.cast(array, pa.large_string()), integer
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        ids, batch_integer = _pandas_ids(array.to_pandas())
        return ids, integer and batch_integer
    text = pc.utf8_trim_whitespace(array)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text).cast(pa.large_string())
    if integer:
        integer = pc.all(pc.match_substring_regex(array, _INTEGER_ID), skip_nulls=True).as_py() in (True, None)
    return text, integer
