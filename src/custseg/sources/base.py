"""Where customers come from: one small interface for files, frames and (later) SQL.

A :class:`Source` is read by column *as the source spells it*; mapping headers to the
schema's canonical names is :mod:`custseg.load`'s job, so every source only has to
list its columns and hand back rows. A source never judges values (that is
:mod:`custseg.quality`), but refuses what cannot be read as a table at all with a
:class:`~custseg.errors.DataError` that names it by :attr:`label`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Rows per batch when a caller does not say.
BATCH_ROWS = 250_000


class Source(abc.ABC):
    """A table of customers that can be read whole, by columns, in batches or as a sample.

    Attributes
    ----------
    label : str
        How messages, progress lines and reports call the source. Never holds a
        password (SQL sources mask it).
    path : Path or None
        The file behind the source, when there is one (so outputs can refuse to overwrite it).
    notes : list of str
        Facts about how it was read (delimiter, encoding, byte-order mark, ...), for the
        data-quality report. Complete after :meth:`columns` has been called.
    """

    label: str
    path: Path | None = None
    notes: list[str]

    @abc.abstractmethod
    def columns(self) -> list[str]:
        """Column names exactly as the source spells them, in source order."""

    @abc.abstractmethod
    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole table, or only ``columns`` (source spelling), in source row order."""

    def batches(self, columns: Sequence[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """The table in consecutive batches of at most ``rows`` rows, in source row order.

        The default reads everything and slices it; sources that can stream override it.
        """
        frame = self.read(columns)
        for start in range(0, len(frame), rows):
            yield frame.iloc[start:start + rows].reset_index(drop=True)

    def empty_columns(self, columns: Sequence[str]) -> list[str]:
        """Those of ``columns`` that hold no value at all (missing or blank text in every row).

        Spreadsheet exports carry such debris columns; the data-quality report lists
        them apart from columns that hold something. The default streams the batches;
        a database can answer with one aggregate query.
        """
        if not columns:
            return []
        unique = list(dict.fromkeys(columns))
        empty = dict.fromkeys(unique, True)
        for batch in self.batches(unique):
            for i, name in enumerate(unique):
                empty[name] = empty[name] and _blank(batch.iloc[:, i])
        return [c for c in columns if empty[c]]

    def count(self) -> int:
        """Number of rows."""
        return sum(len(b) for b in self.batches(self.columns()[:1]))

    def sample(self, n: int, seed: int | np.random.SeedSequence, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A uniform sample of ``min(n, rows)`` rows without replacement, in source row order.

        Deterministic: the same source, ``n`` and ``seed`` give the same rows. The
        default draws row positions from ``numpy.random.default_rng(seed)`` and keeps
        them while streaming the batches, so it never holds more than one batch
        besides the sample.
        """
        total = self.count()
        take = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
        parts, start = [], 0
        for batch in self.batches(columns):
            stop = start + len(batch)
            lo, hi = np.searchsorted(take, [start, stop])
            if hi > lo:
                parts.append(batch.iloc[take[lo:hi] - start])
            start = stop
        if not parts:
            return self.read(columns).iloc[:0]
        return pd.concat(parts, ignore_index=True)


def _blank(values: pd.Series) -> bool:
    if values.isna().all():
        return True
    if values.dtype.kind in "fiub":
        return False
    return bool(values.astype("string").str.strip().fillna("").eq("").all())
