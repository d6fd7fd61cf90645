import numpy as np

from custseg.naming import name_segments
from custseg.profiles import profile

from helpers import tiny_portfolio


def test_planted_behaviours_get_the_matching_names():
    frame = tiny_portfolio(90)
    labels = np.arange(90) % 3  # 0 buyers paying in full, 1 cash users, 2 dormant
    names = {n.segment: n for n in name_segments(profile(frame, labels, 3))}
    assert names[2].name == "Cash-advance users"
    assert names[3].name == "Dormant accounts"
    assert names[1].name == "Premium transactors"  # all the spending, and 0.8 of months paid in full


def test_names_are_unique_and_descriptions_quote_figures():
    frame = tiny_portfolio(90)
    labels = np.arange(90) % 6
    names = name_segments(profile(frame, labels, 6))
    assert len({n.name for n in names}) == 6
    for n in names:
        assert "15 customers" in n.description
        assert "×" in n.description


def test_same_rule_twice_is_told_apart_by_a_trait():
    frame = tiny_portfolio(90)
    labels = np.where(np.arange(90) % 3 == 1, 1, 0)  # buyers+dormant together, and cash users
    labels[(np.arange(90) % 3 == 1) & (np.arange(90) < 45)] = 2  # split cash users in two
    names = [n.name for n in name_segments(profile(frame, labels, 3))]
    assert names[1].startswith("Cash-advance users") and names[2].startswith("Cash-advance users")
    assert names[1] != names[2] and "(" in names[1] + names[2]
