"""Claims about a segment, written down as data, and how to check them.

A *claim* is a plain-language statement about a segment ("pays in full",
"revolves", "uses cash advances") made of one or more *tests*, each a robust
statistic of the segment's customers compared with a threshold:

- ``median`` of a per-customer measure (e.g. median ``PRC_FULL_PAYMENT`` ≥ 0.5), or
- ``share`` of the segment's customers whose measure passes a per-customer
  condition (e.g. share with ``CASH_ADVANCE`` > 0 ≥ 0.8).

A claim holds when all its tests hold. Thresholds on 0–1 scales are fixed
numbers; thresholds on amounts (whose currency and scale vary between banks) are
portfolio quantiles of the same measure, resolved to a number per portfolio and
recorded, so every result can be re-checked from the numbers it carries.
See ``docs/segments.md`` for the table of claims.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import schema
from .features import FEATURES, DeriveBehaviour
from .jsonio import jsonable
from .profiles import MEASURES as PROFILE_MEASURES

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


@dataclass(frozen=True)
class Test:
    """One robust statistic of a segment compared with a threshold.

    Parameters
    ----------
    statistic : {"median", "share"}
        ``median`` of ``measure`` over the segment's customers, or ``share`` of its
        customers with ``measure <customer_op> customer_value``.
    measure : str
        A column of :func:`customer_measures`.
    op : {">=", "<=", ">", "<"}
        How the statistic compares with the threshold.
    threshold : float, optional
        Fixed threshold (for 0–1 scales and ratios).
    quantile : float, optional
        Threshold = this portfolio quantile of ``measure`` (for amounts).
    customer_op, customer_value
        The per-customer condition of a ``share`` statistic.
    """

    statistic: str
    measure: str
    op: str
    threshold: float | None = None
    quantile: float | None = None
    customer_op: str | None = None
    customer_value: float | None = None

    def describe(self) -> str:
        if self.statistic == "median":
            return f"median {self.measure}"
        return f"share of customers with {self.measure} {SYMBOLS[self.customer_op]} {self.customer_value:g}"

    def resolve(self, measures: pd.DataFrame) -> float:
        """The threshold as a number for this portfolio."""
        if self.quantile is None:
            return float(self.threshold)
        return float(measures[self.measure].quantile(self.quantile))

    def measure_on(self, values: pd.Series) -> float:
        """The statistic over one segment's customers (missing values skipped)."""
        values = values.dropna()
        if values.empty:
            return float("nan")
        if self.statistic == "median":
            return float(values.median())
        return float(OPS[self.customer_op](values, self.customer_value).mean())


@dataclass(frozen=True)
class Claim:
    """A statement about a segment that holds when all its tests hold.

    ``label`` is the claim in a sentence ("pay in full most months"); ``word`` is
    how a fallback name uses it.
    """

    key: str
    label: str
    word: str
    tests: tuple[Test, ...]


def _median(measure, op, threshold=None, quantile=None) -> Test:
    return Test("median", measure, op, threshold=threshold, quantile=quantile)


def _share(measure, customer_op, customer_value, op, threshold) -> Test:
    return Test("share", measure, op, threshold=threshold, customer_op=customer_op, customer_value=customer_value)


#: Every claim a name can make, in the order fallback names prefer them.
CLAIMS: dict[str, Claim] = {c.key: c for c in (
    Claim("uses_cash_advances", "take cash advances", "cash-advance users", (
        _share("CASH_ADVANCE", ">", 0, ">=", 0.8),
        _median("CASH_ADVANCE_FREQUENCY", ">=", 0.15))),
    Claim("rarely_buys", "rarely buy with the card", "rarely buying", (
        _median("PURCHASES_FREQUENCY", "<=", 0.1),)),
    Claim("buys_regularly", "buy with the card in at least half of the months", "regular buyers", (
        _median("PURCHASES_FREQUENCY", ">=", 0.5),)),
    Claim("big_spender", "spend more a month than four in five of the portfolio's customers", "big spenders", (
        _median("purchases_per_month", ">=", quantile=0.8),)),
    Claim("pays_in_full", "pay in full in most months", "transactors", (
        _median("PRC_FULL_PAYMENT", ">=", 0.5),
        _share("PRC_FULL_PAYMENT", ">=", 0.8, ">=", 0.4))),
    Claim("often_pays_in_full", "pay in full in at least a quarter of the months", "part-time full payers", (
        _median("PRC_FULL_PAYMENT", ">=", 0.25),
        _share("PRC_FULL_PAYMENT", "==", 0, "<=", 0.35))),
    Claim("seldom_pays_in_full", "seldom pay in full", "seldom paying in full", (
        _median("PRC_FULL_PAYMENT", "<=", 0.05),
        _share("PRC_FULL_PAYMENT", ">=", 0.8, "<=", 0.05))),
    Claim("revolves", "carry a balance and pay close to the minimum", "revolvers", (
        _median("payment_to_minimum", "<=", 2.0),
        _median("PRC_FULL_PAYMENT", "<=", 0.05),
        _median("limit_utilisation", ">=", 0.3))),
    Claim("near_limit", "use most of their credit limit", "near their limit", (
        _median("limit_utilisation", ">=", 0.7),)),
    Claim("instalment_buyer", "buy in instalments in at least half of the months", "instalment buyers", (
        _median("PURCHASES_INSTALLMENTS_FREQUENCY", ">=", 0.5),)),
    Claim("oneoff_buyer", "buy mostly in one-off purchases", "one-off buyers", (
        _median("oneoff_share", ">=", 0.7),
        _share("PURCHASES", ">", 0, ">=", 0.8))),
    Claim("mostly_inactive", "use the card in at most two months of twelve", "mostly inactive", (
        _share("activity_frequency", "<=", 0.17, ">=", 0.6),)),
    Claim("occasional", "have their balance updated in under 60 % of months", "occasional users", (
        _median("BALANCE_FREQUENCY", "<", 0.6),)),
    Claim("light_balance", "carry almost no balance (under 5 % of the limit)", "low balance", (
        _median("limit_utilisation", "<=", 0.05),)),
    Claim("high_limit", "have a credit limit above three in four of the portfolio's customers", "high limit", (
        _median("CREDIT_LIMIT", ">=", quantile=0.75),)),
)}


#: Names as sets of claims, most specific first; a segment takes the first whose claims all hold.
NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Cash-using revolvers near their limit", ("revolves", "near_limit", "uses_cash_advances")),
    ("Cash-advance users", ("uses_cash_advances", "rarely_buys")),
    ("Cash-advance users who also buy", ("uses_cash_advances", "buys_regularly")),
    ("Cash-advance users", ("uses_cash_advances",)),
    ("Premium transactors", ("big_spender", "pays_in_full")),
    ("Big spenders who seldom pay in full", ("big_spender", "seldom_pays_in_full")),
    ("Big spenders", ("big_spender",)),
    ("Instalment transactors", ("instalment_buyer", "pays_in_full")),
    ("Instalment buyers who often pay in full", ("instalment_buyer", "often_pays_in_full")),
    ("Instalment revolvers", ("instalment_buyer", "revolves")),
    ("One-off revolvers", ("oneoff_buyer", "revolves")),
    ("Transactors", ("pays_in_full",)),
    ("Revolvers near their limit", ("revolves", "near_limit")),
    ("Revolvers", ("revolves",)),
    ("Dormant accounts", ("mostly_inactive", "occasional")),
    ("Mostly inactive accounts", ("mostly_inactive",)),
    ("Occasional light users", ("occasional", "light_balance")),
    ("Occasional users", ("occasional",)),
    ("Instalment buyers", ("instalment_buyer",)),
    ("One-off buyers", ("oneoff_buyer",)),
)


@dataclass(frozen=True)
class TestResult:
    """A test measured on one segment."""

    test: Test
    value: float
    threshold: float

    @property
    def holds(self) -> bool:
        return bool(np.isfinite(self.value) and OPS[self.test.op](self.value, self.threshold))

    def to_dict(self) -> dict:
        return jsonable({"statistic": self.test.describe(), "value": self.value, "op": self.test.op,
                         "threshold": self.threshold, "holds": self.holds})


@dataclass(frozen=True)
class ClaimResult:
    """A claim checked on one segment: every test with its measured value."""

    claim: Claim
    tests: tuple[TestResult, ...]

    @property
    def holds(self) -> bool:
        return all(t.holds for t in self.tests)

    def to_dict(self) -> dict:
        return {"claim": self.claim.key, "label": self.claim.label, "holds": self.holds,
                "tests": [t.to_dict() for t in self.tests]}


def customer_measures(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-customer measures the claims, effect sizes and value use, in original units.

    The raw columns, the profile measures (derived exactly as in ``profiles.json``;
    a missing input leaves the measure missing) and ``activity_frequency`` (share of
    months with a purchase or a cash advance, at most 1) and ``cash_share`` (cash
    advances / (cash advances + purchases)).
    """
    raw = frame[[c for c in schema.BEHAVIOUR if c in frame.columns]].astype("float64")
    derived = DeriveBehaviour(features=list(PROFILE_MEASURES)).fit(raw).transform(raw)
    for m in PROFILE_MEASURES:
        derived.loc[raw[list(FEATURES[m].sources)].isna().any(axis=1), m] = np.nan
    out = pd.concat([raw, derived], axis=1)
    out["activity_frequency"] = np.minimum(
        np.maximum(raw["PURCHASES_FREQUENCY"], raw["CASH_ADVANCE_FREQUENCY"]), 1.0)
    spend = raw["CASH_ADVANCE"] + raw["PURCHASES"]
    out["cash_share"] = (raw["CASH_ADVANCE"] / spend.where(spend > 0)).fillna(0.0)
    return out


def thresholds(measures: pd.DataFrame, claims=None) -> dict[Test, float]:
    """Every test's threshold resolved on this portfolio."""
    claims = CLAIMS.values() if claims is None else claims
    return {t: t.resolve(measures) for c in claims for t in c.tests}


def check_claims(measures: pd.DataFrame, labels: np.ndarray, n_segments: int | None = None,
                 claims=None) -> dict[int, dict[str, ClaimResult]]:
    """Check every claim on every segment.

    Parameters
    ----------
    measures : DataFrame
        :func:`customer_measures` of the portfolio.
    labels : ndarray of int
        0-based segment of each row.
    n_segments : int, optional
        Number of segments (default: ``labels.max() + 1``).
    claims : iterable of Claim, optional
        Default :data:`CLAIMS`.

    Returns
    -------
    dict
        ``{segment (1-based): {claim key: ClaimResult}}``.
    """
    claims = list(CLAIMS.values() if claims is None else claims)
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if n_segments is None else n_segments
    limits = thresholds(measures, claims)
    out = {}
    for s in range(k):
        rows = measures[labels == s]
        out[s + 1] = {c.key: ClaimResult(c, tuple(TestResult(t, t.measure_on(rows[t.measure]), limits[t])
                                                  for t in c.tests))
                      for c in claims}
    return out
