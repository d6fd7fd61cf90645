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
