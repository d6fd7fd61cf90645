import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from custseg.errors import CustsegError
from custseg.features import (EXPECTED_FAILED_CHECKS, FEATURE_SETS, FEATURES, STEP_TYPES, DeriveBehaviour,
                              DomainImputer, LogTransform, Standardise, make_pipeline, required_columns,
                              resolve_features)

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
    t = LogTransform(columns=("a",)).set_output(transform="pandas").fit(X)
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


@parametrize_with_checks(
    [DomainImputer(), DeriveBehaviour(), LogTransform(), LogTransform(columns=("x0",)), Standardise()],
    expected_failed_checks=lambda step: EXPECTED_FAILED_CHECKS.get(type(step).__name__, {}),
    xfail_strict=True,
)
def test_steps_follow_sklearn_conventions(estimator, check):
    check(estimator)


def test_every_expected_failure_names_a_reason():
    for step, checks in EXPECTED_FAILED_CHECKS.items():
        assert step in STEP_TYPES
        assert checks and all(name.startswith("check_") and len(why) > 40 for name, why in checks.items())


def test_log_transform_names_unnamed_columns_x0_x1():
    X = np.array([[np.e - 1, 5.0], [-1.0, 6.0]])
    t = LogTransform(columns=("x0",)).fit(X)
    assert list(t.get_feature_names_out()) == ["log_x0", "x1"]
    assert t.transform(X)[:, 0].tolist() == pytest.approx([1.0, 0.0])
    assert t.transform(X)[:, 1].tolist() == [5.0, 6.0]
    with pytest.raises(ValueError, match="no column"):
        LogTransform(columns=("a",)).fit(X)


def test_fitted_steps_name_their_inputs_and_outputs():
    frame = tiny_portfolio(30)
    pipe = make_pipeline().fit(frame)
    data, names = frame, required_columns("behaviour")
    for _, step in pipe.steps:
        assert list(step.feature_names_in_) == list(names) and step.n_features_in_ == len(names)
        out = step.transform(data)
        assert list(out.columns) == list(step.get_feature_names_out()) == list(step.get_feature_names_out(names))
        data, names = out, tuple(out.columns)
    with pytest.raises(ValueError, match="input_features"):
        pipe.named_steps["log"].get_feature_names_out(["a", "b"])


@pytest.mark.parametrize("step", [LogTransform(columns=("balance",)), Standardise()])
def test_numeric_steps_follow_set_output(step):
    X = make_pipeline(["balance", "oneoff_share"])[:2].fit_transform(tiny_portfolio(20))
    assert isinstance(clone(step).set_output(transform="default").fit(X).transform(X), np.ndarray)
    out = clone(step).set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(out, pd.DataFrame) and out.index.equals(X.index)


def test_derive_needs_the_schema_columns_and_checks_names_on_transform():
    frame = tiny_portfolio(12)
    with pytest.raises(ValueError, match="TENURE"):
        DeriveBehaviour(features=["purchases_per_month"]).fit(frame.drop(columns="TENURE"))
    step = DeriveBehaviour(features=["purchases_per_month"]).fit(frame)
    with pytest.raises(ValueError, match="feature names"):
        step.transform(frame.rename(columns={"PURCHASES": "SPEND"}))


@pytest.mark.parametrize("features", ["behaviour", "notebook", list(FEATURES)])
def test_each_step_restores_from_its_json_state_exactly(features):
    frame, other = tiny_portfolio(40), tiny_portfolio(25, seed=3)
    other.loc[0, "MINIMUM_PAYMENTS"] = np.nan
    pipe = make_pipeline(features).fit(frame)
    names = required_columns(features)
    steps = []
    for name, step in pipe.steps:
        state = json.loads(json.dumps(step.get_state(), allow_nan=False))
        restored = STEP_TYPES[type(step).__name__].from_state(state, names)
        assert restored.get_state() == step.get_state()
        assert restored.get_params() == step.get_params()
        assert list(restored.get_feature_names_out()) == list(step.get_feature_names_out())
        steps.append((name, restored))
        names = tuple(restored.get_feature_names_out())
    rebuilt = type(pipe)(steps).set_output(transform="pandas")
    pd.testing.assert_frame_equal(rebuilt.transform(other), pipe.transform(other), check_exact=True)


def _scale_state():
    pipe = make_pipeline(["limit_utilisation", "purchases_per_month"]).fit(tiny_portfolio(30))
    return pipe.named_steps["scale"].get_state(), ("limit_utilisation", "log_purchases_per_month")


@pytest.mark.parametrize("damage, words", [
    (lambda s: s.update(scale=[1.0, 0.0]), "'scale' holds 0"),
    (lambda s: s.update(mean=[1.0]), "'mean' has 1 values for 2 features"),
    (lambda s: s.update(var=[1.0, None]), "'var' must be a list of numbers"),
    (lambda s: s.update(mean=[1.0, 1e400]), "not finite"),
    (lambda s: s.update(mean=[1.0, 10**400]), "too large"),
    (lambda s: s.update(n_samples_seen=0), "n_samples_seen"),
    (lambda s: s.pop("var"), "lacks 'var'"),
    (lambda s: s.update(extra=1), "unexpected 'extra'"),
])
def test_scaler_state_is_checked(damage, words):
    state, names = _scale_state()
    damage(state)
    with pytest.raises(ValueError, match=words):
        Standardise.from_state(state, names)


def test_domain_step_states_are_checked():
    pipe = make_pipeline(["limit_utilisation"]).fit(tiny_portfolio(30))
    impute = pipe.named_steps["impute"].get_state()
    with pytest.raises(ValueError, match="features need"):
        DomainImputer.from_state(impute, ("BALANCE",))
    with pytest.raises(ValueError, match="'medians' must give one number per column"):
        DomainImputer.from_state({**impute, "medians": {"BALANCE": 1.0}}, ("BALANCE", "CREDIT_LIMIT"))
    with pytest.raises(ValueError, match="unknown feature"):
        DeriveBehaviour.from_state({"features": ["happiness"]}, ("BALANCE", "CREDIT_LIMIT"))
    with pytest.raises(ValueError, match="CREDIT_LIMIT"):
        DeriveBehaviour.from_state({"features": ["limit_utilisation"]}, ("BALANCE",))
    with pytest.raises(ValueError, match="non-empty text, no nulls"):
        LogTransform.from_state({"columns": [None]}, ("limit_utilisation",))
    with pytest.raises(ValueError, match="does not give"):
        LogTransform.from_state({"columns": ["balance"]}, ("limit_utilisation",))
