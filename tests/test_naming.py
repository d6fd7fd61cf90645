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
    assert names[1].name in ("Full-paying transactors", "Frequent everyday buyers", "Premium big spenders")


def test_names_are_unique_and_descriptions_quote_figures():
    frame = tiny_portfolio(90)
    labels = np.arange(90) % 6
    names = name_segments(profile(frame, labels, 6))
    assert len({n.name for n in names}) == 6
    for n in names:
        assert "15 customers" in n.description
        assert "×" in n.description
