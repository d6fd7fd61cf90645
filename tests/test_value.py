import json

import numpy as np
import pandas as pd
import pytest

from custseg.datasets import generate
from custseg.value import ValueAssumptions, customer_value, risk_flags, segment_value


@pytest.fixture(scope="module")
def synthetic():
    frame, truth = generate(4000, seed=2, quirks=True)
    return frame, truth.cat.codes.to_numpy(), list(truth.cat.categories)


def test_revenue_proxies_follow_the_documented_formulas():
    frame = pd.DataFrame({"BALANCE": [1000.0, 500.0], "PRC_FULL_PAYMENT": [0.25, 1.0],
                          "PURCHASES": [600.0, 1200.0], "CASH_ADVANCE": [300.0, 0.0], "TENURE": [6.0, 12.0]})
    a = ValueAssumptions(apr=0.2, interchange=0.01, cash_advance_fee=0.05)
    v = customer_value(frame, a)
    assert v["interest"].tolist() == pytest.approx([0.2 * 1000 * 0.75, 0.0])
    assert v["interchange"].tolist() == pytest.approx([0.01 * 600 * 2, 0.01 * 1200])
    assert v["cash_advance_fees"].tolist() == pytest.approx([0.05 * 300 * 2, 0.0])
    assert v["total"].tolist() == pytest.approx(v[["interest", "interchange", "cash_advance_fees"]].sum(axis=1))


def test_segment_totals_and_shares_add_up(synthetic):
    frame, codes, _ = synthetic
    pv = segment_value(frame, codes)
    per = customer_value(frame)
    assert sum(v.value_share for v in pv.segments.values()) == pytest.approx(1.0)
    assert sum(v.total["total"] for v in pv.segments.values()) == pytest.approx(per["total"].sum())
    for s, v in pv.segments.items():
        assert v.size == (codes == s - 1).sum()
        assert v.per_customer["interest"] == pytest.approx(per.loc[codes == s - 1, "interest"].mean())


def test_risk_signals_match_the_customers(synthetic):
    frame, codes, archetypes = synthetic
    pv = segment_value(frame, codes, assumptions=ValueAssumptions(minimum_only_factor=1.2))
    flags = risk_flags(frame, ValueAssumptions(minimum_only_factor=1.2))
    for s, v in pv.segments.items():
        rows = frame[codes == s - 1]
        over = rows["BALANCE"] > rows["CREDIT_LIMIT"]
        assert v.risk["n_over_limit"] == int(over[rows["CREDIT_LIMIT"].notna()].sum())
        known = rows["MINIMUM_PAYMENTS"] > 0
        expected = (rows.loc[known, "PAYMENTS"] <= 1.2 * rows.loc[known, "MINIMUM_PAYMENTS"]).mean()
        assert v.risk["share_minimum_only"] == pytest.approx(expected)
        assert v.risk["median_utilisation"] == pytest.approx(flags.loc[codes == s - 1, "utilisation"].median())
    cash = pv.segments[archetypes.index("cash_advance") + 1]
    transactor = pv.segments[archetypes.index("transactor") + 1]
    assert cash.risk["median_cash_share"] > 0.5 > transactor.risk["median_cash_share"]
    assert cash.per_customer["cash_advance_fees"] > transactor.per_customer["cash_advance_fees"]


def test_concentration_sentence_is_generated_from_the_counts(synthetic):
    frame, codes, _ = synthetic
    frame = frame.copy()
    frame.loc[codes == 3, "BALANCE"] = frame.loc[codes == 3, "CREDIT_LIMIT"] * 1.5  # segment 4 all over limit
    pv = segment_value(frame, codes, names=[f"Name {i}" for i in range(1, 7)])
    c = next(c for c in pv.concentration if c.signal == "over-limit accounts")
    total = int((frame["BALANCE"] > frame["CREDIT_LIMIT"]).sum())
    assert (c.segment, c.count, c.total) == (4, int((codes == 3).sum()), total)
    assert c.sentence.startswith(f"{c.count:,} of the {total:,} over-limit accounts")
    assert "segment 4 (Name 4)" in c.sentence


def test_to_dict_is_json_safe_and_keyed_by_segment(synthetic):
    frame, codes, _ = synthetic
    d = segment_value(frame, codes).to_dict()
    json.dumps(d, allow_nan=False)
    assert sorted(d["segments"], key=int) == [str(s) for s in range(1, 7)]
    assert d["assumptions"]["apr"] == ValueAssumptions().apr
    assert len(segment_value(frame, codes).table()) == 6


def test_real_file_over_limit_accounts_are_counted(real_data_path):
    import custseg

    portfolio, _ = custseg.validate(custseg.load(real_data_path))
    labels = np.zeros(len(portfolio.frame), dtype=int)
    pv = segment_value(portfolio.frame, labels)
    assert pv.segments[1].risk["n_over_limit"] == 227  # the data README's count
