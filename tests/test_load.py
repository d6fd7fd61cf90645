import gzip
import re

import numpy as np
import pandas as pd
import pytest

from custseg import schema
from custseg.errors import DataError
from custseg.load import load
from custseg.quality import validate
from custseg.sources import FrameSource

from helpers import tiny_portfolio


def test_real_file_loads_with_canonical_columns(real_data_path):
    p = load(real_data_path)
    assert len(p) == 8950
    assert list(p.frame.columns) == [c.name for c in schema.COLUMNS]
    assert p.renamed == {} and p.ignored == []
    assert p.frame[schema.ID].iloc[0] == "C10001"


def test_messy_copy_semicolon_bom_lowercase_renames_junk_and_integer_ids(tmp_path):
    frame = tiny_portfolio(30)
    frame.columns = [c.lower() for c in frame.columns]
    frame = frame.rename(columns={"minimum_payments": "minimum_payment", "cust_id": "customer_id",
                                  "installments_purchases": "installment_purchases"})
    frame["customer_id"] = range(1, 31)
    frame["Unnamed: 18"] = None
    path = tmp_path / "messy.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, sep=";").encode())
    p = load(path)
    assert len(p) == 30
    assert p.renamed["minimum_payment"] == "MINIMUM_PAYMENTS"
    assert p.renamed["customer_id"] == schema.ID
    assert p.renamed["installment_purchases"] == "INSTALLMENTS_PURCHASES"
    assert p.ignored == ["Unnamed: 18"] and p.empty_ignored == ["Unnamed: 18"]
    assert p.frame[schema.ID].tolist()[:3] == ["1", "2", "3"]
    assert any("semicolon" in n for n in p.notes)
    assert any("byte-order mark" in n for n in p.notes)
    assert any("integers" in n for n in p.notes)


def test_leading_zero_ids_survive(tmp_path):
    frame = tiny_portfolio(6)
    frame[schema.ID] = ["007", "008", "009", "010", "011", "012"]
    path = tmp_path / "z.csv"
    frame.to_csv(path, index=False)
    assert load(path).frame[schema.ID].tolist()[0] == "007"


def test_parquet(tmp_path):
    frame = tiny_portfolio(12)
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    p = load(path)
    assert len(p) == 12
    pd.testing.assert_series_equal(p.frame["BALANCE"], frame["BALANCE"], check_names=False)


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"\x00\x01\x02PK\x03\x04binary", "binary"),
    (b"\xff\xfe\xfa\xfbnot utf8 at all\n1,2\n", "UTF-8"),
])
def test_unreadable_files_are_refused_with_the_file_named(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        load(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="folder"):
        load(tmp_path)


def test_two_headers_for_one_column_are_refused(tmp_path):
    frame = tiny_portfolio(5)
    frame["minimum_payment"] = 1.0
    path = tmp_path / "dup.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="both mean MINIMUM_PAYMENTS"):
        load(path)


def test_broken_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 definitely not parquet")
    with pytest.raises(DataError, match="Parquet"):
        load(path)


def test_real_file_frame_is_what_pandas_reads(real_data_path):
    p = load(real_data_path)
    plain = pd.read_csv(real_data_path)
    numeric = [c for c in plain.columns if c != schema.ID]
    pd.testing.assert_frame_equal(p.frame[numeric], plain[numeric], check_exact=True)
    assert p.frame[numeric].to_numpy().tobytes() == plain[numeric].to_numpy().tobytes()
    assert p.frame[schema.ID].dtype == "string"
    assert p.frame[schema.ID].tolist() == plain[schema.ID].tolist()
    assert p.notes == ["customer ids are text"] and p.path == real_data_path


def _quality(path):
    report = validate(load(path))[1].to_dict()
    return {k: v for k, v in report.items() if k not in ("source", "notes")}, report["notes"]


@pytest.fixture(scope="module")
def real_quality(real_data_path):
    return _quality(real_data_path)[0]


def _with_thousands(text: str) -> str:
    """The same digits, with quoted thousands separators ("7,000", "3,202.467416")."""
    def group(field: str) -> str:
        whole, dot, decimals = field.partition(".")
        if not re.fullmatch(r"\d{4,}", whole) or (decimals and not decimals.isdigit()):
            return field
        return f'"{int(whole):,}{dot}{decimals}"'
    return "\n".join(",".join(group(f) for f in line.split(",")) for line in text.split("\n"))


@pytest.mark.parametrize("variant, note", [("tab", "tabs"), ("gzip", "gzip"), ("thousands", "thousands")])
def test_real_file_in_other_dialects_gives_the_same_quality(real_data_path, real_quality, tmp_path, variant, note):
    text = real_data_path.read_text()
    path = tmp_path / f"{variant}.csv"
    if variant == "tab":
        path.write_text(text.replace(",", "\t"))
    elif variant == "gzip":
        path = tmp_path / "cards.csv.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(_with_thousands(text))
        assert '"7,000"' in path.read_text()
    quality, notes = _quality(path)
    assert quality == real_quality
    assert any(note in n for n in notes)


def test_only_the_schema_columns_are_read_from_a_source():
    class Recording(FrameSource):
        def read(self, columns=None):
            asked.append(list(columns))
            return super().read(columns)

    asked = []
    frame = tiny_portfolio(8).assign(segment_hint="x", notes="")
    p = load(Recording(frame, name="recorded"))
    assert asked == [[c.name for c in schema.COLUMNS]]
    assert p.source == "recorded" and p.ignored == ["segment_hint", "notes"] and p.empty_ignored == ["notes"]


def test_an_identical_header_twice_is_refused_not_renamed(tmp_path):
    frame = tiny_portfolio(5)
    path = tmp_path / "twice.csv"
    path.write_text(frame.to_csv(index=False).replace("PAYMENTS,", "BALANCE,", 1))
    with pytest.raises(DataError) as err:
        load(path)
    assert "'BALANCE' appears twice (columns 2 and 15)" in str(err.value)
    assert "BALANCE.1" not in str(err.value)


def test_frame_keeps_its_label_and_is_not_modified():
    frame = tiny_portfolio(6)
    frame[schema.ID] = range(6)
    before = frame.copy()
    p = load(frame)
    assert p.source == "<DataFrame>" and p.path is None
    assert p.frame[schema.ID].tolist() == [str(i) for i in range(6)]
    pd.testing.assert_frame_equal(frame, before)
    assert load(frame, name="demo").source == "demo"


def test_european_export_loads_and_validates(tmp_path):
    frame = tiny_portfolio(30)
    path = tmp_path / "eu.csv"
    path.write_text(frame.to_csv(index=False, sep=";", decimal=","))
    p = load(path)
    clean, report = validate(p)
    np.testing.assert_array_equal(clean.frame["PAYMENTS"], frame["PAYMENTS"])
    assert any("decimal comma" in n for n in report.notes)


def test_title_line_above_the_header_is_skipped_and_noted(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Export, January\n" + tiny_portfolio(6).to_csv(index=False))
    p = load(path)
    assert len(p) == 6 and p.ignored == []
    assert any("Export, January" in n for n in p.notes)
