"""Drift: is the population being scored still the one the model was trained on?

At training, :func:`training_bins` stores, for every input column and model feature,
quantile bin edges and the share of training customers in each bin (plus the share
missing), and the 99th percentile of the training customers' distance to their
centre. At scoring, :func:`drift_report` computes the population stability index

    PSI = sum over bins of (new share - training share) x ln(new share / training share)

per column and feature, and the share of new customers farther from every centre
than that 99th percentile (about 1 % when nothing changed).

Levels follow the convention of credit-risk model monitoring: PSI below 0.1 is
*ok*, from 0.1 *watch* (a moderate shift), from 0.25 *drift* (a major shift: the
segments were fitted to a different population; re-segment).

Bins: interior edges are the training deciles (for ``n_bins=10``), duplicates
removed, so a column with many equal values (zeros) gets fewer, wider bins and a
constant column gets two (at most the constant, above it). A value ``v`` falls in
bin ``i`` when ``edge[i-1] < v <= edge[i]``. Shares are floored at
:data:`EPSILON` (1e-4) before the logarithm, so a bin empty on one side adds a
finite amount — (0.01 - 0.0001) x ln(100) ≈ 0.046 for 1 % of new customers in a
bin no training customer was in — instead of infinity.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ModelError

#: Floor on bin shares before the logarithm (see the module docstring).
EPSILON = 1e-4
#: PSI from which a column is worth watching.
WATCH_AT = 0.1
#: PSI from which a column has drifted.
DRIFT_AT = 0.25
#: Percentile of training distances beyond which a customer counts as far from every centre.
FAR_PERCENTILE = 99.0
#: Far share from which :meth:`DriftReport.warnings` warns: five times the 1 % expected without drift.
FAR_WARN_SHARE = 0.05
BINS_FORMAT = 1


def _edges(values: np.ndarray, n_bins: int) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.arange(1, n_bins) / n_bins) if n_bins > 1 else np.array([])
    return [float(e) for e in np.unique(np.concatenate([qs, [finite.min()]]))]


def _shares(values: np.ndarray, edges: list[float]) -> tuple[list[float], float]:
    """Share of values per bin (``len(edges) + 1`` bins) and the share missing."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        return [0.0] * (len(edges) + 1), 0.0
    finite = np.isfinite(values)
    counts = np.bincount(np.searchsorted(np.asarray(edges), values[finite], side="left"),
                         minlength=len(edges) + 1)
    return (counts / n).tolist(), float((~finite).sum() / n)


def _numeric(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(c): pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
            for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])}


def training_bins(frame_columns: pd.DataFrame, features: pd.DataFrame, n_bins: int = 10, *,
                  distances=None) -> dict:
    """The training distribution of every numeric input column and model feature, JSON-safe.

    Parameters
    ----------
    frame_columns : DataFrame
        The training portfolio's input columns (non-numeric ones, like the id, are skipped).
    features : DataFrame
        The model features of the same customers (e.g. ``Segmenter.embed`` with
        ``feature_names_out_`` as columns).
    n_bins : int, default 10
        Quantile bins per column (fewer when values repeat).
    distances : array-like, optional
        Training customers' distance to their centre; its 99th percentile is stored.

    Returns
    -------
    dict
        ``{"format", "n_bins", "columns": {name: {"edges", "shares", "missing"}},
        "features": {...}, "distance_p99"}``, for storing in ``model.json``.
    """
    if int(n_bins) != n_bins or n_bins < 2:
        raise ValueError(f"n_bins must be an integer of at least 2 (got {n_bins!r})")

    def describe(values: np.ndarray) -> dict:
        edges = _edges(values, int(n_bins))
        shares, missing = _shares(values, edges)
        return {"edges": edges, "shares": shares, "missing": missing}

    out = {
        "format": BINS_FORMAT,
        "n_bins": int(n_bins),
        "columns": {name: describe(v) for name, v in _numeric(frame_columns).items()},
        "features": {name: describe(v) for name, v in _numeric(features).items()},
        "distance_p99": None,
    }
    if distances is not None:
        d = np.asarray(distances, dtype=np.float64)
        out["distance_p99"] = float(np.percentile(d, FAR_PERCENTILE)) if d.size else None
    return out


def check_bins(bins, columns, features) -> None:
    """Check a stored training distribution as a whole; ``ValueError`` naming the damaged part.

    ``columns`` and ``features`` are the names the model uses: the stored tables may
    describe no other column or feature.
    """
    if not isinstance(bins, dict) or set(bins) != {"format", "n_bins", "columns", "features", "distance_p99"}:
        raise ValueError("'training_distribution' must be an object with format, n_bins, columns, features "
                         "and distance_p99")
    if bins["format"] != BINS_FORMAT or isinstance(bins["n_bins"], bool) or not isinstance(bins["n_bins"], int) \
            or bins["n_bins"] < 2:
        raise ValueError("'training_distribution' has an unknown format or a bad number of bins")
    p99 = bins["distance_p99"]
    if p99 is not None and (isinstance(p99, bool) or not isinstance(p99, (int, float)) or not math.isfinite(p99)
                            or p99 < 0):
        raise ValueError("'training_distribution' distance_p99 must be a non-negative number or null")
    for kind, names in (("columns", columns), ("features", features)):
        table = bins[kind]
        if not isinstance(table, dict):
            raise ValueError(f"'training_distribution' {kind} must be an object")
        unknown = [name for name in table if name not in set(names)]
        if unknown:
            raise ValueError(f"'training_distribution' {kind} names {', '.join(unknown)}, which the model does "
                             "not use")
        for name, stored in table.items():
            _check_column(stored, int(bins["n_bins"]), f"'training_distribution' {kind} {name}")


def _check_column(stored, n_bins: int, what: str) -> None:
    def numbers(value) -> np.ndarray:
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value):
            raise ValueError(f"{what} must hold lists of numbers")
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} holds a number that is not finite")
        return arr

    if not isinstance(stored, dict) or set(stored) != {"edges", "shares", "missing"}:
        raise ValueError(f"{what} must be an object with edges, shares and missing")
    edges, shares = numbers(stored["edges"]), numbers(stored["shares"])
    missing = numbers([stored["missing"]])[0]
    if edges.size > n_bins or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{what}: the bin edges must increase, at most {n_bins} of them")
    if shares.size != edges.size + 1 or np.any(shares < 0) or not 0 <= missing <= 1 \
            or abs(shares.sum() + missing - 1) > 1e-6:
        raise ValueError(f"{what}: the shares must be one per bin, non-negative, and add up to 1 with the "
                         "missing share")


def psi(bins: Mapping, new_values) -> float:
    """Population stability index of ``new_values`` against one stored column's bins.

    Missing values form their own bin. Returns NaN when there are no new values.
    """
    try:
        edges = [float(e) for e in bins["edges"]]
        expected = np.append(np.asarray(bins["shares"], dtype=np.float64), float(bins["missing"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"the stored training distribution is damaged ({type(exc).__name__}: {exc})") from None
    if expected.size != len(edges) + 2:
        raise ModelError("the stored training distribution is damaged (edges and shares disagree)")
    values = np.asarray(new_values, dtype=np.float64)
    if values.size == 0:
        return math.nan
    shares, missing = _shares(values, edges)
    return _index(expected, np.append(np.asarray(shares), missing))


def _index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of bin shares (the missing share last) against the training ones, both floored at :data:`EPSILON`."""
    e, a = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float) -> str:
    """``"drift"`` (PSI ≥ 0.25), ``"watch"`` (≥ 0.1) or ``"ok"``."""
    if value >= DRIFT_AT:
        return "drift"
    if value >= WATCH_AT:
        return "watch"
    return "ok"


@dataclass(frozen=True)
class ColumnDrift:
    """PSI of one input column (``kind="column"``) or model feature (``kind="feature"``)."""

    name: str
    kind: str
    psi: float
    level: str


@dataclass(frozen=True)
class DriftReport:
    """Drift of a scored population against the training one.

    Attributes
    ----------
    items : tuple of ColumnDrift
        Columns first, then features, each in stored order.
    far_share : float or None
        Share of new customers beyond the training 99th percentile of distance.
    distance_p99 : float or None
        That percentile.
    n_customers : int
    """

    items: tuple
    far_share: float | None
    distance_p99: float | None
    n_customers: int

    def at(self, lvl: str, kind: str | None = None) -> list[str]:
        """Names at a level (``"ok"``, ``"watch"``, ``"drift"``), optionally of one kind."""
        return [i.name for i in self.items if i.level == lvl and (kind is None or i.kind == kind)]

    @property
    def drifted(self) -> bool:
        return any(i.level != "ok" for i in self.items)

    def to_dict(self) -> dict:
        return {
            "n_customers": self.n_customers,
            "thresholds": {"watch": WATCH_AT, "drift": DRIFT_AT, "epsilon": EPSILON},
            "far_from_centres": {"share": self.far_share, "distance_p99": self.distance_p99,
                                 "expected_share": 1 - FAR_PERCENTILE / 100, "warn_at": FAR_WARN_SHARE},
            "columns": [{"name": i.name, "psi": i.psi, "level": i.level} for i in self.items if i.kind == "column"],
            "features": [{"name": i.name, "psi": i.psi, "level": i.level} for i in self.items
                         if i.kind == "feature"],
        }

    def warnings(self) -> list[str]:
        """Lines for standard error: one per drifted or watched column/feature, then a hint; none if all ok."""
        lines = []
        for lvl, label in (("drift", "DRIFT"), ("watch", "watch")):
            for i in self.items:
                if i.level == lvl:
                    kind = "column" if i.kind == "column" else "feature"
                    limit = DRIFT_AT if lvl == "drift" else WATCH_AT
                    lines.append(f"{label}: {kind} {i.name} PSI {i.psi:.2f} (≥ {limit:g})")
        if self.far_share is not None and self.far_share >= FAR_WARN_SHARE:
            lines.append(f"DRIFT: {self.far_share:.1%} of customers are farther from every segment centre than "
                         f"99 % of the training customers (expected about 1 %)")
        if any(line.startswith("DRIFT") for line in lines):
            lines.append("hint: the population has shifted since training; re-segment "
                         "(custseg run NEW --reference OLD_MODEL) to keep the segments meaningful")
        elif lines:
            lines.append("hint: moderate shifts; compare again next month, re-segment if they grow")
        return lines


def drift_report(bins: Mapping, new_frame: pd.DataFrame, new_features: pd.DataFrame, distances=None,
                 train_distance_p99: float | None = None) -> DriftReport:
    """PSI per stored column and feature, and the share of customers far from every centre.

    Parameters
    ----------
    bins : mapping
        :func:`training_bins` output (from the model file).
    new_frame : DataFrame
        The scored customers' input columns.
    new_features : DataFrame
        Their model features, same names as at training.
    distances : array-like, optional
        Their distance to the nearest centre.
    train_distance_p99 : float, optional
        Overrides ``bins["distance_p99"]``.

    Raises
    ------
    ModelError
        When the stored distribution is damaged or names a column the new data lack.
    """
    if not isinstance(bins, Mapping) or not isinstance(bins.get("columns"), Mapping) \
            or not isinstance(bins.get("features"), Mapping):
        raise ModelError("the model file's training distribution is damaged (no 'columns'/'features' tables)")
    items = []
    for kind, table, data in (("column", bins["columns"], new_frame), ("feature", bins["features"], new_features)):
        absent = [name for name in table if name not in data.columns]
        if absent:
            raise ModelError(f"the training distribution has {kind}(s) {', '.join(absent)} that the new data lack")
        for name, stored in table.items():
            value = psi(stored, pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=np.float64))
            items.append(ColumnDrift(name, kind, value, level(value) if np.isfinite(value) else "ok"))
    p99 = train_distance_p99 if train_distance_p99 is not None else bins.get("distance_p99")
    far = None
    if distances is not None and p99 is not None:
        d = np.asarray(distances, dtype=np.float64)
        far = float(np.mean(d > float(p99))) if d.size else None
    return DriftReport(items=tuple(items), far_share=far, distance_p99=None if p99 is None else float(p99),
                       n_customers=len(new_frame))


class DriftCounts:
    """:func:`drift_report` for customers scored batch by batch: bin counts gathered with :meth:`add`.

    The counts are exact, so :meth:`report` equals :func:`drift_report` on all the
    batches at once.

    Parameters
    ----------
    bins : mapping
        :func:`training_bins` output (from the model file).

    Raises
    ------
    ModelError
        When the stored distribution is damaged.
    """

    def __init__(self, bins: Mapping):
        if not isinstance(bins, Mapping) or not isinstance(bins.get("columns"), Mapping) \
                or not isinstance(bins.get("features"), Mapping):
            raise ModelError("the model file's training distribution is damaged (no 'columns'/'features' tables)")
        self.p99 = bins.get("distance_p99")
        self.tables = {}
        for kind, table in (("column", bins["columns"]), ("feature", bins["features"])):
            for name, stored in table.items():
                try:
                    edges = np.asarray([float(e) for e in stored["edges"]], dtype=np.float64)
                    expected = np.append(np.asarray(stored["shares"], dtype=np.float64), float(stored["missing"]))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ModelError(f"the stored training distribution is damaged ({type(exc).__name__}: {exc})") \
                        from None
                if expected.size != edges.size + 2:
                    raise ModelError("the stored training distribution is damaged (edges and shares disagree)")
                self.tables[kind, name] = (edges, expected)
        self.counts = {key: np.zeros(len(edges) + 2, dtype=np.int64) for key, (edges, _) in self.tables.items()}
        self.n = 0
        self.far = 0

    def add(self, columns: Mapping[str, np.ndarray], features: Mapping[str, np.ndarray],
            distances: np.ndarray) -> None:
        """Count one batch: its input columns and model features (float64 arrays by name) and each
        customer's distance to the nearest centre."""
        self.merge(self.counted(columns, features, distances))

    def merge(self, other: DriftCounts) -> None:
        """Add the counts of another :class:`DriftCounts` of the same training distribution."""
        for key, counts in self.counts.items():
            counts += other.counts[key]
        self.n += other.n
        self.far += other.far

    def merge_counts(self, counts: np.ndarray, n: int, far: int) -> None:
        """Add bin counts gathered elsewhere (:mod:`custseg.scoring_kernels`): a row per table in
        ``tables`` order, its bins then its missing count (rows padded), for ``n`` customers of
        whom ``far`` are beyond the training distance percentile."""
        for row, total in zip(counts, self.counts.values()):
            total += row[:len(total)]
        self.n += int(n)
        self.far += int(far) if self.p99 is not None else 0

    def counted(self, columns: Mapping[str, np.ndarray], features: Mapping[str, np.ndarray],
                distances: np.ndarray) -> DriftCounts:
        """The counts of one batch alone (as :meth:`add` takes it), for :meth:`merge`; safe in parallel."""
        batch = copy.copy(self)
        batch.counts = {key: np.zeros_like(counts) for key, counts in self.counts.items()}
        batch.n = batch.far = 0
        batch._count(columns, features, distances)
        return batch

    def _count(self, columns, features, distances) -> None:
        for kind, data in (("column", columns), ("feature", features)):
            absent = [name for k, name in self.tables if k == kind and name not in data]
            if absent:
                raise ModelError(f"the training distribution has {kind}(s) {', '.join(absent)} that the new data lack")
        distances = np.asarray(distances, dtype=np.float64)
        for (kind, name), (edges, _) in self.tables.items():
            values = np.asarray((columns if kind == "column" else features)[name], dtype=np.float64)
            finite = np.isfinite(values)
            if not finite.all():
                values = values[finite]
            # bin i holds edge[i-1] < v <= edge[i]: differences of the counts at or below each edge
            # (a comparison per edge is an order of magnitude faster than a binary search per value)
            at_or_below = np.array([np.count_nonzero(values <= e) for e in edges] + [len(values)], dtype=np.int64)
            counts = self.counts[kind, name]
            counts[:-1] += np.diff(at_or_below, prepend=0)
            counts[-1] += len(finite) - len(values)
        if self.p99 is not None:
            self.far += int(np.count_nonzero(distances > float(self.p99)))
        self.n += len(distances)

    def report(self) -> DriftReport:
        """The drift of every customer counted so far, as :func:`drift_report` gives it."""
        items = []
        for (kind, name), (_, expected) in self.tables.items():
            value = _index(expected, self.counts[kind, name] / self.n) if self.n else math.nan
            items.append(ColumnDrift(name, kind, value, level(value) if np.isfinite(value) else "ok"))
        far = self.far / self.n if self.p99 is not None and self.n else None
        return DriftReport(items=tuple(items), far_share=far,
                           distance_p99=None if self.p99 is None else float(self.p99), n_customers=self.n)
