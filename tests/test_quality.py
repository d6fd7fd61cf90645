import numpy as np
import pytest

from custseg import schema
from custseg.errors import DataError
from custseg.load import load
from custseg.quality import validate

from helpers import tiny_portfolio


@pytest.fixture(scope="module")
def real_report(real_data_path):
    return validate(load(real_data_path))


def test_every_quirk_of_the_real_file_is_counted(real_report):
    """The counts measured in ../shared/data/README.md."""
    _, r = real_report
    assert r.n_rows == 8950
    assert r.missing["MINIMUM_PAYMENTS"] == 313
    assert r.count("missing_where_no_payment") == 240
    assert r.missing["CREDIT_LIMIT"] == 1
    assert r.count("above_one", "CASH_ADVANCE_FREQUENCY") == 8
    assert r.count("purchase_sum_mismatch") == 19
    assert r.count("balance_above_limit") == 227
    assert r.count("minimum_above_payments") == 2365
    assert r.count("no_purchases") == 2044
    assert r.count("no_cash_advance") == 4628
    assert r.distribution["TENURE"]["at_12_months"] == 7584
    assert r.count("short_tenure") == 8950 - 7584
    assert round(r.distribution["MINIMUM_PAYMENTS"]["skewness"], 1) == 13.6
    assert round(r.distribution["ONEOFF_PURCHASES"]["skewness"], 1) == 10.0
    assert round(r.distribution["PURCHASES"]["skewness"], 1) == 8.1
    assert {f.column for f in r.findings if f.check == "heavy_skew"} >= {"MINIMUM_PAYMENTS", "PURCHASES"}


def test_repairs_are_applied_and_input_untouched(real_data_path):
    raw = load(real_data_path)
    before = raw.frame.copy()
    clean, _ = validate(raw)
    assert clean.frame["CASH_ADVANCE_FREQUENCY"].max() == 1.0
    assert raw.frame.equals(before)


def test_report_is_json_ready(real_report):
    import json

    text = json.dumps(real_report[1].to_dict(), allow_nan=False)
    assert "purchase_sum_mismatch" in text


def _portfolio(frame, name="t.csv"):
    from custseg.load import from_frame

    return from_frame(frame, name, [])


def test_missing_required_column_names_file_and_column():
    frame = tiny_portfolio(10).drop(columns=["CREDIT_LIMIT"])
    with pytest.raises(DataError) as err:
        validate(_portfolio(frame))
    assert "t.csv" in str(err.value) and "CREDIT_LIMIT" in str(err.value)


def test_unrecognised_close_header_is_hinted():
    frame = tiny_portfolio(10).rename(columns={"CREDIT_LIMIT": "CREDIT_LIMT"})
    with pytest.raises(DataError, match="CREDIT_LIMT' looks close to CREDIT_LIMIT"):
        validate(_portfolio(frame))


def test_text_in_a_numeric_column_names_rows_and_values():
    frame = tiny_portfolio(10)
    frame["BALANCE"] = frame["BALANCE"].astype(object)
    frame.loc[3, "BALANCE"] = "n/a?"
    frame.loc[7, "BALANCE"] = "12,5"
    with pytest.raises(DataError) as err:
        validate(_portfolio(frame))
    msg = str(err.value)
    assert "BALANCE" in msg and "row 4 ('n/a?')" in msg and "row 8 ('12,5')" in msg


def test_duplicate_and_empty_ids():
    frame = tiny_portfolio(10)
    frame.loc[5, schema.ID] = frame.loc[2, schema.ID]
    with pytest.raises(DataError, match=r"repeats 1 id.*rows 3, 6"):
        validate(_portfolio(frame))
    frame = tiny_portfolio(10)
    frame.loc[4, schema.ID] = None
    with pytest.raises(DataError, match="empty in 1 row"):
        validate(_portfolio(frame))


def test_no_rows_and_too_few_rows():
    frame = tiny_portfolio(10)
    with pytest.raises(DataError, match="no customer rows"):
        validate(_portfolio(frame.iloc[:0]))
    with pytest.raises(DataError, match="at least 20"):
        validate(_portfolio(frame), min_rows=20)


def test_out_of_range_values_are_repaired_and_counted():
    frame = tiny_portfolio(12)
    frame.loc[0, "PURCHASES_FREQUENCY"] = 1.4
    frame.loc[1, "BALANCE"] = -5.0
    frame.loc[2, "CREDIT_LIMIT"] = 0.0
    frame.loc[3, "TENURE"] = 0.0
    clean, r = validate(_portfolio(frame))
    assert r.count("above_one", "PURCHASES_FREQUENCY") == 1
    assert r.count("negative", "BALANCE") == 1
    assert r.count("out_of_range", "CREDIT_LIMIT") == 1
    assert r.count("out_of_range", "TENURE") == 1
    f = clean.frame
    assert f.loc[0, "PURCHASES_FREQUENCY"] == 1.0 and f.loc[1, "BALANCE"] == 0.0
    assert np.isnan(f.loc[2, "CREDIT_LIMIT"]) and np.isnan(f.loc[3, "TENURE"])
    assert frame.loc[1, "BALANCE"] == -5.0  # caller's frame untouched


def test_constant_column_is_flagged():
    frame = tiny_portfolio(12)
    frame["TENURE"] = 12.0
    _, r = validate(_portfolio(frame))
    assert r.count("constant") == 12
    assert any(f.column == "TENURE" for f in r.findings if f.check == "constant")
