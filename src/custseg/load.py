"""Load a card portfolio from any source into a :class:`Portfolio` with canonical columns.

Headers are matched to :mod:`custseg.schema` whatever their spelling; every rename
and every ignored column is recorded so the data-quality report can show it.
Values are not judged here (that is :mod:`custseg.quality`), except that a file
which cannot be read as a table at all is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import schema
from .errors import DataError
from .sources import FrameSource, Source, open_source


@dataclass
class Portfolio:
    """A portfolio table with canonical column names, and how it was read.

    Attributes
    ----------
    frame : DataFrame
        Canonical columns present in the source, in schema order. ``CUST_ID`` is text.
        Numeric columns keep whatever pandas read; :func:`custseg.quality.validate`
        converts and checks them.
    source : str
        The file (or query) it came from, for messages.
    renamed : dict
        Original header → canonical name, for headers that were not already canonical.
    ignored : list of str
        Headers that matched no schema column and were dropped.
    empty_ignored : list of str
        Those of ``ignored`` that held no value at all (spreadsheet export debris).
    notes : list of str
        Other facts about the reading (delimiter, BOM, id type).
    path : Path or None
        The file read, ``None`` for a DataFrame.
    """

    frame: pd.DataFrame
    source: str
    renamed: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    empty_ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.frame)


def load(source: Source | pd.DataFrame | str | Path, *, name: str | None = None) -> Portfolio:
    """Read a source (a CSV or Parquet file, a DataFrame, or any :class:`~custseg.sources.Source`).

    Only the columns that map to the schema are read, so a wide table or a database
    hands over what the segmentation needs and no more.

    Parameters
    ----------
    source : path, DataFrame or Source
        A path is a :class:`~custseg.sources.FileSource`: ``.parquet``/``.pq``, or CSV
        in any usual dialect (comma, semicolon, tab or pipe; UTF-8 with or without
        BOM, UTF-16, Windows-1252; gzip; decimal comma; a title or ``sep=`` line).
    name : str, optional
        How to call a path or DataFrame in messages (defaults to the path, or
        ``"<DataFrame>"``); a Source keeps its own label.

    Raises
    ------
    DataError
        The file is missing, empty, binary, not a table, or has two headers that
        mean the same column.
    """
    src = open_source(source, name=name)
    headers = src.columns()
    chosen, renamed, ignored = _match_headers(headers, src.label)
    ordered = [c.name for c in schema.COLUMNS if c.name in chosen]
    frame = src.read([chosen[c] for c in ordered])
    frame.columns = ordered
    return _portfolio(frame.reset_index(drop=True), src, renamed, ignored, src.empty_columns(ignored))


def from_frame(frame: pd.DataFrame, label: str, notes: list[str]) -> Portfolio:
    """Map an in-memory table's headers to canonical names and keep the known columns."""
    portfolio = load(FrameSource(frame, name=label))
    return replace(portfolio, notes=notes + portfolio.notes)


def _match_headers(headers: list[str], label: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Canonical name -> header, the renamed headers, and the ignored ones; refuses two for one."""
    chosen: dict[str, str] = {}
    renamed: dict[str, str] = {}
    ignored: list[str] = []
    for position, original in enumerate(headers, start=1):
        canonical = schema.canonical_name(original)
        if canonical is None:
            ignored.append(original)
            continue
        if canonical in chosen:
            first = chosen[canonical]
            if first == original:
                raise DataError(f"{label}: the header {_quoted(original)} appears twice (columns "
                                f"{headers.index(original) + 1} and {position}); keep one of them and run again.")
            raise DataError(f"{label}: columns {_quoted(first)} and {_quoted(original)} both mean {canonical}; "
                            "keep one of them and run again.")
        chosen[canonical] = original
        if original != canonical:
            renamed[original] = canonical
    return chosen, renamed, ignored


def _quoted(header: str) -> str:
    return repr(header if len(header) <= 40 else header[:40] + "…")


def _portfolio(frame: pd.DataFrame, src: Source, renamed: dict[str, str], ignored: list[str],
               empty: list[str]) -> Portfolio:
    notes = list(src.notes)
    if schema.ID in frame.columns:
        notes.append(_id_note(frame[schema.ID]))
        frame[schema.ID] = _ids_as_text(frame[schema.ID])
    return Portfolio(frame, src.label, renamed, ignored, empty, notes, src.path)


def _id_note(ids: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(ids) or bool(ids.dropna().astype("string").str.fullmatch(r"\s*\d+\s*").all())
    return f"customer ids are {'integers' if numeric else 'text'}"


def _ids_as_text(ids: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(ids):
        # integer ids with a gap come back as float; print 123 not 123.0
        whole = ids.dropna()
        if (whole == whole.round()).all():
            ids = ids.astype("Int64")
    text = ids.astype("string").str.strip()
    return text.where(text.ne(""), pd.NA)
