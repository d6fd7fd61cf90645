"""A first look at the data: each input column's distribution, missing values and correlations.

:func:`explore` summarises the validated portfolio as plain data (what the report's
"data and quality" section and ``custseg eda`` draw). Amount and count columns are
right-skewed (most customers near 0, a few very large): their histograms are on a
``log10(1 + x)`` axis when the skew exceeds :data:`SKEW_FOR_LOG`, so the bulk is visible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import schema
from .jsonio import jsonable

#: Sample skewness above which a non-negative column is shown on a log axis.
SKEW_FOR_LOG = 2.0
#: Histogram bins per column.
BINS = 40


@dataclass(frozen=True)
class ColumnSummary:
    """One input column: counts, quantiles, skew and a histogram (on ``scale``)."""

    column: str
    unit: str
    description: str
    n: int
    missing: int
    zeros: int
    mean: float | None
    sd: float | None
    minimum: float | None
    q05: float | None
    q25: float | None
    median: float | None
    q75: float | None
    q95: float | None
    maximum: float | None
    skew: float | None
    scale: str  # "linear" or "log1p" (histogram edges are log10(1 + x))
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class Exploration:
    """The summaries of every input column and their Spearman correlations."""

    n_rows: int
    columns: list[ColumnSummary]
    correlation_columns: list[str]
    correlation: list[list[float | None]]

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


def explore(frame: pd.DataFrame) -> Exploration:
    """Summaries of the schema's behaviour columns present in ``frame`` (validated portfolio).

    Correlations are Spearman's (rank) on pairwise-complete rows: amounts are too
    skewed for Pearson's to mean much.
    """
    cols = [c for c in schema.BEHAVIOUR if c in frame.columns]
    summaries = [_summary(c, pd.to_numeric(frame[c], errors="coerce")) for c in cols]
    corr = frame[cols].apply(pd.to_numeric, errors="coerce").corr(method="spearman")
    return Exploration(n_rows=len(frame), columns=summaries, correlation_columns=cols,
                       correlation=np.round(corr.to_numpy(dtype=float), 4).tolist())


def _summary(name: str, values: pd.Series) -> ColumnSummary:
    col = schema.BY_NAME[name]
    v = values.dropna().to_numpy(dtype=float)
    q = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95]) if len(v) else np.full(5, np.nan)
    skew = float(pd.Series(v).skew()) if len(v) > 2 else float("nan")
    log = bool(len(v) and v.min() >= 0 and skew > SKEW_FOR_LOG)
    shown = np.log10(1 + v) if log else v
    if len(v):
        counts, edges = np.histogram(shown, bins=BINS)
    else:
        counts, edges = np.zeros(0, dtype=int), np.zeros(0)
    return ColumnSummary(
        column=name, unit=col.unit, description=col.description, n=int(len(v)),
        missing=int(values.isna().sum()), zeros=int((v == 0).sum()),
        mean=float(v.mean()) if len(v) else float("nan"), sd=float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
        minimum=float(v.min()) if len(v) else float("nan"), q05=float(q[0]), q25=float(q[1]), median=float(q[2]),
        q75=float(q[3]), q95=float(q[4]), maximum=float(v.max()) if len(v) else float("nan"), skew=skew,
        scale="log1p" if log else "linear", edges=[round(float(e), 6) for e in edges],
        counts=[int(c) for c in counts])
