import gzip
import os
import threading

import numpy as np
import pandas as pd
import pytest

from custseg import schema
from custseg.errors import DataError
from custseg.sources import FileSource, FrameSource, Source, open_source

from helpers import tiny_portfolio


def _csv(tmp_path, frame, name="t.csv", **kwargs):
    path = tmp_path / name
    frame.to_csv(path, index=False, **kwargs)
    return path


def test_csv_columns_read_projection_and_order(tmp_path):
    frame = tiny_portfolio(20)
    src = FileSource(_csv(tmp_path, frame))
    assert src.columns() == list(frame.columns)
    part = src.read(["TENURE", "BALANCE"])
    assert list(part.columns) == ["TENURE", "BALANCE"]
    pd.testing.assert_series_equal(part["BALANCE"], frame["BALANCE"])
    assert src.read()[schema.ID].dtype == "string"


def test_csv_batches_and_count(tmp_path):
    frame = tiny_portfolio(25)
    src = FileSource(_csv(tmp_path, frame))
    sizes = [len(b) for b in src.batches(["BALANCE"], rows=10)]
    assert sizes == [10, 10, 5]
    assert src.count() == 25
    glued = pd.concat(src.batches([schema.ID, "PAYMENTS"], rows=7), ignore_index=True)
    assert glued[schema.ID].tolist() == frame[schema.ID].tolist()


def test_sample_is_deterministic_and_the_same_rows_from_a_file_or_a_frame(tmp_path):
    frame = tiny_portfolio(40)
    from_file = FileSource(_csv(tmp_path, frame))
    first = from_file.sample(9, seed=3, columns=[schema.ID])
    assert first.equals(from_file.sample(9, seed=3, columns=[schema.ID]))
    assert len(first) == 9 and first[schema.ID].is_unique
    assert first[schema.ID].tolist() == FrameSource(frame).sample(9, seed=3, columns=[schema.ID])[schema.ID].tolist()
    assert not first.equals(from_file.sample(9, seed=4, columns=[schema.ID]))
    assert len(from_file.sample(100, seed=0)) == 40


def test_parquet_projection_batches_count_and_sample(tmp_path):
    frame = tiny_portfolio(30)
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, row_group_size=8)
    src = FileSource(path)
    assert src.columns() == list(frame.columns)
    assert list(src.read(["PAYMENTS"]).columns) == ["PAYMENTS"]
    assert [len(b) for b in src.batches(["BALANCE"], rows=12)] == [12, 12, 6]
    assert src.count() == 30
    sample = src.sample(5, seed=1, columns=[schema.ID, "BALANCE"])
    assert sample.equals(src.sample(5, seed=1, columns=[schema.ID, "BALANCE"]))
    assert set(sample[schema.ID]) <= set(frame[schema.ID])


def test_parquet_written_with_an_index_does_not_list_it_as_a_column(tmp_path):
    frame = tiny_portfolio(6).set_index(schema.ID)
    path = tmp_path / "i.parquet"
    frame.to_parquet(path)
    assert FileSource(path).columns() == list(frame.columns)


def test_parquet_under_a_csv_name_is_read_as_parquet(tmp_path):
    path = tmp_path / "really.csv"
    tiny_portfolio(5).to_parquet(path)
    assert FileSource(path).count() == 5


def test_frame_source_label_copy_and_non_text_labels():
    frame = pd.DataFrame({0: [1.0, 2.0], "b": ["x", "y"]})
    src = FrameSource(frame)
    assert src.label == "<DataFrame>" and src.path is None and src.count() == 2
    assert src.columns() == ["0", "b"]
    got = src.read(["0"])
    got.iloc[0, 0] = 99.0
    assert frame.iloc[0, 0] == 1.0
    assert [len(b) for b in src.batches(rows=1)] == [1, 1]
    assert FrameSource(frame, name="demo").label == "demo"


def test_open_source_dispatch(tmp_path):
    frame = tiny_portfolio(3)
    src = FrameSource(frame)
    assert open_source(src) is src
    assert isinstance(open_source(frame, name="x"), FrameSource)
    assert isinstance(open_source(tmp_path / "a.csv"), FileSource)
    assert open_source(str(tmp_path / "a.csv"), name="cards").label == "cards"
    with pytest.raises(TypeError):
        open_source(42)


def test_empty_columns_default_streams_batches():
    frame = pd.DataFrame({"a": [None, None, None], "b": ["", " ", None], "c": [np.nan, 1.0, np.nan],
                          "d": ["", "x", ""]})
    assert FrameSource(frame).empty_columns(["a", "b", "c", "d"]) == ["a", "b"]
    assert FrameSource(frame).empty_columns([]) == []


# ------------------------------------------------------------------ dialects


def test_tab_pipe_and_quoted_fields(tmp_path):
    frame = tiny_portfolio(12)
    frame.insert(1, "note", ["said \"hi\", left; then | came back"] * 12)
    for sep, word in (("\t", "tabs"), ("|", "pipes")):
        src = FileSource(_csv(tmp_path, frame, f"t{ord(sep)}.csv", sep=sep))
        got = src.read()
        assert got["note"].iloc[0] == frame["note"].iloc[0]
        pd.testing.assert_series_equal(got["PAYMENTS"], frame["PAYMENTS"])
        assert any(word in n for n in src.notes)


def test_european_decimal_comma_with_thousands_dots(tmp_path):
    frame = tiny_portfolio(15)
    amounts = (frame["CREDIT_LIMIT"] + frame["BALANCE"]).round(2)

    def european(x):
        return f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")

    text = "id;amount;freq\n" + "".join(f"{i};{european(a)};{european(f)}\n"
                                        for i, (a, f) in enumerate(zip(amounts, frame["PURCHASES_FREQUENCY"])))
    path = tmp_path / "eu.csv"
    path.write_text(text)
    src = FileSource(path)
    got = src.read()
    assert any("1.234,56" in n for n in src.notes)
    np.testing.assert_allclose(got["amount"], amounts, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["freq"], frame["PURCHASES_FREQUENCY"].round(2), atol=1e-9)


def test_semicolon_decimal_comma_without_thousands(tmp_path):
    frame = tiny_portfolio(9)
    src = FileSource(_csv(tmp_path, frame, sep=";", decimal=","))
    np.testing.assert_array_equal(src.read(["BALANCE"])["BALANCE"], frame["BALANCE"])
    assert any("decimal comma" in n for n in src.notes)


def test_utf16_with_and_without_bom_and_gzip_are_text(tmp_path):
    frame = tiny_portfolio(10)
    text = frame.to_csv(index=False)
    (tmp_path / "a.csv").write_bytes(text.encode("utf-16"))
    (tmp_path / "b.csv").write_bytes(text.encode("utf-16-le"))
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "d.csv").write_bytes(gzip.compress(text.encode("utf-16")))
    for name, words in (("a.csv", ["UTF-16"]), ("b.csv", ["without a byte-order mark"]), ("c.csv.gz", ["gzip"]),
                        ("d.csv", ["gzip", "UTF-16"])):
        src = FileSource(tmp_path / name)
        pd.testing.assert_series_equal(src.read()["BALANCE"], frame["BALANCE"])
        assert src.read()[schema.ID].tolist() == frame[schema.ID].tolist()
        for word in words:
            assert any(word in n for n in src.notes), (name, src.notes)


def test_cp1252_is_read_and_stated(tmp_path):
    frame = tiny_portfolio(4)
    frame.insert(1, "Name", ["Müller", "Øre €", "Zoë", "Ana"])
    path = tmp_path / "w.csv"
    path.write_bytes(frame.to_csv(index=False).encode("cp1252"))
    src = FileSource(path)
    assert src.read(["Name"])["Name"].tolist() == ["Müller", "Øre €", "Zoë", "Ana"]
    assert any("Windows-1252" in n for n in src.notes)


def test_excel_sep_line_and_title_line_are_skipped_and_noted(tmp_path):
    frame = tiny_portfolio(8)
    excel = tmp_path / "excel.csv"
    excel.write_text("sep=;\n" + frame.to_csv(index=False, sep=";"))
    titled = tmp_path / "titled.csv"
    titled.write_text("Card portfolio, export of 31 January 2024\n" + frame.to_csv(index=False))
    for path, word in ((excel, "sep=;"), (titled, "Card portfolio")):
        src = FileSource(path)
        assert src.columns() == list(frame.columns)
        assert src.count() == 8
        assert any(word in n for n in src.notes)


def test_empty_header_cells_take_pandas_names(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("CUST_ID,BALANCE,\nC1,1.5,\nC2,2.5,\n")
    src = FileSource(path)
    assert src.columns() == [schema.ID, "BALANCE", "Unnamed: 2"]
    assert src.empty_columns(["Unnamed: 2"]) == ["Unnamed: 2"]


def test_a_fifo_is_read_like_a_file(tmp_path):
    frame = tiny_portfolio(11)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    payload = frame.to_csv(index=False).encode()

    def feed():
        with open(fifo, "wb") as fh:
            fh.write(payload)

    writer = threading.Thread(target=feed)
    writer.start()
    src = FileSource(fifo)
    got = src.read()
    writer.join()
    assert len(got) == 11 and src.count() == 11  # read twice: the pipe was kept
    assert any("pipe" in n for n in src.notes)


def test_an_empty_pipe_says_so(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: open(fifo, "wb").close())
    writer.start()
    with pytest.raises(DataError) as err:
        FileSource(fifo).columns()
    writer.join()
    assert "no data" in str(err.value) and "0 bytes" not in str(err.value)


def test_a_terminal_is_refused_instead_of_waiting(tmp_path):
    leader, follower = os.openpty()
    try:
        with pytest.raises(DataError, match="terminal"):
            FileSource(f"/proc/self/fd/{follower}").columns()
    finally:
        os.close(leader)
        os.close(follower)


# ------------------------------------------------------------------ messages


@pytest.mark.parametrize("name, content, words", [
    ("a.json", b'[{"CUST_ID": "C1", "BALANCE": 1.0}]' * 8000, "JSON"),
    ("a.csv", b'{"rows": [' + b'{"CUST_ID": "C1", "BALANCE": 1.0}, ' * 8000 + b"]}", "JSON"),
    ("w.csv", (",".join(f"c{i}" for i in range(200_000)) + "\n" + "1," * 199_999 + "1\n").encode(), "columns"),
    ("v.csv", ("a;" * 199_999 + "a\n" + "1;" * 199_999 + "1\n").encode(), "about 200,000 columns"),
    ("x.xlsx", b"PK\x03\x04" + b"\x00" * 100, "Excel"),
    ("b.csv", bytes(range(256)) * 4, "binary"),
    ("u.csv", b"\xff\xfe\xfa\xfb\xfc\xfd\xfe\xd8\xff\xdb", "UTF-16"),
    ("n.csv", b"\x81\x8d\x8f\x90 not text\n1,2\n", "UTF-8"),
    ("g.csv.gz", b"\x1f\x8b\x08\x00broken", "gzip"),
])
def test_unusable_files_get_one_short_paragraph(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        FileSource(path).columns()
    message = str(err.value)
    assert words in message and str(path) in message
    assert len(message) < 400 and "\n" not in message


def test_a_source_subclass_needs_only_columns_and_read():
    class Listed(Source):
        label = "listed"

        def __init__(self, frame):
            self.frame, self.notes = frame, []

        def columns(self):
            return list(self.frame.columns)

        def read(self, columns=None):
            return self.frame[list(columns) if columns is not None else self.frame.columns].copy()

    src = Listed(tiny_portfolio(10))
    assert src.count() == 10
    assert [len(b) for b in src.batches(rows=4)] == [4, 4, 2]
    assert src.sample(3, seed=0).equals(src.sample(3, seed=0))


@pytest.mark.parametrize("text, words", [
    ("CUST_ID,BALANCE\nC1,1.5\nC2,2.5,7,8\nC3,1\n", "line 3"),
    ("CUST_ID,BALANCE\nC1,1.5,\nC2,2.5,\n", "more fields than the header"),
])
def test_rows_wider_than_the_header_are_refused_not_cut(tmp_path, text, words):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=words):
        FileSource(path).read(["CUST_ID", "BALANCE"])


def test_asking_for_a_column_the_file_lacks(tmp_path):
    src = FileSource(_csv(tmp_path, tiny_portfolio(3)))
    with pytest.raises(DataError, match="no column 'NOPE'"):
        src.read(["NOPE"])


def test_parquet_asked_for_a_column_it_lacks(tmp_path):
    path = tmp_path / "p.parquet"
    tiny_portfolio(3).to_parquet(path)
    with pytest.raises(DataError, match="no column 'NOPE'"):
        FileSource(path).read(["BALANCE", "NOPE"])


def test_bracketed_headers_are_not_mistaken_for_json(tmp_path):
    path = tmp_path / "sqlserver.csv"
    path.write_text("[CUST_ID],[BALANCE]\nC1,1.5\n")
    assert FileSource(path).columns() == ["[CUST_ID]", "[BALANCE]"]


def test_utf8_that_breaks_after_the_sampled_block_is_named(tmp_path, monkeypatch):
    from custseg.sources import files

    monkeypatch.setattr(files, "HEAD_BYTES", 64)
    path = tmp_path / "late.csv"
    path.write_bytes(b"CUST_ID,BALANCE\n" + b"C1,1.5\n" * 20 + b"C\xe9,2.5\n")
    with pytest.raises(DataError, match="not UTF-8 text throughout"):
        FileSource(path).read()


@pytest.mark.parametrize("ids", [[" C1", "C2 ", "", "C4", "C5", "C6"], [1, 2, 3, 4, 5, 6], [1.0, 2.0, None, 4.0, 5.0, 6.0]])
def test_column_batches_give_what_load_reads(tmp_path, ids):
    from custseg.load import load
    from custseg.sources.columns import column_batches

    frame = tiny_portfolio(6).assign(CUST_ID=ids, TENURE=[12, 6, None, 12, 3, 12])
    parquet = tmp_path / "p.parquet"
    frame.to_parquet(parquet, index=False)
    assert FileSource(_csv(tmp_path, frame)).arrow_batches([schema.ID], rows=4) is None  # CSV goes through pandas
    names = [schema.ID, "TENURE", "BALANCE"]
    for src in (FileSource(parquet), FileSource(_csv(tmp_path, frame))):
        batches = list(column_batches(src, names, names, rows=4))
        assert [len(b[0]) for b in batches] == [4, 2]
        loaded = load(src)
        assert [i for b in batches for i in b[0].to_pylist()] == \
            loaded.frame[schema.ID].astype(object).where(loaded.frame[schema.ID].notna(), None).tolist()
        assert batches[-1][2] == ("customer ids are integers" in loaded.notes)
        unthreaded = list(column_batches(src, names, names, rows=4, threads=False))
        assert all(a[0].equals(b[0]) and a[2] == b[2] and all(np.array_equal(a[1][c], b[1][c], equal_nan=True)
                                                              for c in a[1]) for a, b in zip(batches, unthreaded))
        for c in ("TENURE", "BALANCE"):
            assert all(b[1][c].dtype == np.float64 for b in batches)
            np.testing.assert_array_equal(np.concatenate([b[1][c] for b in batches]), loaded.frame[c].to_numpy())
