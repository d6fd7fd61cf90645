"""Per-segment statistics in original units, and what sets each segment apart.

A :class:`Profiles` holds, for each segment, its size and share and the mean and
median of every input column and of the key behaviour measures, each with its ratio
to the portfolio mean. Segments are numbered from 1 (largest first) here and in
every output; the estimator's ``labels_`` count from 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import schema
from .features import FEATURES, DeriveBehaviour

# behaviour measures shown beside the raw columns, in original units
MEASURES = ("purchases_per_month", "cash_advance_per_month", "payments_per_month", "limit_utilisation",
            "oneoff_share", "payment_to_minimum", "average_purchase")
STATISTICS = ("mean", "median", "ratio")


@dataclass
class Profiles:
    """Segment profiles as plain tables.

    Attributes
    ----------
    sizes : DataFrame
        Index ``segment`` (1..k); columns ``size``, ``share``.
    stats : DataFrame
        Index ``segment``; columns a MultiIndex (variable, statistic) with statistic in
        ``mean``, ``median``, ``ratio`` (segment mean / portfolio mean).
    portfolio : DataFrame
        Index variable; columns ``mean``, ``median`` over all customers.
    """

    sizes: pd.DataFrame
    stats: pd.DataFrame
    portfolio: pd.DataFrame

    @property
    def variables(self) -> list[str]:
        return list(dict.fromkeys(self.stats.columns.get_level_values(0)))

    def wide(self) -> pd.DataFrame:
        """One row per segment, columns ``<variable>_<statistic>`` (for profiles.csv)."""
        flat = self.stats.copy()
        flat.columns = [f"{var}_{stat}" for var, stat in flat.columns]
        return self.sizes.join(flat)

    def to_dict(self) -> dict:
        segments = []
        for seg in self.sizes.index:
            row = self.stats.loc[seg]
            segments.append({
                "segment": int(seg),
                "size": int(self.sizes.at[seg, "size"]),
                "share": float(self.sizes.at[seg, "share"]),
                "variables": {var: {stat: row[(var, stat)] for stat in STATISTICS} for var in self.variables},
            })
        return {"segments": segments,
                "portfolio": {var: self.portfolio.loc[var].to_dict() for var in self.portfolio.index}}


def profile(frame: pd.DataFrame, labels: np.ndarray, n_segments: int) -> Profiles:
    """Describe each segment in original units.

    Parameters
    ----------
    frame : DataFrame
        The validated portfolio (canonical columns, repairs applied; missing values
        are skipped, not imputed, so the figures are what the bank recorded).
    labels : ndarray of int
        0-based segment of each row.
    n_segments : int
        Number of segments (a segment may be empty when scoring new data).
    """
    values = _variables(frame)
    segment = pd.Series(np.asarray(labels) + 1, index=values.index, name="segment")
    grouped = values.groupby(segment)
    index = pd.RangeIndex(1, n_segments + 1, name="segment")
    means = grouped.mean().reindex(index)
    medians = grouped.median().reindex(index)
    overall_mean = values.mean()
    ratios = means / overall_mean.where(overall_mean != 0)
    stats = pd.concat({"mean": means, "median": medians, "ratio": ratios}, axis=1)
    stats = stats.swaplevel(axis=1)[[(v, s) for v in values.columns for s in STATISTICS]]
    size = segment.value_counts().reindex(index, fill_value=0)
    sizes = pd.DataFrame({"size": size.astype(int), "share": size / max(len(values), 1)})
    portfolio = pd.DataFrame({"mean": overall_mean, "median": values.median()})
    return Profiles(sizes, stats, portfolio)


def _variables(frame: pd.DataFrame) -> pd.DataFrame:
    raw = frame[[c for c in schema.BEHAVIOUR if c in frame.columns]].astype("float64")
    derivable = [m for m in MEASURES if _has_sources(m, raw.columns)]
    if not derivable:
        return raw
    # ratios computed on recorded values; a missing input leaves that measure missing
    derived = DeriveBehaviour(features=derivable).fit(raw).transform(raw)
    for m in derivable:
        gaps = raw[list(FEATURES[m].sources)].isna().any(axis=1)
        derived.loc[gaps, m] = np.nan
    return pd.concat([raw, derived], axis=1)


def _has_sources(measure: str, columns) -> bool:
    return set(FEATURES[measure].sources) <= set(columns)
