"""The executive summary: one paragraph in business words and one row per segment, as plain data.

The paragraph says how many segments there are and how far they can be trusted,
who the largest are, which segment to target first (priority from
:mod:`custseg.actions`) and why, and the main risk (where over-limit accounts
concentrate, from :mod:`custseg.value`). Renderers print it as it is.

:func:`insights` computes names, value and risk, actions, rules and the summary for
one fitted segmentation in one call; :class:`Insights` gives the per-segment fields
for ``description.json``/``profiles.json`` and a flat table for a CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .actions import SegmentActions, suggest_actions
from .jsonio import jsonable
from .naming import SegmentName, name_segments
from .rules import Rules, explain
from .value import PortfolioValue, ValueAssumptions, segment_value

# risk signal -> (threshold from which it is named, words)
RISK_SIGNALS = {
    "share_over_limit": (0.05, "{:.0%} over their limit"),
    "share_minimum_only": (0.4, "{:.0%} pay only about the minimum"),
    "median_cash_share": (0.5, "cash advances are {:.0%} of their use (median)"),
    "median_utilisation": (0.7, "use {:.0%} of their limit (median)"),
}


@dataclass(frozen=True)
class SummaryRow:
    """One segment's line in the executive table."""

    segment: int
    name: str
    size: int
    share: float
    value_share: float
    risk: str
    stability: str
    jaccard: float
    top_action: str
    priority: int

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class ExecutiveSummary:
    paragraph: str
    rows: tuple[SummaryRow, ...]

    def to_dict(self) -> dict:
        return {"paragraph": self.paragraph, "rows": [r.to_dict() for r in self.rows]}

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rows])


def risk_text(risk: dict) -> str:
    """The segment's notable risk signals in words, or "low" when none reaches its threshold."""
    named = [words.format(risk[key]) for key, (limit, words) in RISK_SIGNALS.items()
             if risk.get(key) is not None and risk[key] == risk[key] and risk[key] >= limit]
    return "; ".join(named) if named else "low"


def executive_summary(names: list[SegmentName], value: PortfolioValue, actions: dict[int, SegmentActions],
                      stability: pd.DataFrame | None = None,
                      numbers: Sequence[int] | None = None) -> ExecutiveSummary:
    """Compose the summary paragraph and table rows.

    Parameters
    ----------
    names : list of SegmentName
        In model order, numbered by position (``segment`` = position + 1), the key of
        ``value`` and ``actions``.
    value : PortfolioValue
    actions : dict of int to SegmentActions
        From :func:`custseg.actions.suggest_actions`.
    stability : DataFrame, optional
        One row per segment in segment order with ``jaccard_mean`` and ``status``.
    numbers : sequence of int, optional
        The number each segment carries in the outputs, in model order (its identity's
        under ``--reference``, which skips vanished segments' numbers); the rows and the
        paragraph show these. Default: position + 1.
    """
    numbers = _numbers(names, numbers)
    n = sum(v.size for v in value.segments.values())
    rows, shown_actions = [], {}
    for seg, number in zip(names, numbers):
        s = seg.segment
        v, a = value.segments[s], actions[s]
        status, jaccard = ("unknown", float("nan")) if stability is None else (
            str(stability.iloc[s - 1]["status"]), float(stability.iloc[s - 1]["jaccard_mean"]))
        rows.append(SummaryRow(number, seg.name, v.size, v.size / n if n else float("nan"), v.value_share,
                               risk_text(v.risk), status, jaccard,
                               a.actions[0].action if a.actions else "", a.priority))
        shown_actions[number] = a
    return ExecutiveSummary(_paragraph(rows, value, shown_actions, n), tuple(rows))


def _numbers(names: list[SegmentName], numbers: Sequence[int] | None) -> tuple[int, ...]:
    if numbers is None:
        return tuple(n.segment for n in names)
    if len(numbers) != len(names):
        raise ValueError(f"{len(numbers)} segment numbers for {len(names)} segments")
    return tuple(int(x) for x in numbers)


FACT_WORDS = {"share_over_limit": "over their limit", "share_minimum_only": "paying only about the minimum",
              "median_utilisation": "median limit use", "median_cash_share": "median cash share of use",
              "share_cash_users": "taking cash advances", "value_share": "of the estimated revenue"}


def _evidence(triggers: dict) -> str:
    """The numeric facts behind an action, e.g. " (49% paying only about the minimum)"."""
    shown = [f"{value:.0%} {FACT_WORDS[cond.split()[0]]}" for cond, value in triggers.items()
             if cond.split()[0] in FACT_WORDS and isinstance(value, float)]
    return f" ({', '.join(shown)})" if shown else ""


def _paragraph(rows: list[SummaryRow], value: PortfolioValue, actions: dict[int, SegmentActions], n: int) -> str:
    """The summary paragraph; ``rows`` and ``actions`` are keyed by the segments' shown numbers."""
    counts = {st: sum(r.stability == st for r in rows) for st in ("stable", "weak", "unstable")}
    trust = ", ".join(f"{c} {st}" for st, c in counts.items() if c)
    largest = sorted(rows, key=lambda r: (-r.size, r.segment))[:3]
    who = ", ".join(f"{r.name} ({r.share:.0%})" for r in largest)
    text = [f"The {n:,} customers form {len(rows)} segments" + (f" ({trust} under resampling)." if trust else ".")
            + f" The largest are {who}."]
    first = min(rows, key=lambda r: r.priority)
    top = actions[first.segment].actions[0] if actions[first.segment].actions else None
    if top is not None:
        text.append(f"Target first: {first.name} (segment {first.segment}, {first.size:,} customers, "
                    f"{first.value_share:.0%} of the estimated revenue, {first.stability}): "
                    f"{top.action[0].lower() + top.action[1:]}, because {top.why}{_evidence(top.triggers)}.")
    main = next((c for c in value.concentration if c.signal == "over-limit accounts"), None)
    if main is not None:
        text.append(f"Main risk: {main.sentence}")
    return " ".join(text)


@dataclass(frozen=True)
class Insights:
    """Names, value and risk, actions, rules and the executive summary of one segmentation.

    Everything is keyed by model position + 1; ``numbers`` holds the number each
    segment carries in the outputs (model order), which every text and per-segment
    field shows.
    """

    names: list[SegmentName]
    value: PortfolioValue
    actions: dict[int, SegmentActions]
    rules: Rules
    summary: ExecutiveSummary
    numbers: tuple[int, ...] = ()

    def segment_fields(self, segment: int) -> dict:
        """The fields description.json and profiles.json carry per segment (model position + 1)."""
        v, r = self.value.segments[segment], self.rules.segments[segment]
        n = self.names[segment - 1]
        shown = {"segment": self.numbers[segment - 1] if self.numbers else segment}
        return jsonable({"claims": [c.to_dict() for c in n.claims], "held_claims": list(n.held),
                         "effects": [e.to_dict() for e in n.effects],
                         "value": {"per_customer": v.per_customer, "total": v.total, "value_share": v.value_share},
                         "risk": v.risk, "actions": {**self.actions[segment].to_dict(), **shown},
                         "rule": r.text, "fidelity": r.fidelity, "rule_detail": {**r.to_dict(), **shown}})

    def to_dict(self) -> dict:
        """Portfolio-level parts: assumptions, concentrations, overall rule figures, the summary."""
        value = self.value.to_dict()
        return jsonable({"executive_summary": self.summary.to_dict(),
                         "value_assumptions": value["assumptions"], "value_total": value["total"],
                         "annualisation": value["annualisation"], "concentration": value["concentration"],
                         "rules": {k: x for k, x in self.rules.to_dict().items() if k != "segments"},
                         "table": self.table().to_dict("records")})

    def table(self) -> pd.DataFrame:
        """One row per segment: value, risk, top action, priority, rule and fidelity (for a CSV)."""
        out = self.value.table()
        out["priority"] = [self.actions[s].priority for s in out["segment"]]
        out["top_action"] = [a.actions[0].action if (a := self.actions[s]).actions else "" for s in out["segment"]]
        out["rule"] = [self.rules.segments[s].text for s in out["segment"]]
        out["rule_fidelity"] = [self.rules.segments[s].fidelity for s in out["segment"]]
        out["price_of_explainability"] = [self.rules.segments[s].price_of_explainability for s in out["segment"]]
        return out


def insights(frame: pd.DataFrame, labels: np.ndarray, Z: np.ndarray, centres: np.ndarray, inertia: float,
             stability: pd.DataFrame | None = None, *, names: list[SegmentName] | None = None,
             assumptions: ValueAssumptions = ValueAssumptions(), playbook=None,
             random_state: int = 0, numbers: Sequence[int] | None = None) -> Insights:
    """Compute everything marketing acts on for one fitted segmentation.

    Parameters
    ----------
    frame : DataFrame
        The validated portfolio.
    labels : ndarray of int
        0-based segment per customer.
    Z, centres, inertia
        The scaled features, centres and inertia of the k-means fit.
    stability : DataFrame, optional
        ``Stability.segments`` (one row per segment, ``jaccard_mean``, ``status``).
    names : list of SegmentName, optional
        In model order, numbered by position. Default: :func:`custseg.naming.name_segments`.
    assumptions : ValueAssumptions
    playbook : tuple of PlaybookAction, optional
        Default: the package's playbook (:func:`custseg.actions.load_playbook`).
    random_state : int
        Seed of the rule trees.
    numbers : sequence of int, optional
        The number each segment carries in the outputs, in model order (identity
        numbers under ``--reference``); the summary, the risk sentences and the
        per-segment fields show these. Default: position + 1.
    """
    k = len(centres)
    names = name_segments(frame, labels, k) if names is None else names
    numbers = _numbers(names, numbers)
    value = segment_value(frame, labels, k, [n.name for n in names], assumptions, numbers=numbers)
    actions = suggest_actions(names, value, stability, playbook)
    rules = explain(frame, labels, Z, centres, inertia, random_state=random_state)
    return Insights(names, value, actions, rules, executive_summary(names, value, actions, stability, numbers),
                    numbers)
