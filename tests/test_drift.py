"""Drift: PSI per column and feature against the training distribution, far-from-centre share."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import custseg
from custseg import datasets, drift
from custseg.errors import ModelError

PURCHASE_COLUMNS = ("PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES")
#: Model features computed from the purchase amounts (the others use no purchase amount).
PURCHASE_FEATURES = ("log_purchases_per_month", "log_average_purchase")


@pytest.fixture(scope="module")
def trained():
    frame, _ = datasets.generate(4000, seed=0)
    model = custseg.Segmenter(n_clusters=6, random_state=0, k_min=6, k_max=6).fit(frame)
    _, distances = model.assign(frame)
    bins = drift.training_bins(frame[list(model.required_columns_)], _features(model, frame), distances=distances)
    return frame, model, json.loads(json.dumps(bins))  # as stored in and read from model.json


def _features(model, frame) -> pd.DataFrame:
    return pd.DataFrame(model.embed(frame), columns=model.feature_names_out_)


def _report(trained, frame) -> drift.DriftReport:
    _, model, bins = trained
    return drift.drift_report(bins, frame[list(model.required_columns_)], _features(model, frame),
                              model.assign(frame)[1])


def test_training_month_shows_no_drift(trained):
    frame, _, _ = trained
    report = _report(trained, frame)
    assert all(i.psi == pytest.approx(0.0, abs=1e-12) for i in report.items)
    assert report.warnings() == [] and not report.drifted
    assert report.far_share == pytest.approx(0.01, abs=0.001)


def test_another_sample_of_the_same_population_shows_no_drift(trained):
    other, _ = datasets.generate(4000, seed=11)
    report = _report(trained, other)
    assert report.at("drift") == [] and report.at("watch") == []
    assert report.far_share < 0.03


def test_tripled_purchases_drift_in_purchase_columns_only(trained):
    frame, model, _ = trained
    tripled = frame.copy()
    for c in PURCHASE_COLUMNS:
        tripled[c] = tripled[c] * 3
    report = _report(trained, tripled)
    assert sorted(report.at("drift", "column")) == sorted(PURCHASE_COLUMNS)
    assert report.at("watch", "column") == []
    assert sorted(report.at("drift", "feature")) == sorted(PURCHASE_FEATURES)
    assert report.at("watch", "feature") == []
    lines = report.warnings()
    for c in PURCHASE_COLUMNS:
        assert any(c in line and line.startswith("DRIFT") for line in lines)
    assert not any("BALANCE" in line or "CASH_ADVANCE" in line for line in lines)
    assert lines[-1].startswith("hint:") and "re-segment" in lines[-1]
    data = report.to_dict()
    assert {c["name"] for c in data["columns"] if c["level"] == "drift"} == set(PURCHASE_COLUMNS)


def test_psi_levels_and_epsilon():
    rng = np.random.default_rng(0)
    train = rng.normal(size=5000)
    bins = drift.training_bins(pd.DataFrame({"x": train}), pd.DataFrame())["columns"]["x"]
    assert drift.psi(bins, train) == pytest.approx(0.0, abs=1e-12)
    # Everything in one bin no training customer was in: finite, large.
    far = drift.psi(bins, np.full(100, 1e9))
    assert np.isfinite(far) and far > 5
    shifted = drift.psi(bins, train + 0.5)
    assert drift.level(shifted) in ("watch", "drift")
    assert drift.level(0.09) == "ok" and drift.level(0.1) == "watch" and drift.level(0.25) == "drift"


def test_constant_and_missing_columns():
    train = pd.DataFrame({"c": np.full(100, 12.0), "m": np.r_[np.full(90, 1.0), np.full(10, np.nan)]})
    bins = drift.training_bins(train, pd.DataFrame())["columns"]
    assert bins["c"]["edges"] == [12.0] and bins["c"]["shares"] == [1.0, 0.0]
    assert drift.psi(bins["c"], np.full(50, 12.0)) == 0.0
    assert drift.level(drift.psi(bins["c"], np.full(50, 6.0))) == "ok"  # below the constant: same bin
    assert drift.level(drift.psi(bins["c"], np.full(50, 13.0))) == "drift"
    assert bins["m"]["missing"] == pytest.approx(0.1)
    assert drift.level(drift.psi(bins["m"], np.full(50, np.nan))) == "drift"


def test_damaged_or_mismatched_bins_are_refused(trained):
    frame, model, bins = trained
    with pytest.raises(ModelError, match="damaged"):
        drift.drift_report({"columns": None}, frame, frame)
    with pytest.raises(ModelError, match="lack"):
        drift.drift_report(bins, frame.drop(columns=["PAYMENTS"]), _features(model, frame))
    with pytest.raises(ModelError, match="damaged"):
        drift.psi({"edges": [1.0], "shares": [1.0], "missing": 0.0}, [1.0])


def test_check_bins_accepts_stored_bins_and_names_the_damaged_part(trained):
    _, model, bins = trained
    columns, features = list(model.required_columns_), list(model.feature_names_out_)
    drift.check_bins(bins, columns, features)
    cases = {
        "shares": lambda b: b["columns"]["PAYMENTS"].update(shares=b["columns"]["PAYMENTS"]["shares"][:-1]),
        "increase": lambda b: b["features"]["log_balance"]["edges"].reverse(),
        "does not use": lambda b: b["columns"].update(OTHER=b["columns"]["PAYMENTS"]),
        "distance_p99": lambda b: b.update(distance_p99=-1.0),
    }
    for message, damage in cases.items():
        damaged = json.loads(json.dumps(bins))
        damage(damaged)
        with pytest.raises(ValueError, match=message):
            drift.check_bins(damaged, columns, features)


def test_counts_gathered_batch_by_batch_give_the_same_report(trained):
    frame, model, bins = trained
    new = frame.copy()
    new["PURCHASES"] *= 3
    new.loc[::5, "MINIMUM_PAYMENTS"] = np.nan
    columns = new[list(model.required_columns_)]
    features = _features(model, new)
    distances = model.assign(new)[1]
    expected = drift.drift_report(bins, columns, features, distances)
    counts = drift.DriftCounts(bins)
    parts = [counts.counted(columns.iloc[lo:lo + 700].to_dict("series"), features.iloc[lo:lo + 700].to_dict("series"),
                            distances[lo:lo + 700]) for lo in range(0, len(new), 700)]
    for part in parts:
        counts.merge(part)
    assert counts.report() == expected and expected.drifted
    with pytest.raises(ModelError, match="BALANCE"):
        counts.add(columns.drop(columns="BALANCE"), features, distances)

