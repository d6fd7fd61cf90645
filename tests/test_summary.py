import json
from dataclasses import replace

import pandas as pd
import pytest

import custseg
from custseg.datasets import generate
from custseg.summary import FACT_WORDS, RISK_SIGNALS, insights, risk_text


@pytest.fixture(scope="module")
def result():
    frame, truth = generate(3000, seed=5, quirks=True)
    model = custseg.Segmenter(n_clusters=6, random_state=0, n_init=2).fit(frame)
    stability = pd.DataFrame({"jaccard_mean": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
                              "status": ["stable", "stable", "weak", "weak", "unstable", "unstable"]})
    return frame, insights(frame, model.labels_, model.embed(frame), model.cluster_centers_, model.inertia_,
                           stability), stability


def test_paragraph_names_counts_first_target_and_main_risk(result):
    frame, ins, _ = result
    text = ins.summary.paragraph
    first = min(ins.summary.rows, key=lambda r: r.priority)
    assert text.startswith(f"The {len(frame):,} customers form 6 segments (2 stable, 2 weak, 2 unstable")
    assert f"Target first: {first.name} (segment {first.segment}, {first.size:,} customers" in text
    top = ins.actions[first.segment].actions[0]
    assert top.why in text
    for cond, value in top.triggers.items():  # the numbers behind the action are quoted
        if cond.split()[0] in FACT_WORDS:
            assert f"{value:.0%} {FACT_WORDS[cond.split()[0]]}" in text
    over = next(c for c in ins.value.concentration if c.signal == "over-limit accounts")
    assert text.endswith(over.sentence)
    largest = max(ins.summary.rows, key=lambda r: r.size)
    assert f"{largest.name} ({largest.share:.0%})" in text


def test_rows_agree_with_value_actions_and_stability(result):
    _, ins, stability = result
    for row in ins.summary.rows:
        v = ins.value.segments[row.segment]
        assert (row.size, row.value_share) == (v.size, v.value_share)
        assert row.stability == stability.loc[row.segment - 1, "status"]
        assert row.top_action == ins.actions[row.segment].actions[0].action
        assert row.risk == risk_text(v.risk)
    assert sorted(r.priority for r in ins.summary.rows) == list(range(1, 7))


def test_risk_text_names_only_signals_over_their_threshold():
    assert risk_text({"share_over_limit": 0.01, "share_minimum_only": 0.1}) == "low"
    limit = RISK_SIGNALS["share_over_limit"][0]
    assert risk_text({"share_over_limit": limit + 0.1, "share_minimum_only": 0.1}).endswith("over their limit")


def test_segment_fields_and_table_carry_value_risk_actions_rule_fidelity(result):
    _, ins, _ = result
    for s in range(1, 7):
        fields = ins.segment_fields(s)
        assert {"value", "risk", "actions", "rule", "fidelity", "claims"} <= set(fields)
        assert fields["rule"] == ins.rules.segments[s].text
        json.dumps(fields, allow_nan=False)
    json.dumps(ins.to_dict(), allow_nan=False)
    table = ins.table()
    assert list(table["segment"]) == list(range(1, 7))
    assert {"value_share", "share_over_limit", "top_action", "rule", "rule_fidelity", "priority"} <= set(table)


def test_shown_numbers_are_the_segments_numbers_not_positions(result):
    """Under --reference a vanished segment's number is skipped: every number a reader sees is the identity's."""
    frame, positional, stability = result
    model = custseg.Segmenter(n_clusters=6, random_state=0, n_init=2).fit(frame)
    numbers = [1, 2, 4, 5, 6, 8]
    ins = insights(frame, model.labels_, model.embed(frame), model.cluster_centers_, model.inertia_, stability,
                   numbers=numbers)
    assert [r.segment for r in ins.summary.rows] == numbers
    first = min(ins.summary.rows, key=lambda r: r.priority)
    assert f"(segment {first.segment}, {first.size:,} customers" in ins.summary.paragraph
    assert first == replace(positional.summary.rows[numbers.index(first.segment)], segment=first.segment)
    over = next(c for c in ins.value.concentration if c.signal == "over-limit accounts")
    before = next(c for c in positional.value.concentration if c.signal == "over-limit accounts")
    assert over.segment == numbers[before.segment - 1] and f"sit in segment {over.segment} (" in over.sentence
    assert over.sentence in ins.summary.paragraph
    for position, number in enumerate(numbers, start=1):
        fields = ins.segment_fields(position)
        assert fields["actions"]["segment"] == fields["rule_detail"]["segment"] == number
