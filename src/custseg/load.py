"""Load a card portfolio from a file into a :class:`Portfolio` with canonical columns.

Headers are matched to :mod:`custseg.schema` whatever their spelling; every rename
and every ignored column is recorded so the data-quality report can show it.
Values are not judged here (that is :mod:`custseg.quality`), except that a file
which cannot be read as a table at all is refused.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import schema
from .errors import DataError

_SNIFF_BYTES = 64 * 1024


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


def load(source: str | Path | pd.DataFrame, *, name: str | None = None) -> Portfolio:
    """Read a CSV or Parquet file (or take a DataFrame) as a :class:`Portfolio`.

    Parameters
    ----------
    source : path or DataFrame
        ``.csv`` (comma or semicolon, UTF-8 with or without BOM; other text
        extensions are read as CSV) or ``.parquet``/``.pq``.
    name : str, optional
        How to call the source in messages (defaults to the path).

    Raises
    ------
    DataError
        The file is missing, empty, binary, not a table, or has two headers that
        mean the same column.
    """
    if isinstance(source, pd.DataFrame):
        return from_frame(source.copy(), name or "<DataFrame>", [])
    path = Path(source)
    label = name or str(path)
    if not path.exists():
        raise DataError(f"{label}: no such file.")
    if path.is_dir():
        raise DataError(f"{label} is a folder; give the path of a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise DataError(f"{label} is empty (0 bytes): there is no header and no customer to segment.")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame, notes = _read_parquet(path, label)
    else:
        frame, notes = _read_csv(path, label)
    return replace(from_frame(frame, label, notes), path=path)


def from_frame(frame: pd.DataFrame, label: str, notes: list[str]) -> Portfolio:
    """Map a raw table's headers to canonical names and keep the known columns."""
    renamed: dict[str, str] = {}
    chosen: dict[str, str] = {}  # canonical -> original
    ignored: list[str] = []
    for original in frame.columns:
        canonical = schema.canonical_name(str(original))
        if canonical is None:
            ignored.append(str(original))
            continue
        if canonical in chosen:
            raise DataError(
                f"{label}: columns '{chosen[canonical]}' and '{original}' both mean {canonical}; "
                "keep one of them and run again."
            )
        chosen[canonical] = original
        if str(original) != canonical:
            renamed[str(original)] = canonical
    empty = [c for c in ignored if frame[c].isna().all() or _all_blank(frame[c])]
    ordered = [c.name for c in schema.COLUMNS if c.name in chosen]
    out = frame[[chosen[c] for c in ordered]].copy()
    out.columns = ordered
    out = out.reset_index(drop=True)
    if schema.ID in out.columns:
        notes = notes + [_id_note(out[schema.ID])]
        out[schema.ID] = _ids_as_text(out[schema.ID])
    return Portfolio(out, label, renamed, ignored, empty, notes)


def _read_csv(path: Path, label: str) -> tuple[pd.DataFrame, list[str]]:
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise DataError(f"{label} is a binary file, not a CSV text table; export the portfolio as CSV or Parquet.")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        # the sniffed block may cut a multi-byte character; only a failure well inside it is real
        try:
            text = head[:-4].decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{label} is not UTF-8 text (byte {exc.start} cannot be decoded); "
                "save it as UTF-8 CSV or as Parquet."
            ) from None
    notes = []
    if head.startswith(b"\xef\xbb\xbf"):
        notes.append("the file starts with a UTF-8 byte-order mark (ignored)")
    first_line = text.splitlines()[0] if text.strip() else ""
    if not first_line.strip():
        raise DataError(f"{label} has no header line; the first line must name the columns.")
    sep = ";" if first_line.count(";") > first_line.count(",") else ","
    if sep == ";":
        notes.append("columns are separated by semicolons")
    headers = next(csv.reader([first_line], delimiter=sep))
    # read ids as text so leading zeros survive and integer ids need no special case
    id_headers = {h: "string" for h in headers if schema.canonical_name(h) == schema.ID}
    try:
        frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype=id_headers, low_memory=False,
                            skipinitialspace=True)
    except UnicodeDecodeError as exc:
        raise DataError(f"{label} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label} holds no table (no header line).") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{label} is not a well-formed {_sep_name(sep)}-separated table: {exc}") from None
    return frame, notes


def _read_parquet(path: Path, label: str) -> tuple[pd.DataFrame, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise DataError(f"{label} is not a readable Parquet file ({exc}).") from None
    return table.to_pandas(), []


def _sep_name(sep: str) -> str:
    return "semicolon" if sep == ";" else "comma"


def _all_blank(col: pd.Series) -> bool:
    if col.dtype.kind in "fiub":
        return False
    return bool(col.astype("string").str.strip().fillna("").eq("").all())


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
