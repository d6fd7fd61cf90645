"""The model features as data: what each is computed from, the feature sets, and checks of saved states.

Kept apart from :mod:`custseg.features` (the scikit-learn steps that compute them),
so reading a model file to score customers needs no scikit-learn.
:mod:`custseg.features` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import schema
from .errors import CustsegError

UTILISATION_CAP = 2.0
PAYMENT_RATIO_CAP = 100.0


@dataclass(frozen=True)
class Feature:
    """A model input: what it is computed from, whether it is logged, and why it helps."""

    name: str
    sources: tuple[str, ...]
    why: str
    log: bool = False


def _raw(col: str, why: str, log: bool = False) -> Feature:
    return Feature(col.lower(), (col,), why, log)


FEATURES: dict[str, Feature] = {f.name: f for f in (
    _raw("BALANCE", "how much debt the customer carries", log=True),
    _raw("BALANCE_FREQUENCY", "how regularly the account carries a balance"),
    Feature("purchases_per_month", ("PURCHASES", "TENURE"),
            "spend per month of tenure, so a 6-month customer compares with a 12-month one", log=True),
    Feature("oneoff_share", ("ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES"),
            "one-off vs instalment spending: separates big-ticket buyers from instalment shoppers"),
    _raw("PURCHASES_FREQUENCY", "how often the card is used to buy"),
    _raw("ONEOFF_PURCHASES_FREQUENCY", "how often one-off purchases are made"),
    _raw("PURCHASES_INSTALLMENTS_FREQUENCY", "how often instalment purchases are made"),
    Feature("cash_advance_per_month", ("CASH_ADVANCE", "TENURE"),
            "cash withdrawn per month: the cash-reliant customer's signature", log=True),
    _raw("CASH_ADVANCE_FREQUENCY", "how often cash advances are taken"),
    Feature("limit_utilisation", ("BALANCE", "CREDIT_LIMIT"),
            f"BALANCE / CREDIT_LIMIT (capped at {UTILISATION_CAP:g}): credit stress independent of limit size"),
    _raw("CREDIT_LIMIT", "the bank's view of the customer's means", log=True),
    Feature("payments_per_month", ("PAYMENTS", "TENURE"), "repayment volume per month", log=True),
    Feature("payment_to_minimum", ("PAYMENTS", "MINIMUM_PAYMENTS"),
            f"PAYMENTS / MINIMUM_PAYMENTS (capped at {PAYMENT_RATIO_CAP:g}): revolvers pay near the minimum, "
            "transactors far above it", log=True),
    _raw("PRC_FULL_PAYMENT", "share of months paid in full: transactor vs revolver"),
    Feature("average_purchase", ("PURCHASES", "PURCHASES_TRX"),
            "typical ticket size: everyday spending vs occasional large purchases", log=True),
    # raw columns only the notebook set uses
    _raw("PURCHASES", "purchase amount"),
    _raw("ONEOFF_PURCHASES", "one-off purchase amount"),
    _raw("INSTALLMENTS_PURCHASES", "instalment purchase amount"),
    _raw("CASH_ADVANCE", "cash advance amount"),
    _raw("CASH_ADVANCE_TRX", "cash-advance transactions"),
    _raw("PURCHASES_TRX", "purchase transactions"),
    _raw("PAYMENTS", "payment amount"),
    _raw("MINIMUM_PAYMENTS", "minimum payments"),
    _raw("TENURE", "months observed"),
)}

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "behaviour": (
        "balance", "balance_frequency", "purchases_per_month", "oneoff_share", "purchases_frequency",
        "oneoff_purchases_frequency", "purchases_installments_frequency", "cash_advance_per_month",
        "cash_advance_frequency", "limit_utilisation", "credit_limit", "payments_per_month",
        "payment_to_minimum", "prc_full_payment", "average_purchase",
    ),
    "notebook": tuple(c.lower() for c in schema.BEHAVIOUR),
}


def resolve_features(features: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Turn a feature-set name or list into a tuple of feature names, checking each."""
    if isinstance(features, str):
        if features not in FEATURE_SETS:
            raise CustsegError(f"unknown feature set '{features}'; choose one of {', '.join(FEATURE_SETS)} "
                               "or give a list of feature names")
        return FEATURE_SETS[features]
    names = tuple(features)
    unknown = [n for n in names if n not in FEATURES]
    if unknown or not names:
        raise CustsegError(f"unknown feature(s) {', '.join(unknown) or '(none given)'}; "
                           f"known: {', '.join(FEATURES)}")
    return names


def required_columns(features: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonical input columns a feature set needs, in schema order."""
    needed = {src for name in resolve_features(features) for src in FEATURES[name].sources}
    return tuple(c for c in schema.BEHAVIOUR if c in needed)


def state_keys(state, keys: tuple[str, ...], what: str = "the state") -> None:
    """Check that a saved value is a JSON object with exactly ``keys``; ValueError naming ``what`` if not."""
    if not isinstance(state, dict):
        raise ValueError(f"{what} must be a JSON object")
    missing = [k for k in keys if k not in state]
    extra = [k for k in state if k not in keys]
    if missing or extra:
        raise ValueError("; ".join(filter(None, (
            missing and f"{what} lacks {', '.join(repr(k) for k in missing)}",
            extra and f"{what} has unexpected {', '.join(repr(k) for k in extra)}"))))


def state_floats(value, what: str, *, length: int | None = None, lower: float | None = None,
                 positive: bool = False) -> np.ndarray:
    """Check that a saved value is a list of finite numbers and return it as float64.

    Raises
    ------
    ValueError
        Naming ``what``: not a list of numbers, the wrong ``length``, a number that
        is not finite (JSON's ``NaN``/``Infinity`` or too large), below ``lower``, or
        not above 0 when ``positive``.
    """
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise ValueError(f"{what} must be a list of numbers")
    if length is not None and len(value) != length:
        raise ValueError(f"{what} has {len(value)} values for {length} features")
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except OverflowError:
        raise ValueError(f"{what} holds a number too large for a float") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds a number that is not finite")
    if positive and (arr <= 0).any():
        raise ValueError(f"{what} holds 0 or a negative number where only positive ones are valid")
    if lower is not None and (arr < lower).any():
        raise ValueError(f"{what} holds a number below {lower:g}")
    return arr


def state_names(value, what: str, *, length: int | None = None, unique: bool = False,
                empty: bool = False) -> list[str]:
    """Check that a saved value is a list of non-empty strings (non-empty itself unless ``empty``).

    Raises
    ------
    ValueError
        Naming ``what``: not a list, a null or non-text entry, the wrong ``length``,
        a repeated name when ``unique``.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{what} must be a list of names (non-empty text, no nulls)")
    if not value and not empty:
        raise ValueError(f"{what} is empty")
    if length is not None and len(value) != length:
        raise ValueError(f"{what} has {len(value)} names for {length} entries")
    if unique and len(set(value)) != len(value):
        raise ValueError(f"{what} repeats a name")
    return list(value)
