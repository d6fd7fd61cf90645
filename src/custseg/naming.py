"""Name and describe segments in a marketer's words, from their profiles.

Each candidate name is an archetype from card-portfolio practice with a score
computed from the segment's profile (ratios to the portfolio mean, in original
units). Names are assigned one per segment by maximising the total score
(Hungarian assignment), so two segments never share a name; a segment whose best
score is weak is called what it is, a mainstream group, qualified by its most
distinctive trait. The description quotes the segment's most distinctive measures
with their figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .profiles import Profiles

WEAK_SCORE = 0.5  # below this (log2 units, ~1.4x the portfolio) an archetype does not fit


@dataclass(frozen=True)
class SegmentName:
    segment: int
    name: str
    description: str
    traits: tuple[str, ...]


def _lr(value: float) -> float:
    """log2 of a ratio to the portfolio, bounded so a near-zero mean stays finite."""
    if value is None or not np.isfinite(value):
        return 0.0
    return float(np.log2(np.clip(value, 1 / 16, 16)))


def _scores(r: dict[str, float]) -> dict[str, float]:
    spend, cash, full = _lr(r["purchases_per_month"]), _lr(r["cash_advance_per_month"]), _lr(r["PRC_FULL_PAYMENT"])
    inst, oneoff = _lr(r["PURCHASES_INSTALLMENTS_FREQUENCY"]), _lr(r["ONEOFF_PURCHASES_FREQUENCY"])
    bal, util, limit = _lr(r["BALANCE"]), _lr(r["limit_utilisation"]), _lr(r["CREDIT_LIMIT"])
    freq = _lr(r["PURCHASES_FREQUENCY"])
    return {
        "Cash-advance users": cash - 0.5 * max(spend, 0),
        "Full-paying transactors": full + 0.5 * max(-util, 0) - 0.5 * max(cash, 0),
        "Revolvers": 0.5 * (bal + util) - max(full, 0) - 0.5 * max(cash, 0),
        "Instalment shoppers": inst - 0.5 * max(oneoff, 0),
        "Premium big spenders": 0.5 * spend + 0.5 * limit + 0.5 * max(oneoff, 0) - 0.5,
        "Dormant accounts": -max(spend, cash, freq) - 0.5 * max(bal, 0),
        "One-off buyers": oneoff - 0.5 * max(inst, 0),
        "Frequent everyday buyers": freq + 0.5 * max(inst, 0) - 0.5 * max(spend - 1.5, 0),
    }


# measure -> (how to phrase the segment's mean, how to format the number)
PHRASES = {
    "purchases_per_month": ("spend {v} a month on purchases", "money"),
    "cash_advance_per_month": ("take {v} a month in cash advances", "money"),
    "BALANCE": ("carry a balance of {v}", "money"),
    "CREDIT_LIMIT": ("have a credit limit of {v}", "money"),
    "limit_utilisation": ("use {v} of their limit", "percent"),
    "PRC_FULL_PAYMENT": ("pay in full in {v} of months", "percent"),
    "PURCHASES_FREQUENCY": ("buy with the card in {v} of months", "percent"),
    "PURCHASES_INSTALLMENTS_FREQUENCY": ("buy in instalments in {v} of months", "percent"),
    "ONEOFF_PURCHASES_FREQUENCY": ("make one-off purchases in {v} of months", "percent"),
    "payments_per_month": ("pay {v} a month", "money"),
}


def name_segments(profiles: Profiles) -> list[SegmentName]:
    """Give every segment a unique name and a plain-language description."""
    segments = list(profiles.sizes.index)
    ratios = [{var: profiles.stats.at[s, (var, "ratio")] for var in profiles.variables} for s in segments]
    table = [_scores(r) for r in ratios]
    names = list(table[0])
    score = np.array([[t[n] for n in names] for t in table])
    rows, cols = linear_sum_assignment(-score)
    chosen = dict(zip(rows, cols))
    out = []
    for i, seg in enumerate(segments):
        traits = _traits(profiles, seg)
        if i in chosen and score[i, chosen[i]] >= WEAK_SCORE:
            name = names[chosen[i]]
        else:
            name = f"Mainstream ({traits[0]})" if traits else "Mainstream"
        out.append(SegmentName(int(seg), name, _describe(profiles, seg), tuple(traits)))
    return _dedupe(out)


def _traits(profiles: Profiles, seg: int) -> list[str]:
    """Short trait labels, most distinctive first (by |log2 ratio|)."""
    ranked = sorted(PHRASES, key=lambda v: -abs(_lr(profiles.stats.at[seg, (v, "ratio")])))
    labels = []
    for var in ranked[:3]:
        lr = _lr(profiles.stats.at[seg, (var, "ratio")])
        if abs(lr) < 0.3:
            break
        labels.append(f"{'high' if lr > 0 else 'low'} {var.lower().replace('_', ' ')}")
    return labels


def _describe(profiles: Profiles, seg: int) -> str:
    size = int(profiles.sizes.at[seg, "size"])
    share = float(profiles.sizes.at[seg, "share"])
    ranked = sorted(PHRASES, key=lambda v: -abs(_lr(profiles.stats.at[seg, (v, "ratio")])))[:4]
    clauses = []
    for var in ranked:
        mean = profiles.stats.at[seg, (var, "mean")]
        ratio = profiles.stats.at[seg, (var, "ratio")]
        if not np.isfinite(mean):
            continue
        text, fmt = PHRASES[var]
        clauses.append(f"{text.format(v=_fmt(mean, fmt))} ({_fmt_ratio(ratio)} the portfolio average)")
    body = "; ".join(clauses)
    return f"{size:,} customers ({share:.1%} of the portfolio). On average they {body}."


def _fmt(value: float, kind: str) -> str:
    return f"{value:.0%}" if kind == "percent" else f"{value:,.0f}"


def _fmt_ratio(ratio: float) -> str:
    if not np.isfinite(ratio):
        return "n/a vs"
    return f"{ratio:.1f}×"


def _dedupe(names: list[SegmentName]) -> list[SegmentName]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n.name] = seen.get(n.name, 0) + 1
        if seen[n.name] > 1:
            n = SegmentName(n.segment, f"{n.name} {seen[n.name]}", n.description, n.traits)
        out.append(n)
    return out
