import pandas as pd
import pytest

from custseg import schema
from custseg.errors import DataError
from custseg.load import load

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
