import json

import numpy as np
import pytest

import custseg
from custseg import schema
from custseg.datasets import generate
from custseg.rules import MAX_DEPTH, explain


def fitted(frame, k):
    model = custseg.Segmenter(n_clusters=k, random_state=0, n_init=2).fit(frame)
    Z = model.embed(frame)
    return model.labels_, Z, model.cluster_centers_, model.inertia_


@pytest.fixture(scope="module")
def synthetic():
    frame, _ = generate(3000, seed=4)
    labels, Z, centres, inertia = fitted(frame, 6)
    return frame, labels, Z, centres, inertia, explain(frame, labels, Z, centres, inertia)


def test_rules_have_at_most_three_conditions_on_original_columns(synthetic):
    *_, rules = synthetic
    for r in rules.segments.values():
        assert 1 <= len(r.conditions) <= MAX_DEPTH
        assert all(c.column in schema.BEHAVIOUR for c in r.conditions)
        assert len({(c.column, c.op) for c in r.conditions}) == len(r.conditions)
        assert " and ".join(c.text() for c in r.conditions) == r.text


def test_fidelity_precision_recall_are_what_the_rules_do(synthetic):
    frame, labels, *_, rules = synthetic
    truth = labels + 1
    assigned = rules.assign(frame)
    assert rules.fidelity == pytest.approx((assigned == truth).mean())
    X = frame.fillna(rules.fill_values)
    for s, r in rules.segments.items():
        hit = np.ones(len(frame), dtype=bool)
        for c in r.conditions:
            x = X[c.column].to_numpy()
            hit &= (x <= c.threshold) if c.op == "<=" else (x > c.threshold)
        assert r.recall == pytest.approx(hit[truth == s].mean())
        assert r.precision == pytest.approx((truth[hit] == s).mean())
        assert r.fidelity == pytest.approx((assigned[truth == s] == s).mean())
    assert rules.fidelity > 0.6  # planted archetypes are separable by a few thresholds


def test_price_of_explainability_is_the_inertia_ratio(synthetic):
    frame, labels, Z, centres, inertia, rules = synthetic
    assigned = rules.assign(frame)
    rule_inertia = sum(((Z[assigned == s] - Z[assigned == s].mean(axis=0)) ** 2).sum()
                       for s in np.unique(assigned))
    assert rules.price_of_explainability == pytest.approx(rule_inertia / inertia)
    assert rules.price_of_explainability >= 1  # measured here; k-means is only a local optimum, so not a law


def test_rules_are_deterministic_and_json_safe(synthetic):
    frame, labels, Z, centres, inertia, rules = synthetic
    again = explain(frame, labels, Z, centres, inertia)
    assert json.dumps(rules.to_dict(), allow_nan=False) == json.dumps(again.to_dict(), allow_nan=False)
    assert set(rules.to_dict()["segments"]) == {str(s) for s in range(1, 7)}


def test_real_file_rules_explain_most_customers(real_data_path):
    portfolio, _ = custseg.validate(custseg.load(real_data_path))
    labels, Z, centres, inertia = fitted(portfolio.frame, 4)
    rules = explain(portfolio.frame, labels, Z, centres, inertia)
    assert rules.fidelity > 0.75  # measured 0.85 at k = 4, seed 0
    assert 1 <= rules.price_of_explainability < 1.5
