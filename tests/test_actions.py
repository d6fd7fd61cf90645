import json

import pandas as pd
import pytest

from custseg.actions import (STABILITY_WEIGHT, load_playbook, parse_playbook, segment_facts,
                             suggest_actions)
from custseg.datasets import generate
from custseg.errors import CustsegError
from custseg.naming import name_segments
from custseg.value import segment_value


@pytest.fixture(scope="module")
def run():
    frame, truth = generate(4000, seed=3)
    codes = truth.cat.codes.to_numpy()
    names = name_segments(frame, codes)
    value = segment_value(frame, codes, names=[n.name for n in names])
    stability = pd.DataFrame({"jaccard_mean": [0.9] * 6, "status": ["stable"] * 6})
    return names, value, stability, list(truth.cat.categories)


def test_default_playbook_loads_and_every_condition_uses_a_known_fact(run):
    names, value, stability, _ = run
    playbook = load_playbook()
    known = set(segment_facts(names, value, stability)[1])
    assert playbook and all(c.fact in known for p in playbook for c in p.when)


def test_each_segment_gets_one_to_three_actions_whose_triggers_hold(run):
    names, value, stability, archetypes = run
    out = suggest_actions(names, value, stability)
    facts = segment_facts(names, value, stability)
    playbook = {p.id: p for p in load_playbook()}
    for s, a in out.items():
        assert 1 <= len(a.actions) <= 3
        for act in a.actions:
            assert all(c.holds(facts[s]) for c in playbook[act.id].when)
            assert act.stake_per_customer == pytest.approx(facts[s][f"{act.stake}_per_customer"])
        assert [x.stake_per_customer for x in a.actions] == sorted((x.stake_per_customer for x in a.actions),
                                                                   reverse=True)
    cash = out[archetypes.index("cash_advance") + 1]
    assert "cash_to_credit" in [x.id for x in cash.actions]
    dormant = out[archetypes.index("dormant") + 1]
    assert dormant.actions[0].id.startswith("reactivation")


def test_priority_is_stake_times_size_times_stability(run):
    names, value, stability, _ = run
    out = suggest_actions(names, value, stability)
    for s, a in out.items():
        assert a.priority_score == pytest.approx(a.actions[0].stake_per_customer * value.segments[s].size)
    ranked = sorted(out.values(), key=lambda a: a.priority)
    assert [a.priority for a in ranked] == list(range(1, 7))
    assert all(x.priority_score >= y.priority_score for x, y in zip(ranked, ranked[1:]))
    first = ranked[0].segment
    shaky = stability.copy()
    shaky.loc[first - 1, "status"] = "unstable"
    again = suggest_actions(names, value, shaky)
    assert again[first].priority_score == pytest.approx(ranked[0].priority_score * STABILITY_WEIGHT["unstable"])


def test_a_toml_file_replaces_the_playbook(run, tmp_path):
    names, value, stability, _ = run
    path = tmp_path / "mine.toml"
    path.write_text('[[action]]\nid = "call"\naction = "Call them"\nwhy = "big balances"\n'
                    'when = ["median_utilisation >= 0.5", "not pays_in_full"]\nstake = "interest"\n'
                    '[[action]]\nid = "none"\naction = "Nothing"\nwhy = "-"\nwhen = []\nstake = "total"\n'
                    'fallback = true\n', encoding="utf-8")
    out = suggest_actions(names, value, stability, load_playbook(path))
    facts = segment_facts(names, value, stability)
    for s, a in out.items():
        hot = facts[s]["median_utilisation"] >= 0.5 and not facts[s]["pays_in_full"]
        assert [x.id for x in a.actions] == (["call"] if hot else ["none"])
    assert any(a.actions[0].id == "call" for a in out.values())
    json.dumps({s: a.to_dict() for s, a in out.items()}, allow_nan=False)


@pytest.mark.parametrize("data, fragment", [
    ({}, "no [[action]]"),
    ({"action": [{"id": "x", "action": "a", "why": "w", "when": []}]}, "lacks stake"),
    ({"action": [{"id": "x", "action": "a", "why": "w", "when": [], "stake": "fun"}]}, "stake 'fun'"),
    ({"action": [{"id": "x", "action": "a", "why": "w", "when": ["a >> 3"], "stake": "total"}]}, "condition"),
])
def test_bad_playbooks_are_user_errors(data, fragment):
    with pytest.raises(CustsegError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        parse_playbook(data)


def test_unknown_fact_and_unreadable_file_are_user_errors(run, tmp_path):
    names, value, stability, _ = run
    bad = parse_playbook({"action": [{"id": "x", "action": "a", "why": "w", "when": ["wealthy"], "stake": "total"}]})
    with pytest.raises(CustsegError, match="unknown fact"):
        suggest_actions(names, value, stability, bad)
    with pytest.raises(CustsegError, match="cannot read"):
        load_playbook(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[action]\n", encoding="utf-8")
    with pytest.raises(CustsegError, match="not valid"):
        load_playbook(broken)
