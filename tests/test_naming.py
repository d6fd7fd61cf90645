import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

import custseg
from custseg.claims import CLAIMS, NAMES, OPS, check_claims, customer_measures
from custseg.datasets import generate
from custseg.naming import DESCRIBED, fmt_value, name_segments
from custseg.profiles import profile

# what each archetype's documented recipe (datasets.ARCHETYPES) says it does, as claims and name words
ARCHETYPE_CLAIMS = {
    "transactor": ({"pays_in_full", "buys_regularly"}, "transactor"),
    "revolver": ({"revolves", "near_limit"}, "revolver"),
    "cash_advance": ({"uses_cash_advances", "rarely_buys"}, "cash-advance"),
    "instalment": ({"instalment_buyer"}, "instalment"),
    "dormant": ({"mostly_inactive"}, "dormant"),
    "premium": ({"big_spender", "high_limit"}, "spender"),
}


@pytest.fixture(scope="module")
def synthetic():
    frame, truth = generate(6000, seed=1)
    codes = truth.cat.codes.to_numpy()
    return frame, codes, list(truth.cat.categories)


@pytest.fixture(scope="module", params=[4, 6, 9])
def real_fit(request, real_data_path):
    portfolio, _ = custseg.validate(custseg.load(real_data_path))
    model = custseg.Segmenter(n_clusters=request.param, random_state=0, n_init=2).fit(portfolio.frame)
    return portfolio.frame, model.labels_


def recheck(frame, labels, names):
    """Every claim of every name, recomputed from the customers, not from the recorded results."""
    measures = customer_measures(frame)
    for n in names:
        rows = measures[labels == n.segment - 1]
        for result in n.claims:
            assert result.holds, (n.name, result.to_dict())
            for t in result.tests:
                values = rows[t.test.measure].dropna()
                if t.test.statistic == "median":
                    stat = values.median()
                else:
                    stat = OPS[t.test.customer_op](values, t.test.customer_value).mean()
                assert stat == pytest.approx(t.value)
                expected = measures[t.test.measure].quantile(t.test.quantile) if t.test.quantile else t.test.threshold
                assert t.threshold == pytest.approx(expected)
                assert OPS[t.test.op](stat, t.threshold), (n.name, t.to_dict())


def test_every_claim_of_every_name_holds_on_the_real_file(real_fit):
    frame, labels = real_fit
    names = name_segments(frame, labels)
    assert len({n.name for n in names}) == len(names)
    recheck(frame, labels, names)
    templates = dict((name, keys) for name, keys in reversed(NAMES))
    for n in names:
        base = n.name.split(" (")[0]
        if base in templates:  # a listed name makes exactly its listed claims
            assert {c.claim.key for c in n.claims} == set(templates[base])


def test_true_archetypes_get_names_matching_their_documented_behaviour(synthetic):
    frame, codes, archetypes = synthetic
    names = name_segments(frame, codes)
    recheck(frame, codes, names)
    for n in names:
        claims, word = ARCHETYPE_CLAIMS[archetypes[n.segment - 1]]
        assert claims <= set(n.held), (archetypes[n.segment - 1], n.held)
        assert word in n.name.lower(), (archetypes[n.segment - 1], n.name)


def test_a_claim_that_fails_is_recorded_as_failing_and_never_named(synthetic):
    frame, codes, archetypes = synthetic
    results = check_claims(customer_measures(frame), codes)
    transactor = archetypes.index("transactor") + 1
    assert not results[transactor]["revolves"].holds
    assert not results[transactor]["uses_cash_advances"].holds
    names = {n.segment: n for n in name_segments(frame, codes)}
    assert "revolver" not in names[transactor].name.lower()
    assert set(names[transactor].held) == {k for k, r in results[transactor].items() if r.holds}


def test_two_segments_with_the_same_claims_get_unique_true_names(synthetic):
    frame, codes, archetypes = synthetic
    cash = archetypes.index("cash_advance")
    labels = np.where(codes == cash, 0, 2)
    labels[(codes == cash) & (np.arange(len(codes)) % 2 == 0)] = 1  # two halves of the same archetype
    names = name_segments(frame, labels)
    assert names[0].name != names[1].name
    assert names[0].name == "Cash-advance users"
    assert "uses_cash_advances" in names[1].held  # the twin takes the next name whose claims all hold
    recheck(frame, labels, names)


def test_effect_size_is_the_rank_biserial_correlation(synthetic):
    frame, codes, _ = synthetic
    names = name_segments(frame, codes)
    measures = customer_measures(frame)
    effect = next(e for e in names[0].effects if e.measure == "purchases_per_month")
    x = measures["purchases_per_month"]
    u = mannwhitneyu(x[codes == 0], x[codes != 0]).statistic
    assert effect.effect == pytest.approx(2 * u / ((codes == 0).sum() * (codes != 0).sum()) - 1)
    assert [abs(e.effect) for e in names[0].effects] == sorted((abs(e.effect) for e in names[0].effects),
                                                              reverse=True)


def test_descriptions_lead_with_what_is_higher_and_quote_profile_medians(synthetic):
    frame, codes, archetypes = synthetic
    names = name_segments(frame, codes)
    prof = profile(frame, codes, len(archetypes))
    for n in names:
        lead = [e for e in n.effects if abs(e.effect) >= 0.3][:1]
        text = n.description
        assert text.startswith(f"{(codes == n.segment - 1).sum():,} customers")
        if "More than the rest" in text and "Less than the rest" in text:
            assert text.index("More than the rest") < text.index("Less than the rest")
        for e in lead:
            assert e.median == pytest.approx(prof.stats.at[n.segment, (e.measure, "median")])
            _, _, fmt, at_all = DESCRIBED[e.measure]
            assert fmt_value(e.median, fmt) in text or at_all in text
    cash = names[archetypes.index("cash_advance")]
    assert "cash advances" in cash.description.split("Less")[0]  # presence first, not "low spend"


def test_to_dict_is_json_safe_and_carries_claims(synthetic):
    import json

    frame, codes, _ = synthetic
    d = name_segments(frame, codes)[0].to_dict()
    json.dumps(d, allow_nan=False)
    assert d["claims"] and all(c["holds"] for c in d["claims"])
    assert set(d["held_claims"]) <= set(CLAIMS)


def test_missing_values_are_skipped_not_counted(synthetic):
    frame, codes, _ = synthetic
    gappy = frame.copy()
    gappy.loc[gappy.index[:50], "PRC_FULL_PAYMENT"] = np.nan
    measures = customer_measures(gappy)
    assert measures["PRC_FULL_PAYMENT"].isna().sum() == 50
    results = check_claims(measures, codes)
    value = results[1]["pays_in_full"].tests[0].value
    assert value == pytest.approx(pd.Series(gappy.loc[codes == 0, "PRC_FULL_PAYMENT"]).median())
