"""Name and describe segments with claims that hold for their customers.

A name is a set of claims (:data:`custseg.claims.NAMES`); a segment takes the first
name, most specific first, whose claims all hold on its customers (medians and
shares of customers, see :mod:`custseg.claims`) and that no other segment has
taken. A segment no name fits is named from the first one or two claims that hold
for it ("Regular buyers, low balance"), or "Mixed behaviour" if none holds; a name
still taken gets the segment's strongest distinguishing behaviour in brackets.

The description leads with what sets the segment apart: the behaviours with the
largest effect size, the rank-biserial correlation of the segment against the rest
of the portfolio (``P(segment customer > other customer) − P(<)``, from -1 to 1), at
most one measure per topic, higher ones first and lower ones ("absences") after.
Figures quoted are the segment's medians, as in ``profiles.json``, next to the
portfolio's median.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .claims import CLAIMS, NAMES, ClaimResult, check_claims, customer_measures
from .jsonio import jsonable

EFFECT_THRESHOLD = 0.3  # |rank-biserial| below this is not distinctive
LEADING = 3  # behaviours named in the leading sentence at most

# measure -> (topic, sentence with the segment's median, number format, the behaviour at all);
# one measure per topic is quoted
DESCRIBED = {
    "cash_advance_per_month": ("cash", "take {v} a month in cash advances", "money", "take cash advances"),
    "CASH_ADVANCE_FREQUENCY": ("cash", "take cash advances in {v} of months", "percent", "take cash advances"),
    "purchases_per_month": ("spend", "spend {v} a month on purchases", "money", "buy with the card"),
    "PURCHASES_FREQUENCY": ("spend", "buy with the card in {v} of months", "percent", "buy with the card"),
    "PURCHASES_INSTALLMENTS_FREQUENCY": ("instalment", "buy in instalments in {v} of months", "percent",
                                         "buy in instalments"),
    "ONEOFF_PURCHASES_FREQUENCY": ("oneoff", "make one-off purchases in {v} of months", "percent",
                                   "make one-off purchases"),
    "PRC_FULL_PAYMENT": ("full", "pay in full in {v} of months", "percent", "ever pay in full"),
    "payment_to_minimum": ("minimum", "pay {v}× their minimum payment", "ratio", "make payments"),
    "limit_utilisation": ("balance", "use {v} of their credit limit", "percent", "carry a balance"),
    "BALANCE": ("balance", "carry a balance of {v}", "money", "carry a balance"),
    "CREDIT_LIMIT": ("limit", "have a credit limit of {v}", "money", "have a credit limit"),
    "payments_per_month": ("payments", "pay {v} a month", "money", "make payments"),
    "BALANCE_FREQUENCY": ("activity", "have their balance updated in {v} of months", "percent",
                          "have their balance updated"),
}
TRAIT_WORDS = {
    "cash_advance_per_month": "cash advances", "CASH_ADVANCE_FREQUENCY": "cash advances",
    "purchases_per_month": "spend", "PURCHASES_FREQUENCY": "purchase frequency",
    "PURCHASES_INSTALLMENTS_FREQUENCY": "instalment use", "ONEOFF_PURCHASES_FREQUENCY": "one-off buying",
    "PRC_FULL_PAYMENT": "full payment", "payment_to_minimum": "payment above minimum",
    "limit_utilisation": "limit use", "BALANCE": "balance", "CREDIT_LIMIT": "credit limit",
    "payments_per_month": "payments", "BALANCE_FREQUENCY": "balance updates",
}


@dataclass(frozen=True)
class Effect:
    """How one measure sets a segment apart: rank-biserial effect and medians."""

    measure: str
    effect: float
    median: float
    portfolio_median: float
    share_positive: float
    portfolio_share_positive: float

    def to_dict(self) -> dict:
        return jsonable({"measure": self.measure, "effect": self.effect, "median": self.median,
                         "portfolio_median": self.portfolio_median, "share_positive": self.share_positive,
                         "portfolio_share_positive": self.portfolio_share_positive})


@dataclass(frozen=True)
class SegmentName:
    """A segment's name, the claims behind it and its description.

    Attributes
    ----------
    segment : int
        1-based segment number.
    name : str
    description : str
    traits : tuple of str
        The leading distinguishing behaviours ("high cash advances", "low spend").
    claims : tuple of ClaimResult
        The claims the name makes, each with measured statistics and thresholds.
    held : tuple of str
        Keys of every claim that holds for the segment (named or not).
    effects : tuple of Effect
        Every described measure, strongest effect first.
    """

    segment: int
    name: str
    description: str
    traits: tuple[str, ...]
    claims: tuple[ClaimResult, ...] = ()
    held: tuple[str, ...] = ()
    effects: tuple[Effect, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"segment": self.segment, "name": self.name, "description": self.description,
                "traits": list(self.traits), "claims": [c.to_dict() for c in self.claims],
                "held_claims": list(self.held), "effects": [e.to_dict() for e in self.effects]}


def name_segments(frame: pd.DataFrame, labels: np.ndarray, n_segments: int | None = None) -> list[SegmentName]:
    """Give every segment a unique name whose claims hold, and a description.

    Parameters
    ----------
    frame : DataFrame
        The validated portfolio (canonical columns).
    labels : ndarray of int
        0-based segment of each row.
    n_segments : int, optional
        Number of segments (default ``labels.max() + 1``).

    Returns
    -------
    list of SegmentName
        One per segment, in segment order (1-based numbers).
    """
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if n_segments is None else n_segments
    measures = customer_measures(frame)
    results = check_claims(measures, labels, k)
    effects = effect_sizes(measures, labels, k)
    out, used = [], set()
    for seg in range(1, k + 1):
        held = tuple(key for key, r in results[seg].items() if r.holds)
        name, keys = _choose(held, used, effects[seg])
        used.add(name)
        size = int((labels == seg - 1).sum())
        out.append(SegmentName(seg, name, describe(effects[seg], size, size / max(len(labels), 1)),
                               _traits(effects[seg]), tuple(results[seg][key] for key in keys), held,
                               tuple(effects[seg])))
    return out


def _choose(held: tuple[str, ...], used: set[str], effects: list[Effect]) -> tuple[str, tuple[str, ...]]:
    for name, keys in NAMES:
        if set(keys) <= set(held) and name not in used:
            return name, keys
    keys = held[:2]
    name = ", ".join(CLAIMS[key].word for key in keys).capitalize() if keys else "Mixed behaviour"
    if name in used:
        distinct = [t for t in _traits(effects) if f"{name} ({t})" not in used]
        name = f"{name} ({distinct[0]})" if distinct else f"{name} ({len(used) + 1})"
    return name, keys


def effect_sizes(measures: pd.DataFrame, labels: np.ndarray, n_segments: int) -> dict[int, list[Effect]]:
    """Rank-biserial effect of each described measure, segment against the rest, strongest first.

    ``r = 2 U / (n₁ n₂) − 1`` with ``U`` the Mann–Whitney statistic of the segment,
    from midranks of the measure over all customers with a value.
    """
    labels = np.asarray(labels)
    out: dict[int, list[Effect]] = {s: [] for s in range(1, n_segments + 1)}
    for var in DESCRIBED:
        col = measures[var]
        known = col.notna().to_numpy()
        values, seg = col[known], labels[known]
        ranks = values.rank(method="average").to_numpy()
        n = len(values)
        for s in range(n_segments):
            inside = seg == s
            n1 = int(inside.sum())
            n2 = n - n1
            if n1 == 0 or n2 == 0:
                continue
            u = ranks[inside].sum() - n1 * (n1 + 1) / 2
            out[s + 1].append(Effect(var, float(2 * u / (n1 * n2) - 1), float(values[inside].median()),
                                     float(values.median()), float((values[inside] > 0).mean()),
                                     float((values > 0).mean())))
    for s in out:
        out[s].sort(key=lambda e: (-abs(e.effect), e.measure))
    return out


def _leading(effects: list[Effect]) -> list[Effect]:
    """The strongest distinctive behaviours, one per topic, at most :data:`LEADING`."""
    topics, chosen = set(), []
    for e in effects:
        topic = DESCRIBED[e.measure][0]
        if abs(e.effect) >= EFFECT_THRESHOLD and topic not in topics:
            topics.add(topic)
            chosen.append(e)
    return chosen[:LEADING]


def _traits(effects: list[Effect]) -> tuple[str, ...]:
    return tuple(f"{'high' if e.effect > 0 else 'low'} {TRAIT_WORDS[e.measure]}" for e in _leading(effects))


def describe(effects: list[Effect], size: int, share: float) -> str:
    """Plain-language description: size, then what is higher, then what is lower than the rest."""
    head = f"{size:,} customers ({share:.1%} of the portfolio)."
    chosen = _leading(effects)
    highs = [_clause(e) for e in chosen if e.effect > 0]
    lows = [_clause(e) for e in chosen if e.effect < 0]
    parts = [head]
    if highs:
        parts.append(f"More than the rest of the portfolio, they {_join(highs)}.")
    if lows:
        parts.append(f"Less than the rest, they {_join(lows)}.")
    if not chosen:
        parts.append("No behaviour sets them clearly apart from the rest of the portfolio.")
    return " ".join(parts)


def _clause(e: Effect) -> str:
    _, text, fmt, at_all = DESCRIBED[e.measure]
    if e.median == e.portfolio_median:  # equal medians say nothing: quote how many do it at all
        return f"{at_all} ({e.share_positive:.0%} of them do; portfolio {e.portfolio_share_positive:.0%})"
    return f"{text.format(v=fmt_value(e.median, fmt))} (median; portfolio {fmt_value(e.portfolio_median, fmt)})"


def _join(clauses: list[str]) -> str:
    return clauses[0] if len(clauses) == 1 else "; ".join(clauses[:-1]) + "; and " + clauses[-1]


def fmt_value(value: float, kind: str) -> str:
    """A figure as the descriptions print it: percent, ratio (1 decimal) or amount."""
    if not np.isfinite(value):
        return "n/a"
    if kind == "percent":
        return f"{value:.0%}"
    if kind == "ratio":
        return f"{value:.1f}"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"
