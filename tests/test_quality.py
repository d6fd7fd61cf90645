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


def _in_batches(portfolio, rows: int, percent=frozenset()):
    """BatchValidator over ``portfolio`` cut into batches of ``rows``, in a shuffled order of checking."""
    import pyarrow as pa

    from custseg.quality import BatchValidator

    frame = portfolio.frame
    columns = [c for c in frame.columns if c != schema.ID]
    validator = BatchValidator(portfolio.source, columns, percent_scale=percent)
    starts = list(range(0, len(frame), rows))
    checked = {}
    for start in reversed(starts):  # checking is independent of order; merging is in table order
        part = frame.iloc[start:start + rows]
        ids = pa.array(part[schema.ID], type=pa.large_string(), from_pandas=True)
        checked[start] = validator.check(ids, {c: part[c].to_numpy(dtype=np.float64) for c in columns}, start)
    repaired = {c: [] for c in columns}
    for start in starts:
        gathered, numbers = checked[start]
        validator.merge(gathered)
        for c in columns:
            repaired[c].append(numbers[c])
    return validator, {c: np.concatenate(v) for c, v in repaired.items()}


@pytest.mark.parametrize("damage", ["none", "repairs", "percent", "negatives", "implausible", "duplicate"])
def test_validation_in_batches_equals_validate(damage):
    from dataclasses import replace

    frame = tiny_portfolio(500, seed=2)
    if damage == "repairs":
        frame.loc[[3, 250, 499], "CREDIT_LIMIT"] = 0.0
        frame.loc[100:140, "TENURE"] = 0.0
        frame.loc[::9, "BALANCE_FREQUENCY"] = 1.3
        frame.loc[::17, "PAYMENTS"] = np.nan
        frame.loc[5, "BALANCE"] = -3.0
    elif damage == "percent":
        frame.loc[300:, "PRC_FULL_PAYMENT"] *= 100
        frame["PURCHASES_FREQUENCY"] *= 100
    elif damage == "negatives":
        frame["BALANCE"] = -frame["BALANCE"]
    elif damage == "implausible":
        frame.loc[[7, 420], "PURCHASES"] = np.inf
    elif damage == "duplicate":
        frame.loc[480, schema.ID] = frame.loc[2, schema.ID]
    portfolio = load(frame)
    try:
        clean, expected = validate(portfolio)
    except DataError as exc:
        expected, clean = str(exc), None
    validator, repaired = _in_batches(portfolio, 120)
    percent = validator.percent_scale()
    if percent != validator.percent:
        with pytest.raises(ValueError, match="validate the batches again"):
            validator.report(portfolio)
        validator, repaired = _in_batches(portfolio, 120, percent)
    if clean is None and damage != "duplicate":
        with pytest.raises(DataError) as refused:
            validator.report(portfolio)
        assert str(refused.value) == expected
        return
    if damage == "duplicate":  # the ids' repeats are the caller's to find (scoring hashes them)
        with pytest.raises(DataError) as refused:
            validator.report(portfolio, duplicates=lambda: expected)
        assert str(refused.value) == expected
        return
    assert validator.report(portfolio) == replace(expected, distribution={})
    for col, values in repaired.items():
        assert np.array_equal(values, clean.frame[col].to_numpy(), equal_nan=True), col
