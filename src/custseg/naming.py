"""Name and describe segments in a marketer's words, from their profiles.

A name is composed by documented rules on the segment's profile (means and ratios
to the portfolio mean, in original units), checked in this order:

1. **Dormant accounts** — spend, cash advances and balance all below 0.3× the portfolio.
2. **Cash-advance users** — cash advances per month at least 2× the portfolio;
   "… who also buy" when they also spend at least a quarter of the portfolio's average.
3. **Premium big spenders** — purchases per month at least 2× the portfolio;
   **Premium transactors** when they also pay in full at least 1.5× as often.
4. **Non-purchasing revolvers** / **Non-purchasing holders** — (almost) no purchases
   (below 0.1×), split by whether limit utilisation is above 1.2× the portfolio.
5. Otherwise *purchase style* × *payment habit*: style is **Instalment** (one-off share of
   spend below 0.35), **One-off** (above 0.65) or mixed; habit is **transactors** (pay in
   full at least 1.5× as often as the portfolio), **revolvers** (utilisation at least 1.2×
   and pay in full under half as often) or **buyers**. Mixed transactors and revolvers are
   plain "Transactors" and "Revolvers"; mixed buyers are "Everyday buyers". Customers
   whose balance is updated in under 60 % of months are "Occasional".

Two segments that earn the same name are told apart by their most distinctive trait,
e.g. "Revolvers (high credit limit)". The description quotes the segment's most
distinctive measures with their figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profiles import Profiles


@dataclass(frozen=True)
class SegmentName:
    segment: int
    name: str
    description: str
    traits: tuple[str, ...]


# measure -> (trait word, how to phrase the segment's mean, number format)
MEASURES = {
    "purchases_per_month": ("spend", "spend {v} a month on purchases", "money"),
    "cash_advance_per_month": ("cash advances", "take {v} a month in cash advances", "money"),
    "BALANCE": ("balance", "carry a balance of {v}", "money"),
    "CREDIT_LIMIT": ("credit limit", "have a credit limit of {v}", "money"),
    "limit_utilisation": ("limit use", "use {v} of their limit", "percent"),
    "PRC_FULL_PAYMENT": ("full payment", "pay in full in {v} of months", "percent"),
    "PURCHASES_FREQUENCY": ("purchase frequency", "buy with the card in {v} of months", "percent"),
    "PURCHASES_INSTALLMENTS_FREQUENCY": ("instalment use", "buy in instalments in {v} of months", "percent"),
    "ONEOFF_PURCHASES_FREQUENCY": ("one-off buying", "make one-off purchases in {v} of months", "percent"),
    "payments_per_month": ("payments", "pay {v} a month", "money"),
}
TRAIT_THRESHOLD = 0.5  # |log2 ratio| below this (about 1.4x) is not distinctive


def name_segments(profiles: Profiles) -> list[SegmentName]:
    """Give every segment a unique name and a plain-language description."""
    out = []
    for seg in profiles.sizes.index:
        traits = _traits(profiles, seg)
        out.append(SegmentName(int(seg), _name(profiles, seg), _describe(profiles, seg), tuple(traits)))
    return _dedupe(out)


def _name(profiles: Profiles, seg: int) -> str:
    def ratio(var: str) -> float:
        value = profiles.stats.at[seg, (var, "ratio")]
        return float(value) if np.isfinite(value) else 1.0

    def mean(var: str) -> float:
        value = profiles.stats.at[seg, (var, "mean")]
        return float(value) if np.isfinite(value) else float("nan")

    spend, cash, balance = ratio("purchases_per_month"), ratio("cash_advance_per_month"), ratio("BALANCE")
    full, util = ratio("PRC_FULL_PAYMENT"), ratio("limit_utilisation")
    if max(spend, cash, balance) < 0.3:
        return "Dormant accounts"
    if cash >= 2:
        return "Cash-advance users" if spend < 0.25 else "Cash-advance users who also buy"
    if spend >= 2:
        return "Premium transactors" if full >= 1.5 else "Premium big spenders"
    if spend < 0.1:
        return "Non-purchasing revolvers" if util >= 1.2 else "Non-purchasing holders"
    oneoff_share = mean("oneoff_share")
    style = "Instalment" if oneoff_share < 0.35 else "One-off" if oneoff_share > 0.65 else ""
    habit = "transactors" if full >= 1.5 else "revolvers" if util >= 1.2 and full < 0.5 else "buyers"
    name = f"{style} {habit}" if style else {"buyers": "Everyday buyers"}.get(habit, habit.capitalize())
    if mean("BALANCE_FREQUENCY") < 0.6:
        name = "Occasional " + name[0].lower() + name[1:]
    return name


def _log_ratio(profiles: Profiles, seg: int, var: str) -> float:
    value = profiles.stats.at[seg, (var, "ratio")]
    if not np.isfinite(value):
        return 0.0
    return float(np.log2(np.clip(value, 1 / 16, 16)))


def _ranked(profiles: Profiles, seg: int) -> list[tuple[str, float]]:
    """Measures by how far the segment is from the portfolio, most distinctive first."""
    scores = [(var, _log_ratio(profiles, seg, var)) for var in MEASURES]
    return sorted(scores, key=lambda item: -abs(item[1]))


def _traits(profiles: Profiles, seg: int) -> list[str]:
    return [f"{'high' if lr > 0 else 'low'} {MEASURES[var][0]}"
            for var, lr in _ranked(profiles, seg)[:3] if abs(lr) >= TRAIT_THRESHOLD]


def _describe(profiles: Profiles, seg: int) -> str:
    size = int(profiles.sizes.at[seg, "size"])
    share = float(profiles.sizes.at[seg, "share"])
    ranked = _ranked(profiles, seg)
    highs = [v for v, lr in ranked if lr >= 0.3][:2]
    lows = [v for v, lr in ranked if lr <= -0.3][:2]
    clauses = []
    for var in highs + lows:
        mean = profiles.stats.at[seg, (var, "mean")]
        if np.isfinite(mean):
            _, text, fmt = MEASURES[var]
            ratio = profiles.stats.at[seg, (var, "ratio")]
            clauses.append(f"{text.format(v=_fmt(mean, fmt))} ({_fmt_ratio(ratio)} the portfolio average)")
    if not clauses:
        return f"{size:,} customers ({share:.1%} of the portfolio)."
    return f"{size:,} customers ({share:.1%} of the portfolio). On average they {'; '.join(clauses)}."


def _fmt(value: float, kind: str) -> str:
    if kind == "percent":
        return f"{value:.0%}"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def _fmt_ratio(ratio: float) -> str:
    if not np.isfinite(ratio):
        return "n/a vs"
    return "<0.1×" if ratio < 0.1 else f"{ratio:.1f}×"


def _dedupe(names: list[SegmentName]) -> list[SegmentName]:
    counts: dict[str, int] = {}
    for n in names:
        counts[n.name] = counts.get(n.name, 0) + 1
    out, used = [], set()
    for n in names:
        name = n.name
        if counts[name] > 1:
            for trait in (*n.traits, *(f"segment {n.segment}",)):
                candidate = f"{n.name} ({trait})"
                if candidate not in used:
                    name = candidate
                    break
        used.add(name)
        out.append(SegmentName(n.segment, name, n.description, n.traits))
    return out
