"""Portfolio files: CSV in the dialects banks export, and Parquet.

A CSV file is inspected once, on first use: its bytes tell compression (gzip magic),
encoding (byte-order marks, UTF-16 without one, UTF-8, else Windows-1252) and whether
it is text at all; DuckDB's CSV sniffer reads a decoded sample and gives the
delimiter, the quote character and the lines above the header (a title, Excel's
``sep=;``); the sampled values give the number format (decimal comma, thousands
separators). pandas then parses the file with that dialect, so the numbers are the
ones ``pandas.read_csv`` gives for the same file. Every such fact goes into
:attr:`FileSource.notes`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import stat
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import schema
from ..errors import DataError
from .base import BATCH_ROWS, Source

#: Bytes of decoded text inspected for the dialect and the number format.
HEAD_BYTES = 1 << 20
#: Widest header accepted: far above any portfolio export; a wider first line is a file
#: that is not a customer table (or one without line breaks).
MAX_COLUMNS = 10_000
#: Data rows that decide the dialect (DuckDB's sniffer) and the number format.
SAMPLE_ROWS = 2_000
#: Longest piece of a user's file quoted in a message.
QUOTE_CHARS = 60

_PARQUET_SUFFIXES = (".parquet", ".pq")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".geojson")
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_NOT_TABLES = (  # magic bytes of files people mistake for a CSV export
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one); save the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook; save the sheet as CSV"),
    (b"SQLite format 3\x00", "an SQLite database; export the table as CSV or Parquet"),
    (b"BZh", "bzip2-compressed; decompress it or compress it with gzip instead"),
    (b"\xfd7zXZ\x00", "xz-compressed; decompress it or compress it with gzip instead"),
    (b"%PDF", "a PDF document, not a table"),
)
# an object's first key or an array's first value; not a CSV header such as "[id],[balance]"
_JSON_START = re.compile(r'[\ufeff\s]*(\{\s*["}]|\[\s*[\[{"\]\d.-])')
_SEPARATOR_NOTES = {";": "semicolons", "\t": "tabs", "|": "pipes (|)"}


class FileSource(Source):
    """A CSV or Parquet file (or a pipe carrying one).

    Parameters
    ----------
    path : str or Path
        ``.parquet``/``.pq`` (or any file starting with Parquet's magic bytes) is read
        as Parquet; anything else as CSV text, gzip-compressed or not. A pipe
        (``/dev/stdin``, a FIFO) is read into memory once.
    name : str, optional
        How messages call the file (default: the path as given).

    Notes
    -----
    Nothing is read until a method needs it; the first call refuses, with a
    :class:`~custseg.errors.DataError`, a file that is missing, a folder, empty,
    binary, JSON, or too wide to be a portfolio.
    """

    def __init__(self, path: str | os.PathLike, *, name: str | None = None):
        self.path = Path(path)
        self.label = name or str(path)
        self.notes = []
        self._reader: _CsvReader | _ParquetReader | None = None

    def columns(self) -> list[str]:
        return list(self._open().header)

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return self._open().read(columns)

    def batches(self, columns: Sequence[str] | None = None, rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
        return self._open().batches(columns, rows)

    def arrow_batches(self, columns: Sequence[str], rows: int = BATCH_ROWS, *, threads: bool = True):
        """A Parquet file's ``columns`` as pyarrow record batches of at most ``rows`` rows (no pandas on the
        way); ``None`` for a CSV file, which :meth:`batches` reads. ``threads``: pyarrow decodes the
        columns in its own threads (when the caller's threads keep the cores busy, that costs more
        CPU time than it saves)."""
        reader = self._open()
        if not isinstance(reader, _ParquetReader):
            return None
        return reader.arrow_batches(columns, rows, threads=threads)

    def count(self) -> int:
        reader = self._open()
        if isinstance(reader, _ParquetReader):
            return reader.count()
        return super().count()

    def _open(self) -> _CsvReader | _ParquetReader:
        if self._reader is None:
            self._reader = _open_file(self.path, self.label, self.notes)
        return self._reader


def _open_file(path: Path, label: str, notes: list[str]) -> _CsvReader | _ParquetReader:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DataError(f"{label}: no such file.") from None
    except OSError as exc:
        raise DataError(f"{label} cannot be opened ({exc.strerror}).") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{label} is a folder; give the path of a CSV or Parquet file.")
    data = None
    if not stat.S_ISREG(info.st_mode):
        data = _read_stream(path, label)
        notes.append(f"read from a pipe ({len(data):,} bytes)")
    elif info.st_size == 0:
        raise DataError(f"{label} is empty (0 bytes): there is no header and no customer to segment.")
    start = data[:16] if data is not None else _first_bytes(path, 16)
    if path.suffix.lower() in _PARQUET_SUFFIXES or start.startswith(_PARQUET_MAGIC):
        return _ParquetReader(path, label, data)
    return _CsvReader.inspect(path, label, data, notes)


def _read_stream(path: Path, label: str) -> bytes:
    """All bytes of a pipe or device, refusing a terminal (it would wait for typing)."""
    with open(path, "rb") as fh:
        if os.isatty(fh.fileno()):
            raise DataError(f"{label} is a terminal, not a file: pipe a CSV into it (custseg run /dev/stdin "
                            "< cards.csv) or give the file's path.")
        data = fh.read()
    if not data:
        raise DataError(f"{label} delivered no data (it is a pipe or a device, not a file); check the command "
                        "that feeds it, or give the file's path instead.")
    return data


def _first_bytes(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _quote(text: str) -> str:
    text = text.replace("\r", "").replace("\n", " ")
    return repr(text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…")


# --------------------------------------------------------------------------- Parquet


class _ParquetReader:
    def __init__(self, path: Path, label: str, data: bytes | None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._label = label
        try:
            self._file = pq.ParquetFile(pa.BufferReader(data) if data is not None else path)
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            raise DataError(f"{label} is not a readable Parquet file ({str(exc)[:200]}).") from None
        # a pandas index stored as a column comes back as the index, not as data
        index = {c for c in (self._file.schema_arrow.pandas_metadata or {}).get("index_columns", [])
                 if isinstance(c, str)}
        self.header = [n for n in self._file.schema_arrow.names if n not in index]

    def read(self, columns: Sequence[str] | None) -> pd.DataFrame:
        return self._file.read(columns=self._known(columns)).to_pandas()

    def batches(self, columns: Sequence[str] | None, rows: int) -> Iterator[pd.DataFrame]:
        for batch in self.arrow_batches(columns, rows):
            yield batch.to_pandas()

    def arrow_batches(self, columns: Sequence[str] | None, rows: int, *, threads: bool = True):
        return self._file.iter_batches(batch_size=rows, columns=self._known(columns), use_threads=threads)

    def _known(self, columns: Sequence[str] | None) -> list[str]:
        if columns is None:
            return self.header
        unknown = [c for c in columns if c not in self.header]
        if unknown:
            raise DataError(f"{self._label} has no column {', '.join(map(_quote, unknown))}.")
        return list(columns)

    def count(self) -> int:
        return self._file.metadata.num_rows


# --------------------------------------------------------------------------- CSV


@dataclass
class _Dialect:
    """How pandas must read a CSV file; only non-defaults reach ``read_csv``."""

    encoding: str
    compression: str | None
    sep: str
    quotechar: str
    skiprows: int
    decimal: str = "."
    thousands: str | None = None

    def read_csv_kwargs(self) -> dict:
        kwargs = {"sep": self.sep, "encoding": self.encoding, "compression": self.compression}
        if self.quotechar != '"':
            kwargs["quotechar"] = self.quotechar
        if self.skiprows:
            kwargs["skiprows"] = self.skiprows
        if self.decimal != ".":
            kwargs["decimal"] = self.decimal
        if self.thousands:
            kwargs["thousands"] = self.thousands
        return kwargs


class _CsvReader:
    def __init__(self, path: Path, label: str, data: bytes | None, dialect: _Dialect, header: list[str]):
        self._path, self._label, self._data = path, label, data
        self.dialect = dialect
        self.header = header
        self._short: list[tuple[int, int]] | None = None  # (row, fields) of rows shorter than the header

    @classmethod
    def inspect(cls, path: Path, label: str, data: bytes | None, notes: list[str]) -> _CsvReader:
        raw = data[:HEAD_BYTES] if data is not None else _first_bytes(path, HEAD_BYTES)
        compression = None
        if raw.startswith(_GZIP_MAGIC):
            compression = "gzip"
            notes.append("the file is gzip-compressed")
            raw = _gunzip_head(path, label, data)
        if not raw:
            raise DataError(f"{label} is empty (no bytes after decompression): there is no header and "
                            "no customer to segment.")
        whole = len(raw) < HEAD_BYTES
        text, encoding = _decode(raw, label, notes, whole)
        _refuse_non_tables(path, text, label)
        if not whole:
            text = text[:text.rfind("\n") + 1] or text
        lines = text.splitlines()
        sep, quotechar, skiprows = _sniff(lines[:SAMPLE_ROWS], label)
        skipped = lines[:skiprows]
        _note_skipped(skipped, notes)
        if sep in _SEPARATOR_NOTES:
            notes.append(f"columns are separated by {_SEPARATOR_NOTES[sep]}")
        records = csv.reader(io.StringIO("\n".join(lines[skiprows:skiprows + SAMPLE_ROWS + 1])),
                             delimiter=sep, quotechar=quotechar, skipinitialspace=True)
        header = [h if h != "" else f"Unnamed: {i}" for i, h in enumerate(next(records, []))]
        decimal, thousands = _number_format(records, notes)
        dialect = _Dialect(encoding, compression, sep, quotechar, skiprows, decimal, thousands)
        return cls(path, label, data, dialect, header)

    # Rows are parsed whole and the columns picked afterwards: with ``usecols`` pandas
    # silently drops the extra fields of a row that has more than the header.

    def read(self, columns: Sequence[str] | None) -> pd.DataFrame:
        positions = self._positions(columns)
        with self._errors():
            frame = self._read_csv()
            self._refuse_short_rows(frame)
            return self._pick(frame, positions)

    def batches(self, columns: Sequence[str] | None, rows: int) -> Iterator[pd.DataFrame]:
        positions = self._positions(columns)
        with self._errors(), self._read_csv(chunksize=rows) as chunks:
            for chunk in chunks:
                self._refuse_short_rows(chunk)
                yield self._pick(chunk, positions).reset_index(drop=True)

    def _refuse_short_rows(self, frame: pd.DataFrame) -> None:
        """Refuse rows with fewer fields than the header: pandas would pad them with missing values,
        which validation would then impute, although the row's values may have shifted."""
        if self._short is None:
            if frame.shape[1] == 0 or not frame.iloc[:, -1].isna().any():
                return  # a short row always lacks the last field; nothing to look for
            self._short = _short_rows(self._text(), self.dialect, len(self.header))
        if self._short:
            rows = self._short
            shown = ", ".join(f"row {row} has {fields}" for row, fields in rows[:5])
            more = f" (and {len(rows) - 5} more rows)" if len(rows) > 5 else ""
            raise DataError(f"{self._label}: {len(rows)} row(s) have fewer fields than the {len(self.header)} "
                            f"the header names: {shown}{more} (rows counted from 1 after the header). Their "
                            "values may have shifted into the wrong columns; complete or remove these rows "
                            "and run again.")

    def _text(self) -> io.TextIOBase:
        raw = io.BytesIO(self._data) if self._data is not None else open(self._path, "rb")
        if self.dialect.compression == "gzip":
            raw = gzip.GzipFile(fileobj=raw, mode="rb")
        return io.TextIOWrapper(raw, encoding=self.dialect.encoding, newline="")

    def _positions(self, columns: Sequence[str] | None) -> list[int]:
        if columns is None:
            return list(range(len(self.header)))
        first = {}
        for i, h in enumerate(self.header):
            first.setdefault(h, i)
        unknown = [c for c in columns if c not in first]
        if unknown:
            raise DataError(f"{self._label} has no column {', '.join(map(_quote, unknown))}.")
        return [first[c] for c in columns]

    def _read_csv(self, chunksize: int | None = None):
        # ids are read as text so leading zeros survive and integer ids need no special case
        ids = {h: "string" for h in self.header if schema.canonical_name(h) == schema.ID}
        where = io.BytesIO(self._data) if self._data is not None else self._path
        return pd.read_csv(where, dtype=ids or None, low_memory=False, skipinitialspace=True,
                           chunksize=chunksize, **self.dialect.read_csv_kwargs())

    @contextlib.contextmanager
    def _errors(self):
        try:
            yield
        except UnicodeDecodeError as exc:
            encoding = {"utf-8-sig": "UTF-8", "cp1252": "Windows-1252"}.get(self.dialect.encoding, "UTF-16")
            raise DataError(f"{self._label} is not {encoding} text throughout (a byte "
                            f"at position {exc.start} of a later block cannot be decoded); save it as UTF-8.") from None
        except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(f"{self._label} is gzip-compressed but cannot be decompressed ({exc}).") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{self._label} holds no table (no header line).") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{self._label} is not a well-formed table separated by "
                            f"{_SEPARATOR_NOTES.get(self.dialect.sep, 'commas')}: {str(exc).strip()[:200]}") from None

    def _pick(self, frame: pd.DataFrame, positions: list[int]) -> pd.DataFrame:
        """The columns at ``positions``, named as the file spells them (pandas renames repeats and blanks)."""
        if frame.shape[1] != len(self.header):
            raise DataError(f"{self._label}: its header reads as {len(self.header)} columns but pandas finds "
                            f"{frame.shape[1]}; check the quotes in the header line.")
        if not isinstance(frame.index, pd.RangeIndex):
            raise DataError(f"{self._label}: the rows have more fields than the header names "
                            f"({len(self.header)}); pandas would take the first field as a row label. "
                            "Remove the delimiter at the end of each row, or name every column in the header.")
        picked = frame.iloc[:, positions]
        picked.columns = [self.header[i] for i in positions]
        return picked


def _short_rows(text: io.TextIOBase, dialect: _Dialect, width: int) -> list[tuple[int, int]]:
    """(row, fields) of each data row with fewer than ``width`` fields; rows counted as pandas counts
    them (from 1 after the header, blank lines skipped)."""
    short = []
    with text:
        for _ in range(dialect.skiprows):
            text.readline()
        records = csv.reader(text, delimiter=dialect.sep, quotechar=dialect.quotechar, skipinitialspace=True)
        try:
            next(records, None)
            row = 0
            for record in records:
                if not record:
                    continue
                row += 1
                if len(record) < width:
                    short.append((row, len(record)))
        except csv.Error:
            pass  # what the csv module cannot parse, pandas parsed; its rows were not short
    return short


def _gunzip_head(path: Path, label: str, data: bytes | None) -> bytes:
    try:
        with gzip.open(io.BytesIO(data) if data is not None else path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{label} is gzip-compressed but cannot be decompressed ({exc}).") from None


def _decode(raw: bytes, label: str, notes: list[str], whole: bool) -> tuple[str, str]:
    """The text of the head and the encoding pandas must read the whole file with."""
    magic = next((what for m, what in _NOT_TABLES if raw.startswith(m)), None)
    if magic:
        raise DataError(f"{label} is {magic}.")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(raw):
        encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            "utf-16-le" if raw[1:2] == b"\x00" else "utf-16-be")
        text = raw[:len(raw) - len(raw) % 2].decode(encoding, errors="replace")
        # a block cut inside a character leaves one replacement at its end; text leaves none
        if not _mostly_ascii(text) or "\ufffd" in (text if whole else text[:-1]):
            raise DataError(f"{label} starts like UTF-16 text but does not decode as UTF-16; "
                            "save it as UTF-8 CSV or as Parquet.")
        notes.append("the file is UTF-16 text" + ("" if encoding == "utf-16" else " without a byte-order mark"))
        return text, encoding
    if b"\x00" in raw:
        raise DataError(f"{label} is a binary file, not a CSV text table; export the portfolio as CSV or Parquet.")
    if raw.startswith(b"\xef\xbb\xbf"):
        notes.append("the file starts with a UTF-8 byte-order mark (ignored)")
    body = raw if whole else raw[:raw.rfind(b"\n") + 1] or raw
    try:
        return body.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        bad = exc.start
    try:
        text = body.decode("cp1252")
    except UnicodeDecodeError:
        raise DataError(f"{label} is neither UTF-8 nor Windows-1252 text (byte {bad} cannot be decoded); "
                        "save it as UTF-8 CSV or as Parquet.") from None
    notes.append(f"the file is not UTF-8 (byte {bad} is not); it was read as Windows-1252 (cp1252) text")
    return text, "cp1252"


def _utf16_without_bom(raw: bytes) -> bool:
    """ASCII-heavy UTF-16 puts a zero in every other byte; nothing else does."""
    head = raw[:4096]
    if len(head) < 4 or b"\x00" not in head:
        return False
    odd, even = head[1::2], head[0::2]
    # zeros in one half of the bytes only: in both, it is a binary file
    return (odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even) or
            even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd))


def _mostly_ascii(text: str) -> bool:
    """A CSV's headers, delimiters and numbers are printable ASCII whatever its encoding."""
    head = text[:4096]
    return "\x00" not in head and sum(" " <= c < "\x7f" or c in "\t\r\n" for c in head) > 0.5 * len(head)


def _refuse_non_tables(path: Path, text: str, label: str) -> None:
    if path.suffix.lower() in _JSON_SUFFIXES or _JSON_START.match(text):
        raise DataError(f"{label} is JSON, not a CSV table; export the portfolio as CSV or Parquet, or read it "
                        "with pandas.read_json and pass the DataFrame.")
    if not text.strip():
        raise DataError(f"{label} has no header line; the first line must name the columns.")
    first = text.lstrip("\r\n").split("\n", 1)[0]
    unbroken = not any(c in text for c in "\r\n") and len(text) >= HEAD_BYTES // 2
    widest = max(first.count(d) for d in (",", ";", "\t", "|")) + 1
    if widest > MAX_COLUMNS:
        raise DataError(f"{label}: the first line has {'at least ' if unbroken else 'about '}{widest:,} columns "
                        f"(it starts {_quote(first)}); a portfolio has one column per measure "
                        f"({len(schema.COLUMNS)} in the schema). Check that this is the right file and that "
                        "each customer is on its own line.")
    if unbroken:
        raise DataError(f"{label} has no line break in its first {len(text) // 1024:,} KB (it starts "
                        f"{_quote(first)}); a CSV has one customer per line.")


def _sniff(lines: list[str], label: str) -> tuple[str, str, int]:
    """Delimiter, quote character and lines above the header, from DuckDB's CSV sniffer.

    A ragged table (a row with more fields than the header) can make the sniffer
    settle on a delimiter its header does not contain, i.e. one wide column; it is
    then asked again allowing ragged rows, so that the parser names the bad line.
    """
    import duckdb

    declared = re.fullmatch(r"\s*sep=(.)\s*", lines[0])
    with tempfile.TemporaryDirectory(prefix="custseg-sniff-") as tmp:
        sample = Path(tmp) / "sample.csv"
        sample.write_text("\n".join(lines).lstrip("\ufeff") + "\n", encoding="utf-8")
        con = duckdb.connect()
        try:
            try:
                con.execute("SET enable_progress_bar = false")
            except duckdb.Error:
                pass  # in Jupyter without ipywidgets DuckDB refuses the setting; a sniff is too short to show a bar
            if declared and declared.group(1) != "'":
                return _ask_sniffer(con, sample, f", delim = '{declared.group(1)}', skip = 1")
            sep, quote, skip = _ask_sniffer(con, sample, "")
            header = lines[skip] if skip < len(lines) else ""
            if sep not in header:
                ragged = _ask_sniffer(con, sample, ", null_padding = true")
                if ragged[0] in header:
                    return ragged
            return sep, quote, skip
        except duckdb.Error as exc:
            raise DataError(f"{label} cannot be read as a table (the CSV sniffer says: "
                            f"{str(exc).splitlines()[0][:200]}); its first line is {_quote(lines[0])}.") from None
        finally:
            con.close()


def _ask_sniffer(con, sample: Path, options: str) -> tuple[str, str, int]:
    sep, quote, skip = con.execute(f"SELECT Delimiter, Quote, SkipRows FROM sniff_csv(?, sample_size = -1{options})",
                                   [str(sample)]).fetchone()
    return sep if len(sep) == 1 else ",", quote if len(quote) == 1 else '"', int(skip)


def _note_skipped(skipped: list[str], notes: list[str]) -> None:
    for line in skipped:
        if re.fullmatch(r"\s*sep=.\s*", line):
            notes.append(f"the first line {_quote(line.strip())} (a spreadsheet's delimiter hint) was skipped")
        elif line.strip():
            notes.append(f"a line above the header was skipped: {_quote(line.strip())}")


_NUMBER_SHAPES = re.compile(
    r"[-+]?(?:(?P<one_group>[1-9]\d{0,2}[.,]\d{3})"  # 1.234 / 1,234: a group or three decimals
    r"|(?P<dot_groups>[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?)"
    r"|(?P<comma_groups>[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?)"
    r"|(?P<comma_decimal>\d*,\d+)"
    r"|(?P<dot_decimal>\d*\.\d+))")


def _number_format(records, notes: list[str]) -> tuple[str, str | None]:
    """Decimal mark and thousands separator, from the values of the sampled rows.

    A value decides only when it can be read one way: ``0,5`` or ``1.234,56`` mean a
    decimal comma, ``0.5`` or ``1,234.56`` a decimal point; ``1,234`` alone could be
    either. Mixed evidence keeps pandas' defaults, so validation names the odd values.
    """
    shapes = Counter()
    for row in records:
        for value in row:
            match = _NUMBER_SHAPES.fullmatch(value.strip())
            if match:
                shape = match.lastgroup
                shapes[shape + ("_dot" if shape == "one_group" and "." in value else "")] += 1
    comma = shapes["dot_groups"] + shapes["comma_decimal"]
    point = shapes["comma_groups"] + shapes["dot_decimal"]
    dot_groups, comma_groups = shapes["dot_groups"] > 0, shapes["comma_groups"] > 0
    one_dot, one_comma = shapes["one_group_dot"] > 0, shapes["one_group"] > 0
    if comma and not point:
        grouped = dot_groups or one_dot
        notes.append("numbers use a decimal comma" + (" and dots between thousands (1.234,56)" if grouped else " (0,5)"))
        return ",", "." if grouped else None
    if not comma and (comma_groups or one_comma and point):
        notes.append("numbers carry commas between thousands (1,234.56)")
        return ".", ","
    return ".", None
