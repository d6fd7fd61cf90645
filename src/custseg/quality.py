"""Validate a portfolio: refuse what cannot be used, repair what can, count everything.

The result is a :class:`QualityReport` — plain data, written as ``data_quality.json``
and shown in the report. Rules (each finding carries its own):

=====================================  ==========  ==============================================
problem                                severity    rule
=====================================  ==========  ==============================================
file has no rows                       fatal       stop
required column missing                fatal       stop (names near matches)
text in a numeric column               fatal       stop (names rows and values)
customer id empty or duplicated        fatal       stop
fewer rows than the run needs          fatal       stop
fewer distinct customers than k        fatal       stop (names the k flags to lower)
a required column with no value        fatal       stop
infinite or absurd magnitude           fatal       stop (names rows and values)
footer / summary row (no values, or    fatal       stop (names the rows)
  an id such as "Total")
share on a 0–100 scale (max above      repaired    divided by 100 (counted), when at least 20 %
  1.5 and at most 100)                             of its non-zero values exceed 1; otherwise stop
frequency/share above 1 or below 0     repaired    clipped to [0, 1]
negative amount or count               repaired    set to 0 (refused when negative in most non-zero
                                                   rows, at least 10: another sign convention)
a required column all invalid          fatal       stop (e.g. every TENURE 0: nothing to impute from)
CREDIT_LIMIT of 0                      repaired    treated as missing, then imputed
TENURE below 1                         repaired    treated as missing, then imputed
missing value                          imputed     by the feature pipeline's domain rule
PURCHASES != ONEOFF + INSTALLMENTS     warning     kept as reported (tolerance 1 currency unit)
constant column                        warning     kept; carries no information
BALANCE > CREDIT_LIMIT                 info        kept (over-limit accounts exist)
MINIMUM_PAYMENTS > PAYMENTS            info        kept
=====================================  ==========  ==============================================
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from . import schema
from .errors import DataError
from .jsonio import jsonable
from .load import Portfolio

MAX_EXAMPLES = 5
#: Negative values in at least this many rows, and in most non-zero rows, mean a column's sign convention
#: differs (debts written as negatives): refused rather than set to 0 row by row.
NEGATIVE_CONVENTION_ROWS = 10
#: Longest cell of the user's file quoted in a message.
QUOTE_CHARS = 40
#: Columns named in one message about text where numbers belong.
MAX_COLUMNS_SHOWN = 3
PURCHASE_SUM_TOLERANCE = 1.0
#: Above this, a frequency or share is not a rounding overshoot (the real file reaches 1.5) but another scale.
SHARE_OVERSHOOT = 1.5
#: Share of a column's non-zero values above 1 from which it is read as a percentage (0–100).
PERCENT_SCALE_SHARE = 0.2
#: Largest believable value per kind of column; above it a value is a unit or export error.
MAX_MAGNITUDE = {"amount": 1e11, "count": 1e7, "months": 1200.0, "frequency": 100.0, "share": 100.0}
#: Customer ids that mark a spreadsheet's summary line rather than a customer.
FOOTER_IDS = ("total", "totals", "grand total", "sum", "subtotal", "average", "mean", "count", "summary")


@dataclass
class Finding:
    """One check's outcome: what, where, how many, and what was done."""

    check: str
    severity: str  # fatal | repaired | imputed | warning | info
    count: int
    rule: str
    column: str | None = None
    examples: list[str] = field(default_factory=list)


@dataclass
class QualityReport:
    """Everything validation found, as plain data."""

    source: str
    n_rows: int
    columns_used: list[str]
    renamed: dict[str, str]
    ignored: list[str]
    empty_ignored: list[str]
    notes: list[str]
    missing: dict[str, int]
    findings: list[Finding]
    distribution: dict[str, dict[str, float | int]]

    def count(self, check: str, column: str | None = None) -> int:
        """Total count of the findings named ``check`` (optionally for one column)."""
        return sum(f.count for f in self.findings if f.check == check and (column is None or f.column == column))

    def to_dict(self) -> dict:
        return jsonable(asdict(self))

    def changes(self) -> list[str]:
        """One line per repair or imputation, for the command line's summary."""
        return [f"{f.count:,} × {f.rule}" for f in self.findings if f.severity in ("repaired", "imputed")]


def validate(portfolio: Portfolio, *, required: tuple[str, ...] | list[str] = schema.BEHAVIOUR,
             min_rows: int = 1, min_distinct: int = 1, whole: bool = True) -> tuple[Portfolio, QualityReport]:
    """Check and repair a portfolio.

    Parameters
    ----------
    portfolio : Portfolio
        As returned by :func:`custseg.load.load`. Not modified.
    required : sequence of str
        Canonical behaviour columns the run needs (the id is always required).
    min_rows : int
        Fewest customers the run can work with (e.g. two per segment at the largest k tried).
    min_distinct : int
        Fewest distinct customers (over ``required``) the run can work with: k-means
        cannot find more segments than there are different customers.
    whole : bool
        Also check what needs every row at once: repeated ids, constant columns, the
        shape facts and the distribution. ``False`` for a caller that validates a large
        file in batches and checks these on every row itself (:mod:`custseg.large`).

    Returns
    -------
    clean : Portfolio
        Numeric columns as float64 with repairs applied; missing values left for
        the feature pipeline to impute.
    report : QualityReport

    Raises
    ------
    DataError
        For every fatal problem, in one paragraph naming file, column and rows.
    """
    label = portfolio.source
    frame = portfolio.frame
    _require_columns(portfolio, required)
    if len(frame) == 0:
        raise DataError(f"{label} has a header but no customer rows; there is nothing to segment.")
    numeric_cols = [c for c in frame.columns if c != schema.ID]
    numbers = _to_numbers(frame, numeric_cols, label)
    _check_footer_rows(frame, numbers, label)
    if whole:
        _check_ids(frame, label)
    _check_magnitudes(numbers, label)
    _check_empty_columns(numbers, required, label)
    if len(frame) < min_rows:
        raise DataError(
            f"{label} has {len(frame)} customer rows but this run needs at least {min_rows} "
            "(two per segment at the largest number of segments evaluated); lower --k-max (and --k) "
            "or supply more customers."
        )
    _check_distinct(numbers, required, min_distinct, label)
    findings: list[Finding] = []
    ids = frame[schema.ID]
    missing = {c: int(numbers[c].isna().sum()) for c in numeric_cols}
    findings += _repair_ranges(numbers, ids, label)
    _check_unusable_columns(numbers, required, findings, label)
    findings += _missing_findings(numbers, ids, missing)
    findings += _consistency_findings(numbers, ids)
    if whole:
        findings += _constant_findings(numbers)
        findings += _shape_findings(numbers, ids)
    clean = pd.concat([frame[[schema.ID]], numbers], axis=1)
    report = QualityReport(
        source=label,
        n_rows=len(frame),
        columns_used=list(frame.columns),
        renamed=dict(portfolio.renamed),
        ignored=list(portfolio.ignored),
        empty_ignored=list(portfolio.empty_ignored),
        notes=list(portfolio.notes),
        missing=missing,
        findings=findings,
        distribution=_distribution(numbers) if whole else {},
    )
    return replace(portfolio, frame=clean), report


def _require_columns(portfolio: Portfolio, required) -> None:
    need = [schema.ID, *required]
    absent = [c for c in need if c not in portfolio.frame.columns]
    if not absent:
        return
    offered = portfolio.ignored
    hints = []
    for col in absent:
        near = difflib.get_close_matches(col.lower(), [o.lower() for o in offered], n=1, cutoff=0.6)
        if near:
            original = next(o for o in offered if o.lower() == near[0])
            hints.append(f"{_quote(original)} looks close to {col} but was not recognised")
    columns = [str(c) for c in portfolio.frame.columns.tolist() + offered]
    found = ", ".join(c[:40] for c in columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")
    found = found or "none"
    raise DataError(
        f"{portfolio.source} lacks required column{'s' if len(absent) > 1 else ''} {', '.join(absent)} "
        f"(columns found: {found})." + (f" {'; '.join(hints)}; rename it and run again." if hints else
                                         " Add the column or rename the header that holds it.")
    )


def _to_numbers(frame: pd.DataFrame, cols: list[str], label: str) -> pd.DataFrame:
    _refuse_repeated_headers(frame, cols, label)
    out = {}
    problems = []
    for col in cols:
        raw = frame[col]
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            out[col] = raw.astype("float64")
            continue
        text = raw.astype("string").str.strip()
        text = text.where(text.ne(""), pd.NA)
        number = pd.to_numeric(text, errors="coerce")
        bad = number.isna() & text.notna()
        if bad.any():
            where = np.flatnonzero(bad.to_numpy())
            shown = ", ".join(f"row {i + 1} ({_quote(text.iloc[i])})" for i in where[:MAX_EXAMPLES])
            problems.append(f"column {col} holds text where a number is expected in {bad.sum()} "
                            f"row{'s' if bad.sum() > 1 else ''}: {shown}")
        out[col] = number.astype("float64")
    if problems:
        more = f"; and so in {len(problems) - MAX_COLUMNS_SHOWN} more columns" if len(problems) > MAX_COLUMNS_SHOWN else ""
        raise DataError(f"{label}: " + "; ".join(problems[:MAX_COLUMNS_SHOWN]) + more +
                        ". Rows are counted from 1 after the header; fix or remove these values and run again.")
    return pd.DataFrame(out, index=frame.index)


def _refuse_repeated_headers(frame: pd.DataFrame, cols: list[str], label: str) -> None:
    """Rows that spell the column names again: two exports joined into one file."""
    named = pd.DataFrame({c: frame[c].astype("string").str.strip().map(schema.canonical_name, na_action="ignore")
                          .eq(c).fillna(False) for c in cols if not pd.api.types.is_numeric_dtype(frame[c])})
    if named.empty:
        return
    rows = np.flatnonzero(named.sum(axis=1).to_numpy() >= min(3, len(cols)))
    if len(rows):
        raise DataError(f"{label}: {_rowlist(rows)} repeat{'s' if len(rows) == 1 else ''} the header line (the "
                        "column names where numbers belong), as when two exports are joined into one file. "
                        "Remove the repeated header lines and run again.")


def _check_footer_rows(frame: pd.DataFrame, numbers: pd.DataFrame, label: str) -> None:
    ids = frame[schema.ID]
    word = ids.astype("string").str.strip().str.lower().str.rstrip(":").isin(FOOTER_IDS).fillna(False)
    blank = numbers.isna().all(axis=1) if len(numbers.columns) else pd.Series(False, index=frame.index)
    bad = (word | blank).to_numpy()
    if bad.all() and not word.any():
        raise DataError(f"{label}: every numeric value is empty; there is nothing to segment. "
                        "Check that the export holds the data and not only the customer ids.")
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"row {i + 1} ({_quote(ids.iloc[i])})" for i in rows[:MAX_EXAMPLES])
        raise DataError(f"{label}: {len(rows)} row(s) look like a footer or summary line rather than a customer "
                        f"(an id such as 'Total', or no value in any column): {shown}. "
                        "Remove them and run again.")


def _check_magnitudes(numbers: pd.DataFrame, label: str) -> None:
    problems = []
    for col in numbers.columns:
        values = numbers[col].to_numpy()
        limit = MAX_MAGNITUDE.get(schema.BY_NAME[col].kind, np.inf)
        bad = ~np.isfinite(values) & ~np.isnan(values) | (np.abs(np.nan_to_num(values)) > limit)
        if bad.any():
            rows = np.flatnonzero(bad)
            shown = ", ".join(f"row {i + 1} ({values[i]:g})" for i in rows[:MAX_EXAMPLES])
            problems.append(f"column {col} holds {len(rows)} infinite or implausible value(s) (above {limit:g}): "
                            f"{shown}")
    if problems:
        raise DataError(f"{label}: " + "; ".join(problems) + ". These are export or unit errors, not customers; "
                        "fix or remove the rows and run again.")


def _check_empty_columns(numbers: pd.DataFrame, required, label: str) -> None:
    empty = [c for c in required if c in numbers and numbers[c].isna().all()]
    if empty:
        raise DataError(f"{label}: column{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                        f"{'have' if len(empty) > 1 else 'has'} no value in any row, so nothing can be learnt "
                        "or imputed from it. Export the column's values (or choose --features that do not need it).")


def _check_unusable_columns(numbers: pd.DataFrame, required, findings: list[Finding], label: str) -> None:
    """A required column whose every value was invalid (all TENURE 0, all CREDIT_LIMIT 0) is as empty as one
    without values: imputing all of it would invent the column."""
    for col in required:
        if col in numbers and numbers[col].isna().all():
            rule = next((f.rule for f in findings if f.column == col and f.check == "out_of_range"), "invalid")
            raise DataError(f"{label}: column {col} has no usable value: every value is invalid ({rule}), so "
                            "nothing can be learnt or imputed from it. Check the export of this column.")


def _check_distinct(numbers: pd.DataFrame, required, min_distinct: int, label: str) -> None:
    cols = [c for c in required if c in numbers]
    if min_distinct <= 1 or not cols:
        return
    distinct = len(numbers[cols].drop_duplicates())
    if distinct < 2:
        raise DataError(f"{label}: all {len(numbers)} customers have identical values in the columns the features "
                        "use, so there is nothing to segment. Check the export.")
    if distinct < min_distinct:
        raise DataError(f"{label} has {len(numbers)} customers but only {distinct} distinct one(s) over the "
                        f"columns the features use, and this run asks for up to {min_distinct} segments; "
                        f"k-means cannot find more segments than distinct customers. Use --k-max "
                        f"{max(distinct, 2)} or lower (and --k no higher), or check the export.")


def _check_ids(frame: pd.DataFrame, label: str) -> None:
    ids = frame[schema.ID]
    empty = ids.isna()
    if empty.any():
        rows = np.flatnonzero(empty.to_numpy())
        raise DataError(f"{label}: column {schema.ID} is empty in {empty.sum()} row(s) ({_rowlist(rows)}); "
                        "every customer needs an id.")
    dup = ids.duplicated(keep=False)
    if dup.any():
        first = ids[dup].iloc[0]
        rows = np.flatnonzero((ids == first).to_numpy())
        raise DataError(
            f"{label}: column {schema.ID} repeats {ids[dup].nunique()} id(s) over {dup.sum()} rows; "
            f"for example {_quote(first)} is in {_rowlist(rows)}. Each customer must appear once: "
            "remove or merge the duplicates."
        )


def _quote(value, marks: str = "'") -> str:
    """A cell of the user's file as a message shows it: on one line, at most :data:`QUOTE_CHARS` long."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    text = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"
    return f"{marks}{text}{marks}"


def _rowlist(rows: np.ndarray) -> str:
    shown = ", ".join(str(i + 1) for i in rows[:MAX_EXAMPLES])
    more = f" and {len(rows) - MAX_EXAMPLES} more" if len(rows) > MAX_EXAMPLES else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _examples(mask: pd.Series, ids: pd.Series) -> list[str]:
    rows = np.flatnonzero(mask.to_numpy())[:MAX_EXAMPLES]
    return [f"row {i + 1} ({_quote(ids.iloc[i], marks='')})" for i in rows]


def _repair_ranges(numbers: pd.DataFrame, ids: pd.Series, label: str) -> list[Finding]:
    findings = []
    for col in numbers.columns:
        spec = schema.BY_NAME[col]
        values = numbers[col]
        if spec.kind in ("frequency", "share"):
            percent = _percent_scale(values, col, ids, label)
            if percent is not None:
                findings.append(percent)
                numbers[col] = values = values / 100.0
            high = values > 1
            if high.any():
                findings.append(Finding("above_one", "repaired", int(high.sum()),
                                        f"{col} above 1 (max {values.max():g}) clipped to 1",
                                        col, _examples(high, ids)))
                numbers.loc[high, col] = 1.0
        low = values < 0
        if low.sum() >= NEGATIVE_CONVENTION_ROWS and low.sum() > 0.5 * (values != 0).sum():
            raise DataError(f"{label}: column {col} is negative in {int(low.sum())} of {int(values.notna().sum())} "
                            f"rows ({', '.join(_examples(low, ids)[:3])}), but a {spec.kind} is never negative: "
                            "the export writes it with another sign convention. Flip the sign of the column "
                            "(or fix the export) and run again.")
        if low.any():
            findings.append(Finding("negative", "repaired", int(low.sum()),
                                    f"negative {col} (min {values.min():g}) set to 0", col, _examples(low, ids)))
            numbers.loc[low, col] = 0.0
    for col, bad_rule, test in (("CREDIT_LIMIT", "CREDIT_LIMIT of 0 treated as missing", lambda v: v == 0),
                                ("TENURE", "TENURE below 1 month treated as missing", lambda v: v < 1)):
        if col in numbers:
            bad = test(numbers[col])
            if bad.any():
                findings.append(Finding("out_of_range", "repaired", int(bad.sum()), bad_rule, col,
                                        _examples(bad, ids)))
                numbers.loc[bad, col] = np.nan
    return findings


def _percent_scale(values: pd.Series, col: str, ids: pd.Series, label: str) -> Finding | None:
    """A share written as 0–100 (percent) instead of 0–1: detected, or refused when ambiguous."""
    top = values.max()
    if not top > SHARE_OVERSHOOT:
        return None
    nonzero = values[values > 0]
    above = int((nonzero > 1).sum())
    if top <= 100 and above >= PERCENT_SCALE_SHARE * len(nonzero):
        return Finding("percent_scale", "repaired", int(values.notna().sum()),
                       f"{col} is on a 0–100 scale ({above} of {len(nonzero)} non-zero values above 1, max {top:g}); "
                       "divided by 100", col, _examples(values > 1, ids))
    rows = np.flatnonzero((values > SHARE_OVERSHOOT).to_numpy())
    shown = ", ".join(f"row {i + 1} ({values.iloc[i]:g})" for i in rows[:MAX_EXAMPLES])
    raise DataError(f"{label}: column {col} is a share between 0 and 1, but {len(rows)} value(s) are far above 1 ({shown}) "
                    f"while most are not, so it is neither a 0–1 nor a 0–100 column. Fix these values and run again.")


def _missing_findings(numbers: pd.DataFrame, ids: pd.Series, missing: dict[str, int]) -> list[Finding]:
    findings = []
    for col, n in missing.items():
        if n:
            findings.append(Finding("missing", "imputed", n, f"{col} empty; imputed by the feature pipeline",
                                    col, _examples(numbers[col].isna(), ids)))
    if {"MINIMUM_PAYMENTS", "PAYMENTS"} <= set(numbers.columns):
        both = numbers["MINIMUM_PAYMENTS"].isna() & (numbers["PAYMENTS"] == 0)
        if both.any():
            findings.append(Finding("missing_where_no_payment", "info", int(both.sum()),
                                    "MINIMUM_PAYMENTS empty where PAYMENTS = 0 (imputed as 0)",
                                    "MINIMUM_PAYMENTS", _examples(both, ids)))
    return findings


def _consistency_findings(numbers: pd.DataFrame, ids: pd.Series) -> list[Finding]:
    checks = []
    cols = set(numbers.columns)
    if {"PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES"} <= cols:
        gap = numbers["PURCHASES"] - numbers["ONEOFF_PURCHASES"] - numbers["INSTALLMENTS_PURCHASES"]
        bad = gap.abs() > PURCHASE_SUM_TOLERANCE
        checks.append(("purchase_sum_mismatch", "warning", bad, "PURCHASES",
                       f"PURCHASES differs from ONEOFF_PURCHASES + INSTALLMENTS_PURCHASES by more than "
                       f"{PURCHASE_SUM_TOLERANCE:g} (largest gap {gap.abs().max():g}); kept as reported"))
    if {"BALANCE", "CREDIT_LIMIT"} <= cols:
        checks.append(("balance_above_limit", "info", numbers["BALANCE"] > numbers["CREDIT_LIMIT"], "BALANCE",
                       "BALANCE exceeds CREDIT_LIMIT (over-limit account); kept"))
    if {"MINIMUM_PAYMENTS", "PAYMENTS"} <= cols:
        checks.append(("minimum_above_payments", "info", numbers["MINIMUM_PAYMENTS"] > numbers["PAYMENTS"],
                       "MINIMUM_PAYMENTS", "MINIMUM_PAYMENTS exceeds PAYMENTS; kept"))
    return [Finding(name, sev, int(mask.sum()), rule, col, _examples(mask, ids))
            for name, sev, mask, col, rule in checks if mask.any()]


def _constant_findings(numbers: pd.DataFrame) -> list[Finding]:
    return [Finding("constant", "warning", len(numbers), f"{col} has one value ({numbers[col].dropna().iloc[0]:g}) "
                    "for every customer; it cannot tell segments apart", col)
            for col in numbers.columns
            if numbers[col].notna().any() and numbers[col].nunique(dropna=True) == 1]


SKEW_THRESHOLD = 2.0


def _shape_findings(numbers: pd.DataFrame, ids: pd.Series) -> list[Finding]:
    """Facts about the distribution that explain the feature transforms; nothing is changed."""
    out = []
    for col in numbers.columns:
        skew = numbers[col].skew()
        if schema.BY_NAME[col].kind in ("amount", "count") and skew > SKEW_THRESHOLD:
            out.append(Finding("heavy_skew", "info", int(numbers[col].notna().sum()),
                               f"{col} is heavily right-skewed (skewness {skew:.1f}); amounts enter the model "
                               "on a log scale", col))
    facts = (("no_purchases", "PURCHASES", lambda v: v == 0, "made no purchase in the window"),
             ("no_cash_advance", "CASH_ADVANCE", lambda v: v == 0, "took no cash advance in the window"),
             ("short_tenure", "TENURE", lambda v: v < 12, "observed for fewer than 12 months; "
                                                           "amounts are compared per month"))
    for name, col, test, what in facts:
        if col in numbers:
            mask = test(numbers[col])
            if mask.any():
                out.append(Finding(name, "info", int(mask.sum()), f"{int(mask.sum())} customers {what}", col,
                                   _examples(mask, ids)))
    return out


def _distribution(numbers: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    out = {}
    for col in numbers.columns:
        v = numbers[col]
        out[col] = {
            "min": v.min(), "median": v.median(), "mean": v.mean(), "max": v.max(),
            "skewness": v.skew(), "zeros": int((v == 0).sum()), "missing": int(v.isna().sum()),
        }
    if "TENURE" in numbers:
        out["TENURE"]["at_12_months"] = int((numbers["TENURE"] == 12).sum())
    return out


# ------------------------------------------------------------------ validation in batches

class _Rows:
    """Rows that break one rule over every batch: how many, and the first :data:`MAX_EXAMPLES` as text."""

    def __init__(self):
        self.count = 0
        self.shown: list[tuple[int, str]] = []

    def add(self, mask: np.ndarray, offset: int, describe) -> None:
        n = int(np.count_nonzero(mask))
        if not n:
            return
        self.count += n
        room = MAX_EXAMPLES - len(self.shown)
        if room > 0:
            self.shown += [(offset + int(i), describe(int(i))) for i in np.flatnonzero(mask)[:room]]

    def merge(self, later: _Rows) -> None:
        """Add the rows of a later batch."""
        self.count += later.count
        self.shown += later.shown[:MAX_EXAMPLES - len(self.shown)]

    def examples(self) -> list[str]:
        return [f"row {row + 1} ({text})" for row, text in self.shown]


class _Extreme:
    """Largest (or smallest) value over every batch, skipping missing values; NaN when there is none."""

    def __init__(self, largest: bool):
        self.pick = np.fmax if largest else np.fmin
        self.value = np.nan

    def add(self, values: np.ndarray) -> None:
        if len(values):
            self.value = float(self.pick(self.value, self.pick.reduce(values)))

    def merge(self, other: _Extreme) -> None:
        self.value = float(self.pick(self.value, other.value))


class _Moments:
    """Count, mean and second and third central moments of the non-missing values, merged batch by batch
    (Chan, Golub and LeVeque's pairwise update), for the sample skewness pandas' ``Series.skew`` gives."""

    def __init__(self):
        self.n, self.mean, self.m2, self.m3 = 0, np.float64(0.0), np.float64(0.0), np.float64(0.0)

    def add(self, values: np.ndarray) -> None:
        """Merge a batch's values (no missing ones)."""
        batch = _Moments()
        batch.n = len(values)
        if batch.n:
            with np.errstate(all="ignore"):  # values too large to square are refused by validation later
                batch.mean = values.mean()
                d = values - batch.mean
                square = d * d
                batch.m2, batch.m3 = square.sum(), (square * d).sum()
            self.merge(batch)

    def merge(self, b: _Moments) -> None:
        """Merge the moments of other values (Chan, Golub and LeVeque's pairwise update)."""
        if not b.n:
            return
        if not self.n:
            self.n, self.mean, self.m2, self.m3 = b.n, b.mean, b.m2, b.m3
            return
        na, nb = self.n, b.n
        n = na + nb
        with np.errstate(all="ignore"):
            delta = b.mean - self.mean
            self.m3 += b.m3 + delta ** 3 * na * nb * (na - nb) / n ** 2 + 3 * delta * (na * b.m2 - nb * self.m2) / n
            self.m2 += b.m2 + delta ** 2 * na * nb / n
            self.mean += delta * nb / n
        self.n = n

    def skew(self) -> float:
        if self.n < 3:
            return np.nan
        m2 = 0.0 if abs(self.m2) < 1e-14 else self.m2
        m3 = 0.0 if abs(self.m3) < 1e-14 else self.m3
        if m2 == 0:
            return 0.0
        n = self.n
        with np.errstate(all="ignore"):
            return float(n * (n - 1) ** 0.5 / (n - 2) * (m3 / m2 ** 1.5))


class _Column:
    """What validation gathers about one numeric column over every batch."""

    def __init__(self):
        self.text = _Rows()            # text where a number is expected
        self.magnitude = _Rows()       # infinite or implausible values
        self.missing = 0               # before the repairs
        self.valid = 0                 # values before the repairs
        self.top, self.positive, self.above_one = _Extreme(True), 0, _Rows()  # shares: is it 0–100?
        self.far_above = _Rows()       # shares above SHARE_OVERSHOOT
        self.high, self.high_max = _Rows(), _Extreme(True)
        self.low, self.low_min, self.not_zero = _Rows(), _Extreme(False), 0
        self.invalid = _Rows()         # CREDIT_LIMIT 0, TENURE below 1
        self.gaps = _Rows()            # missing after the repairs
        self.left = 0                  # values after the repairs
        self.least, self.most, self.first = _Extreme(False), _Extreme(True), None
        self.moments = _Moments()

    def merge(self, later: _Column) -> None:
        """Add what a later batch gathered."""
        for name, value in vars(later).items():
            mine = getattr(self, name)
            if isinstance(value, int):
                setattr(self, name, mine + value)
            elif name == "first":
                self.first = mine if mine is not None else value
            else:
                mine.merge(value)


class _Gathered:
    """Everything validation gathers over some batches; :meth:`merge` adds a later batch's."""

    def __init__(self, columns):
        self.n_rows = 0
        self.stats = {c: _Column() for c in columns}
        self.headers = _Rows()
        self.footers = _Rows()
        self.footer_words = 0
        self.blank_ids = _Rows()
        self.facts = {name: _Rows() for name in ("missing_where_no_payment", "purchase_sum_mismatch",
                                                 "balance_above_limit", "minimum_above_payments",
                                                 "no_purchases", "no_cash_advance", "short_tenure")}
        self.largest_gap = _Extreme(True)

    def merge(self, later: _Gathered) -> None:
        self.n_rows += later.n_rows
        self.footer_words += later.footer_words
        for name in ("headers", "footers", "blank_ids", "largest_gap"):
            getattr(self, name).merge(getattr(later, name))
        for col, column in self.stats.items():
            column.merge(later.stats[col])
        for name, rows in self.facts.items():
            rows.merge(later.facts[name])


class BatchValidator:
    """:func:`validate` for a table that arrives in batches, on NumPy columns.

    The same rules, counts, examples, messages and repairs as :func:`validate` gives
    for the whole table at once, with rows counted over the whole table: each batch is
    checked and repaired by :meth:`add`, and :meth:`report` raises the problem
    :func:`validate` would have raised first, or returns the report. A rule that
    depends on the whole column is decided on the whole column: a share written as
    0–100 is divided by 100 in every batch or in none, as :meth:`percent_scale` says
    once every batch was seen (when that differs from ``percent_scale`` given here,
    the batches must be validated again with the answer). The report has no value
    distribution (its medians would need every value at once); the skewness behind
    the "heavy_skew" finding comes from merged central moments (equal to pandas'
    to rounding).

    Parameters
    ----------
    label : str
        The source, for messages.
    columns : sequence of str
        Canonical numeric columns of the table, in schema order.
    required : sequence of str
        Columns the model needs, as :func:`validate`'s ``required``.
    percent_scale : collection of str
        Share and frequency columns to divide by 100 in every batch.
    """

    def __init__(self, label: str, columns, *, required=schema.BEHAVIOUR, percent_scale=frozenset()):
        self.label = label
        self.columns = list(columns)
        self.required = list(required)
        self.percent = frozenset(percent_scale)
        self.total = _Gathered(self.columns)

    def add(self, ids, columns: dict) -> dict[str, np.ndarray]:
        """Check and repair the next batch: :meth:`check` and :meth:`merge` in one."""
        gathered, numbers = self.check(ids, columns, self.total.n_rows)
        self.merge(gathered)
        return numbers

    def merge(self, gathered: _Gathered) -> None:
        """Count a checked batch in; batches must be merged in table order (examples are the first rows)."""
        self.total.merge(gathered)

    def check(self, ids, columns: dict, offset: int) -> tuple[_Gathered, dict[str, np.ndarray]]:
        """Check and repair one batch, whose first row is row ``offset`` of the table; safe in parallel.

        ``ids`` is a pyarrow string array (the ids as :func:`custseg.load.load` gives
        them: stripped text, null when empty); ``columns`` maps each numeric column to a
        float64 array, or to a pandas Series of text to be read as numbers. Returns what
        the batch shows (for :meth:`merge`) and its repaired columns (float64, missing
        values left for the feature pipeline).
        """
        n = len(ids)
        g = _Gathered(self.columns)
        g.n_rows = n
        text_of = lambda i: _quote(_id_at(ids, i), marks="")  # noqa: E731 - an id as the examples show it
        numbers = self._numbers(g, columns, offset)
        self._footers(g, ids, numbers, offset, n)
        g.blank_ids.add(np.asarray(ids.is_null()), offset, text_of)
        for col, values in numbers.items():
            s = g.stats[col]
            limit = MAX_MAGNITUDE.get(schema.BY_NAME[col].kind, np.inf)
            with np.errstate(invalid="ignore"):
                s.magnitude.add(np.abs(values) > limit, offset, lambda i, v=values: f"{v[i]:g}")
            nan = np.isnan(values)
            s.missing += int(np.count_nonzero(nan))
            s.valid += n - int(np.count_nonzero(nan))
        for col in self.columns:
            numbers[col] = self._repair(g, col, numbers[col], offset, text_of)
        for col, values in numbers.items():
            s = g.stats[col]
            nan = np.isnan(values)
            s.gaps.add(nan, offset, text_of)
            kept = values[~nan] if nan.any() else values
            s.left += len(kept)
            s.least.add(kept)
            s.most.add(kept)
            if s.first is None and len(kept):
                s.first = float(kept[0])
            if schema.BY_NAME[col].kind in ("amount", "count"):
                s.moments.add(kept)
        self._facts(g, numbers, offset, text_of)
        return g, numbers

    def _numbers(self, g: _Gathered, columns: dict, offset: int) -> dict[str, np.ndarray]:
        text = {c: v for c, v in columns.items() if not isinstance(v, np.ndarray)}
        if text:
            named = pd.DataFrame({c: v.astype("string").str.strip().map(schema.canonical_name, na_action="ignore")
                                  .eq(c).fillna(False) for c, v in text.items()})
            g.headers.add(named.sum(axis=1).to_numpy() >= min(3, len(self.columns)), offset, lambda i: "")
        out = {}
        for col in self.columns:
            values = columns[col]
            if isinstance(values, np.ndarray):
                out[col] = values
                continue
            raw = values.astype("string").str.strip()
            raw = raw.where(raw.ne(""), pd.NA)
            number = pd.to_numeric(raw, errors="coerce")
            g.stats[col].text.add((number.isna() & raw.notna()).to_numpy(), offset,
                                     lambda i, r=raw: _quote(r.iloc[i]))
            out[col] = number.to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def _footers(self, g: _Gathered, ids, numbers: dict, offset: int, n: int) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        words = pc.is_in(pc.utf8_rtrim(pc.utf8_lower(ids), characters=":"), value_set=pa.array(FOOTER_IDS))
        word = np.asarray(pc.fill_null(words, False))
        blank = np.zeros(n, dtype=bool)
        if numbers:
            blank = np.ones(n, dtype=bool)
            for values in numbers.values():
                blank &= np.isnan(values)
        g.footer_words += int(np.count_nonzero(word))
        g.footers.add(word | blank, offset, lambda i: _quote(_id_at(ids, i)))

    def _repair(self, g: _Gathered, col: str, values: np.ndarray, offset: int, text_of) -> np.ndarray:
        s = g.stats[col]
        kind = schema.BY_NAME[col].kind
        values = values.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):
            if kind in ("frequency", "share"):
                s.top.add(values)
                s.positive += int(np.count_nonzero(values > 0))
                s.above_one.add(values > 1, offset, text_of)
                s.far_above.add(values > SHARE_OVERSHOOT, offset, lambda i, v=values: f"{v[i]:g}")
                if col in self.percent:
                    values = values / 100.0
                high = values > 1
                s.high_max.add(values)
                s.high.add(high, offset, text_of)
                values = _set(values, high, 1.0)
            low = values < 0
            s.low.add(low, offset, text_of)
            if s.low.count:
                s.low_min.add(values)
            s.not_zero += int(np.count_nonzero(values != 0))
            values = _set(values, low, 0.0)
            if col in ("CREDIT_LIMIT", "TENURE"):
                bad = values == 0 if col == "CREDIT_LIMIT" else values < 1
                s.invalid.add(bad, offset, text_of)
                values = _set(values, bad, np.nan)
        return values

    def _facts(self, g: _Gathered, numbers: dict, offset: int, text_of) -> None:
        has = set(numbers)
        f = g.facts
        with np.errstate(invalid="ignore"):
            if {"MINIMUM_PAYMENTS", "PAYMENTS"} <= has:
                f["missing_where_no_payment"].add(np.isnan(numbers["MINIMUM_PAYMENTS"]) & (numbers["PAYMENTS"] == 0),
                                                  offset, text_of)
                f["minimum_above_payments"].add(numbers["MINIMUM_PAYMENTS"] > numbers["PAYMENTS"], offset, text_of)
            if {"PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES"} <= has:
                gap = np.abs(numbers["PURCHASES"] - numbers["ONEOFF_PURCHASES"] - numbers["INSTALLMENTS_PURCHASES"])
                g.largest_gap.add(gap)
                f["purchase_sum_mismatch"].add(gap > PURCHASE_SUM_TOLERANCE, offset, text_of)
            if {"BALANCE", "CREDIT_LIMIT"} <= has:
                f["balance_above_limit"].add(numbers["BALANCE"] > numbers["CREDIT_LIMIT"], offset, text_of)
            for name, col, test in (("no_purchases", "PURCHASES", lambda v: v == 0),
                                    ("no_cash_advance", "CASH_ADVANCE", lambda v: v == 0),
                                    ("short_tenure", "TENURE", lambda v: v < 12)):
                if col in has:
                    f[name].add(test(numbers[col]), offset, text_of)

    def percent_scale(self) -> frozenset[str]:
        """Share and frequency columns that the whole table shows on a 0–100 scale (see :func:`validate`)."""
        found = set()
        for col, s in self.total.stats.items():
            top = s.top.value
            if schema.BY_NAME[col].kind in ("frequency", "share") and top > SHARE_OVERSHOOT and top <= 100 \
                    and s.above_one.count >= PERCENT_SCALE_SHARE * s.positive:
                found.add(col)
        return frozenset(found)

    def report(self, portfolio: Portfolio, duplicates=None) -> QualityReport:
        """The report of every batch added, or the :class:`DataError` :func:`validate` would raise first.

        ``portfolio`` gives the source's description (columns, renames, notes; its frame
        may be empty); ``duplicates`` is called, where :func:`validate` checks for
        repeated ids, for the message about them (``None`` when every id is unique).
        """
        percent = self.percent_scale()
        if percent != self.percent:
            raise ValueError(f"validated with {sorted(self.percent)} on a 0-100 scale, but the data say "
                             f"{sorted(percent)}; validate the batches again with percent_scale={sorted(percent)}")
        label = self.label
        if self.total.n_rows == 0:
            raise DataError(f"{label} has a header but no customer rows; there is nothing to segment.")
        self._raise_unreadable()
        if self.total.blank_ids.count:
            raise DataError(f"{label}: column {schema.ID} is empty in {self.total.blank_ids.count} row(s) "
                            f"({_rows_of(self.total.blank_ids)}); every customer needs an id.")
        message = duplicates() if duplicates is not None else None
        if message:
            raise DataError(message)
        self._raise_implausible()
        findings = self._repair_findings()
        missing = {c: s.missing for c, s in self.total.stats.items()}
        findings += self._missing_findings(missing)
        findings += self._consistency_findings()
        findings += [Finding("constant", "warning", self.total.n_rows, f"{col} has one value ({s.first:g}) for every "
                             "customer; it cannot tell segments apart", col)
                     for col, s in self.total.stats.items() if s.left and s.least.value == s.most.value]
        findings += self._shape_findings()
        return QualityReport(source=label, n_rows=self.total.n_rows, columns_used=list(portfolio.frame.columns),
                             renamed=dict(portfolio.renamed), ignored=list(portfolio.ignored),
                             empty_ignored=list(portfolio.empty_ignored), notes=list(portfolio.notes),
                             missing=missing, findings=findings, distribution={})

    def _raise_unreadable(self) -> None:
        label = self.label
        if self.total.headers.count:
            rows = self.total.headers
            raise DataError(f"{label}: {_rows_of(rows)} repeat{'s' if rows.count == 1 else ''} the header line (the "
                            "column names where numbers belong), as when two exports are joined into one file. "
                            "Remove the repeated header lines and run again.")
        problems = [f"column {col} holds text where a number is expected in {s.text.count} "
                    f"row{'s' if s.text.count > 1 else ''}: {', '.join(s.text.examples())}"
                    for col, s in self.total.stats.items() if s.text.count]
        if problems:
            more = (f"; and so in {len(problems) - MAX_COLUMNS_SHOWN} more columns"
                    if len(problems) > MAX_COLUMNS_SHOWN else "")
            raise DataError(f"{label}: " + "; ".join(problems[:MAX_COLUMNS_SHOWN]) + more +
                            ". Rows are counted from 1 after the header; fix or remove these values and run again.")
        if self.total.footers.count == self.total.n_rows and not self.total.footer_words:
            raise DataError(f"{label}: every numeric value is empty; there is nothing to segment. "
                            "Check that the export holds the data and not only the customer ids.")
        if self.total.footers.count:
            raise DataError(f"{label}: {self.total.footers.count} row(s) look like a footer or summary line "
                            f"rather than a customer (an id such as 'Total', or no value in any column): "
                            f"{', '.join(self.total.footers.examples())}. Remove them and run again.")

    def _raise_implausible(self) -> None:
        label = self.label
        problems = [f"column {col} holds {s.magnitude.count} infinite or implausible value(s) (above "
                    f"{MAX_MAGNITUDE.get(schema.BY_NAME[col].kind, np.inf):g}): {', '.join(s.magnitude.examples())}"
                    for col, s in self.total.stats.items() if s.magnitude.count]
        if problems:
            raise DataError(f"{label}: " + "; ".join(problems) + ". These are export or unit errors, not customers; "
                            "fix or remove the rows and run again.")
        empty = [c for c in self.required if c in self.total.stats and not self.total.stats[c].valid]
        if empty:
            raise DataError(f"{label}: column{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                            f"{'have' if len(empty) > 1 else 'has'} no value in any row, so nothing can be learnt "
                            "or imputed from it. Export the column's values (or choose --features that do not need "
                            "it).")
        for col, s in self.total.stats.items():
            kind = schema.BY_NAME[col].kind
            if kind in ("frequency", "share") and s.top.value > SHARE_OVERSHOOT and col not in self.percent:
                rows = s.far_above
                raise DataError(f"{label}: column {col} is a share between 0 and 1, but {rows.count} value(s) are far "
                                f"above 1 ({', '.join(rows.examples())}) while most are not, so it is neither a 0–1 "
                                "nor a 0–100 column. Fix these values and run again.")
            low = s.low.count
            if low >= NEGATIVE_CONVENTION_ROWS and low > 0.5 * s.not_zero:
                raise DataError(f"{label}: column {col} is negative in {low} of {s.valid} rows "
                                f"({', '.join(s.low.examples()[:3])}), but a {kind} is never negative: the export "
                                "writes it with another sign convention. Flip the sign of the column (or fix the "
                                "export) and run again.")

    def _repair_findings(self) -> list[Finding]:
        findings = []
        for col, s in self.total.stats.items():
            if col in self.percent:
                findings.append(Finding("percent_scale", "repaired", s.valid,
                                        f"{col} is on a 0–100 scale ({s.above_one.count} of {s.positive} non-zero "
                                        f"values above 1, max {s.top.value:g}); divided by 100", col,
                                        s.above_one.examples()))
            if s.high.count:
                findings.append(Finding("above_one", "repaired", s.high.count,
                                        f"{col} above 1 (max {s.high_max.value:g}) clipped to 1", col,
                                        s.high.examples()))
            if s.low.count:
                findings.append(Finding("negative", "repaired", s.low.count,
                                        f"negative {col} (min {s.low_min.value:g}) set to 0", col, s.low.examples()))
        for col, rule in (("CREDIT_LIMIT", "CREDIT_LIMIT of 0 treated as missing"),
                          ("TENURE", "TENURE below 1 month treated as missing")):
            if col in self.total.stats and self.total.stats[col].invalid.count:
                rows = self.total.stats[col].invalid
                findings.append(Finding("out_of_range", "repaired", rows.count, rule, col, rows.examples()))
        for col in self.required:
            if col in self.total.stats and not self.total.stats[col].left:
                rule = next((f.rule for f in findings if f.column == col and f.check == "out_of_range"), "invalid")
                raise DataError(f"{self.label}: column {col} has no usable value: every value is invalid ({rule}), so "
                                "nothing can be learnt or imputed from it. Check the export of this column.")
        return findings

    def _missing_findings(self, missing: dict[str, int]) -> list[Finding]:
        findings = [Finding("missing", "imputed", n, f"{col} empty; imputed by the feature pipeline", col,
                            self.total.stats[col].gaps.examples()) for col, n in missing.items() if n]
        rows = self.total.facts["missing_where_no_payment"]
        if {"MINIMUM_PAYMENTS", "PAYMENTS"} <= set(self.total.stats) and rows.count:
            findings.append(Finding("missing_where_no_payment", "info", rows.count,
                                    "MINIMUM_PAYMENTS empty where PAYMENTS = 0 (imputed as 0)", "MINIMUM_PAYMENTS",
                                    rows.examples()))
        return findings

    def _consistency_findings(self) -> list[Finding]:
        checks = (("purchase_sum_mismatch", "warning", "PURCHASES",
                   f"PURCHASES differs from ONEOFF_PURCHASES + INSTALLMENTS_PURCHASES by more than "
                   f"{PURCHASE_SUM_TOLERANCE:g} (largest gap {self.total.largest_gap.value:g}); kept as reported"),
                  ("balance_above_limit", "info", "BALANCE", "BALANCE exceeds CREDIT_LIMIT (over-limit account); kept"),
                  ("minimum_above_payments", "info", "MINIMUM_PAYMENTS", "MINIMUM_PAYMENTS exceeds PAYMENTS; kept"))
        return [Finding(name, severity, self.total.facts[name].count, rule, col, self.total.facts[name].examples())
                for name, severity, col, rule in checks if self.total.facts[name].count]

    def _shape_findings(self) -> list[Finding]:
        out = []
        for col, s in self.total.stats.items():
            skew = s.moments.skew()
            if schema.BY_NAME[col].kind in ("amount", "count") and skew > SKEW_THRESHOLD:
                out.append(Finding("heavy_skew", "info", s.left,
                                   f"{col} is heavily right-skewed (skewness {skew:.1f}); amounts enter the model "
                                   "on a log scale", col))
        for name, col, what in (("no_purchases", "PURCHASES", "made no purchase in the window"),
                                ("no_cash_advance", "CASH_ADVANCE", "took no cash advance in the window"),
                                ("short_tenure", "TENURE", "observed for fewer than 12 months; "
                                                           "amounts are compared per month")):
            rows = self.total.facts[name]
            if col in self.total.stats and rows.count:
                out.append(Finding(name, "info", rows.count, f"{rows.count} customers {what}", col, rows.examples()))
        return out


def _set(values: np.ndarray, where: np.ndarray, value: float) -> np.ndarray:
    """``values`` with ``value`` where ``where`` holds; a copy only when something changes."""
    if not where.any():
        return values
    values = values.copy()
    values[where] = value
    return values


def _id_at(ids, i: int):
    """The id at row ``i`` of a pyarrow array as pandas shows it (``<NA>`` when empty)."""
    value = ids[i].as_py()
    return "<NA>" if value is None else value


def _rows_of(rows: _Rows) -> str:
    """:func:`_rowlist` of the rows that broke a rule over every batch."""
    shown = ", ".join(str(row + 1) for row, _ in rows.shown)
    more = f" and {rows.count - MAX_EXAMPLES} more" if rows.count > MAX_EXAMPLES else ""
    return f"row{'s' if rows.count > 1 else ''} {shown}{more}"
