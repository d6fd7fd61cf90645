import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from custseg.errors import CustsegError
from custseg.features import (FEATURE_SETS, FEATURES, DeriveBehaviour, DomainImputer, LogTransform,
                              make_pipeline, required_columns, resolve_features)

from helpers import tiny_portfolio


def test_imputer_domain_rule_for_minimum_payments():
    frame = tiny_portfolio(30)
    frame.loc[0, "PAYMENTS"] = 0.0
    frame.loc[0, "MINIMUM_PAYMENTS"] = np.nan
    frame.loc[1, "PAYMENTS"] = 1000.0
    frame.loc[1, "MINIMUM_PAYMENTS"] = np.nan
    frame.loc[2, "CREDIT_LIMIT"] = np.nan
    imp = DomainImputer().fit(frame)
    out = imp.transform(frame)
    assert out.loc[0, "MINIMUM_PAYMENTS"] == 0.0
    assert out.loc[1, "MINIMUM_PAYMENTS"] == pytest.approx(1000.0 * imp.minimum_ratio_)
    assert imp.minimum_ratio_ == pytest.approx(0.25)  # the helper portfolio pays 4x the minimum
    assert out.loc[2, "CREDIT_LIMIT"] == imp.medians_["CREDIT_LIMIT"]
    assert not out.isna().any().any()


def test_zero_denominators_give_defined_values():
    frame = tiny_portfolio(9).fillna(0.0)
    frame.loc[0, ["PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "PURCHASES_TRX"]] = 0.0
    frame.loc[1, ["PAYMENTS", "MINIMUM_PAYMENTS"]] = [500.0, 0.0]
    frame.loc[2, "CREDIT_LIMIT"] = 100.0
    frame.loc[2, "BALANCE"] = 1e6
    out = DeriveBehaviour(features=list(FEATURES)[:16]).fit(frame).transform(frame)
    assert out.loc[0, "oneoff_share"] == 0.0 and out.loc[0, "average_purchase"] == 0.0
    assert out.loc[1, "payment_to_minimum"] == 100.0
    assert out.loc[2, "limit_utilisation"] == 2.0
    assert np.isfinite(out.to_numpy()).all()


def test_per_month_amounts_use_tenure():
    frame = tiny_portfolio(6)
    frame["TENURE"] = [6.0, 12.0, 6.0, 12.0, 6.0, 12.0]
    frame["PURCHASES"] = 1200.0
    out = DeriveBehaviour(features=["purchases_per_month"]).fit(frame).transform(frame)
    assert out["purchases_per_month"].tolist() == [200.0, 100.0] * 3


def test_log_transform_renames_and_clips():
    X = pd.DataFrame({"a": [0.0, np.e - 1, -3.0], "b": [1.0, 2.0, 3.0]})
    t = LogTransform(columns=("a",)).fit(X)
    out = t.transform(X)
    assert list(out.columns) == ["log_a", "b"] == list(t.get_feature_names_out())
    assert out["log_a"].tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_default_pipeline_on_real_data_is_finite_and_named(real_data_path):
    from custseg.load import load
    from custseg.quality import validate

    p, _ = validate(load(real_data_path))
    pipe = make_pipeline().fit(p.frame)
    Z = pipe.transform(p.frame)
    names = list(pipe.get_feature_names_out())
    assert names == list(Z.columns)
    assert len(names) == len(FEATURE_SETS["behaviour"])
    assert "log_purchases_per_month" in names and "limit_utilisation" in names
    assert np.isfinite(Z.to_numpy()).all()
    assert np.allclose(Z.mean().to_numpy(), 0, atol=1e-9)


def test_notebook_set_is_the_raw_columns_unlogged():
    frame = tiny_portfolio(30)
    pipe = make_pipeline("notebook").fit(frame)
    assert len(pipe.get_feature_names_out()) == 17
    assert not any(n.startswith("log_") for n in pipe.get_feature_names_out())


def test_custom_feature_list_and_required_columns():
    assert required_columns(["limit_utilisation"]) == ("BALANCE", "CREDIT_LIMIT")
    pipe = make_pipeline(["limit_utilisation", "purchases_per_month"]).fit(tiny_portfolio(30))
    assert list(pipe.get_feature_names_out()) == ["limit_utilisation", "log_purchases_per_month"]
    with pytest.raises(CustsegError, match="unknown feature"):
        resolve_features(["no_such_thing"])
    with pytest.raises(CustsegError, match="unknown feature set"):
        resolve_features("fancy")


def test_every_feature_can_be_computed():
    frame = tiny_portfolio(12)
    out = make_pipeline(list(FEATURES)).fit_transform(frame)
    assert out.shape == (12, len(FEATURES))


def test_transformers_are_clonable_estimators():
    pipe = make_pipeline()
    assert clone(pipe).get_params()["derive__features"] == FEATURE_SETS["behaviour"]
