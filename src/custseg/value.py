"""Value and risk per segment, from documented revenue proxies and risk signals.

The file holds 6 to 12 months of behaviour (``TENURE``); flows are annualised as
``amount × 12 / TENURE``. Revenue proxies per customer and year:

- **interest** = ``apr × BALANCE × (1 − PRC_FULL_PAYMENT)``: the end balance stands
  for the typical revolving balance, and interest accrues in the months not paid in full;
- **interchange** = ``interchange × PURCHASES × 12 / TENURE``;
- **cash-advance fees** = ``cash_advance_fee × CASH_ADVANCE × 12 / TENURE``.

Risk signals per segment: share over limit (``BALANCE > CREDIT_LIMIT``), median
limit utilisation, share paying only about the minimum (``PAYMENTS ≤
minimum_only_factor × MINIMUM_PAYMENTS``, among customers with a recorded minimum
above 0) and reliance on cash advances (median share of cash advances in
cash + purchases, and share of customers taking any). See ``docs/segments.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .claims import customer_measures
from .jsonio import jsonable

REVENUES = ("interest", "interchange", "cash_advance_fees")


@dataclass(frozen=True)
class ValueAssumptions:
    """Pricing assumptions behind the revenue proxies (annual rates, shares of amounts).

    Parameters
    ----------
    apr : float, default 0.20
        Annual interest rate on the revolving balance.
    interchange : float, default 0.015
        Interchange earned per unit of purchases.
    cash_advance_fee : float, default 0.03
        Fee per unit of cash advanced.
    minimum_only_factor : float, default 1.1
        A customer "pays only the minimum" when ``PAYMENTS`` ≤ this × ``MINIMUM_PAYMENTS``.
    """

    apr: float = 0.20
    interchange: float = 0.015
    cash_advance_fee: float = 0.03
    minimum_only_factor: float = 1.1


@dataclass(frozen=True)
class SegmentValue:
    """One segment's revenue proxies (per customer and total, per year) and risk signals."""

    segment: int
    name: str
    size: int
    per_customer: dict[str, float]
    total: dict[str, float]
    value_share: float
    risk: dict[str, float]

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class Concentration:
    """Where the customers with one risk flag sit: the segment holding most of them."""

    signal: str
    segment: int
    count: int
    total: int
    segment_share: float
    sentence: str

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class PortfolioValue:
    """Value and risk of every segment, the portfolio totals and risk concentrations."""

    assumptions: ValueAssumptions
    segments: dict[int, SegmentValue]
    total: dict[str, float]
    concentration: tuple[Concentration, ...]

    def to_dict(self) -> dict:
        return jsonable({"assumptions": asdict(self.assumptions),
                         "annualisation": "flows × 12 / TENURE; interest on the end balance for a year",
                         "segments": {s: v.to_dict() for s, v in self.segments.items()},
                         "total": self.total,
                         "concentration": [c.to_dict() for c in self.concentration]})

    def table(self) -> pd.DataFrame:
        """One row per segment, flat columns (for a CSV)."""
        rows = []
        for s, v in self.segments.items():
            row = {"segment": s, "segment_name": v.name, "size": v.size, "value_share": v.value_share}
            row.update({f"{k}_per_customer": x for k, x in v.per_customer.items()})
            row.update({f"{k}_total": x for k, x in v.total.items()})
            row.update(v.risk)
            rows.append(row)
        return pd.DataFrame(rows)


def customer_value(frame: pd.DataFrame, assumptions: ValueAssumptions = ValueAssumptions()) -> pd.DataFrame:
    """Annual revenue proxies per customer: interest, interchange, cash-advance fees, total."""
    f = frame.astype({c: "float64" for c in ("BALANCE", "PURCHASES", "CASH_ADVANCE", "TENURE",
                                             "PRC_FULL_PAYMENT")})
    year = 12.0 / f["TENURE"].where(f["TENURE"] > 0)
    out = pd.DataFrame({
        "interest": assumptions.apr * f["BALANCE"] * (1 - f["PRC_FULL_PAYMENT"]),
        "interchange": assumptions.interchange * f["PURCHASES"] * year,
        "cash_advance_fees": assumptions.cash_advance_fee * f["CASH_ADVANCE"] * year,
    }, index=frame.index).fillna(0.0)
    out["total"] = out[list(REVENUES)].sum(axis=1)
    return out


def risk_flags(frame: pd.DataFrame, assumptions: ValueAssumptions = ValueAssumptions()) -> pd.DataFrame:
    """Per-customer risk flags (``NaN`` where the inputs are missing) and ratios."""
    measures = customer_measures(frame)
    limit, minimum = frame["CREDIT_LIMIT"], frame["MINIMUM_PAYMENTS"]
    over = (frame["BALANCE"] > limit).astype("float64").where(limit.notna())
    minimum_only = (frame["PAYMENTS"] <= assumptions.minimum_only_factor * minimum).astype("float64")
    minimum_only = minimum_only.where(minimum > 0)
    return pd.DataFrame({"over_limit": over, "minimum_only": minimum_only,
                         "utilisation": measures["limit_utilisation"], "cash_share": measures["cash_share"],
                         "cash_user": (frame["CASH_ADVANCE"] > 0).astype("float64")}, index=frame.index)


def segment_value(frame: pd.DataFrame, labels: np.ndarray, n_segments: int | None = None,
                  names: Sequence[str] | None = None,
                  assumptions: ValueAssumptions = ValueAssumptions(),
                  numbers: Sequence[int] | None = None) -> PortfolioValue:
    """Revenue proxies and risk signals per segment.

    Parameters
    ----------
    frame : DataFrame
        The validated portfolio (canonical columns).
    labels : ndarray of int
        0-based segment of each row.
    n_segments : int, optional
        Number of segments (default ``labels.max() + 1``).
    names : sequence of str, optional
        Segment names in segment order, used in the sentences.
    assumptions : ValueAssumptions
        Pricing assumptions.
    numbers : sequence of int, optional
        The number each segment carries in the outputs, in segment order, shown in
        the concentrations (default 1, 2, …; identity numbers under ``--reference``).
    """
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if n_segments is None else n_segments
    numbers = list(range(1, k + 1)) if numbers is None else [int(x) for x in numbers]
    names = list(names) if names is not None else [f"segment {s}" for s in range(1, k + 1)]
    value = customer_value(frame, assumptions)
    flags = risk_flags(frame, assumptions)
    grand = value.sum()
    segments = {}
    for s in range(k):
        inside = labels == s
        size = int(inside.sum())
        total = value[inside].sum()
        fl = flags[inside]
        risk = {"share_over_limit": fl["over_limit"].mean(), "n_over_limit": int(fl["over_limit"].sum()),
                "median_utilisation": fl["utilisation"].median(),
                "share_minimum_only": fl["minimum_only"].mean(), "n_minimum_only": int(fl["minimum_only"].sum()),
                "median_cash_share": fl["cash_share"].median(), "share_cash_users": fl["cash_user"].mean()}
        segments[s + 1] = SegmentValue(
            s + 1, names[s], size,
            {c: float(total[c] / size) if size else float("nan") for c in value.columns},
            {c: float(total[c]) for c in value.columns},
            float(total["total"] / grand["total"]) if grand["total"] > 0 else float("nan"),
            {key: float(x) for key, x in risk.items()})
    concentration = tuple(c for c in (_concentration(flags[col], labels, k, names, numbers, what)
                                      for col, what in (("over_limit", "over-limit accounts"),
                                                        ("minimum_only", "customers paying only the minimum")))
                          if c is not None)
    return PortfolioValue(assumptions, segments, {c: float(grand[c]) for c in value.columns}, concentration)


def _concentration(flag: pd.Series, labels: np.ndarray, k: int, names: list[str], numbers: list[int],
                   what: str) -> Concentration | None:
    flagged = (flag == 1).to_numpy()
    total = int(flagged.sum())
    if total == 0:
        return None
    counts = np.bincount(labels[flagged], minlength=k)
    top = int(np.argmax(counts))
    size_share = float((labels == top).mean())
    sentence = (f"{counts[top]:,} of the {total:,} {what} ({counts[top] / total:.0%}) sit in segment {numbers[top]} "
                f"({names[top]}), which holds {size_share:.0%} of customers.")
    return Concentration(what, numbers[top], int(counts[top]), total, size_share, sentence)
