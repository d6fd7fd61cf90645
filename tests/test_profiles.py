import numpy as np
import pytest

from custseg.profiles import profile

from helpers import tiny_portfolio


def test_profile_sizes_means_medians_and_ratios():
    frame = tiny_portfolio(30)
    labels = np.arange(30) % 3
    p = profile(frame, labels, 3)
    assert p.sizes["size"].tolist() == [10, 10, 10]
    assert p.sizes["share"].sum() == pytest.approx(1.0)
    seg1 = frame[labels == 0]
    assert p.stats.at[1, ("BALANCE", "mean")] == pytest.approx(seg1["BALANCE"].mean())
    assert p.stats.at[1, ("BALANCE", "median")] == pytest.approx(seg1["BALANCE"].median())
    assert p.stats.at[1, ("BALANCE", "ratio")] == pytest.approx(seg1["BALANCE"].mean() / frame["BALANCE"].mean())
    # derived measures in original units
    per_month = (seg1["PURCHASES"] / seg1["TENURE"]).mean()
    assert p.stats.at[1, ("purchases_per_month", "mean")] == pytest.approx(per_month)


def test_missing_values_are_skipped_not_imputed():
    frame = tiny_portfolio(30)
    labels = np.zeros(30, dtype=int)
    p = profile(frame, labels, 1)
    assert p.stats.at[1, ("MINIMUM_PAYMENTS", "mean")] == pytest.approx(frame["MINIMUM_PAYMENTS"].mean())


def test_empty_segment_is_kept_with_zero_size():
    frame = tiny_portfolio(12)
    p = profile(frame, np.zeros(12, dtype=int), 3)
    assert p.sizes["size"].tolist() == [12, 0, 0]
    assert np.isnan(p.stats.at[2, ("BALANCE", "mean")])


def test_wide_and_dict_forms_agree():
    frame = tiny_portfolio(30)
    p = profile(frame, np.arange(30) % 2, 2)
    wide = p.wide()
    d = p.to_dict()
    assert wide.loc[2, "CREDIT_LIMIT_mean"] == d["segments"][1]["variables"]["CREDIT_LIMIT"]["mean"]
    assert d["segments"][0]["size"] == 15
