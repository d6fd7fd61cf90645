"""An in-memory table: a pandas DataFrame handed over by a caller or a notebook."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

from .base import BATCH_ROWS, Source


class FrameSource(Source):
    """A DataFrame read like any other source; the caller's frame is never modified.

    Parameters
    ----------
    frame : DataFrame
        One row per customer; column labels of any type are listed as text.
    name : str, optional
        How messages call the table (default ``"<DataFrame>"``).
    """

    def __init__(self, frame: pd.DataFrame, *, name: str | None = None):
        self.frame = frame
        self.label = name or "<DataFrame>"
        self.notes = []

    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return self._select(columns).copy()

    def batches(self, columns: Sequence[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        selected = self._select(columns)
        for start in range(0, len(selected), rows):
            yield selected.iloc[start:start + rows].reset_index(drop=True)

    def count(self) -> int:
        return len(self.frame)

    def _select(self, columns: Sequence[str] | None) -> pd.DataFrame:
        """The asked-for columns by position, so labels that are not text or repeat still work."""
        if columns is None:
            return self.frame
        first: dict[str, int] = {}
        for i, c in enumerate(self.columns()):
            first.setdefault(c, i)
        selected = self.frame.iloc[:, [first[c] for c in columns]]
        selected.columns = list(columns)
        return selected
