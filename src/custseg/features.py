"""Feature engineering as scikit-learn transformers inside one ``Pipeline``.

The default pipeline::

    DomainImputer  →  DeriveBehaviour  →  LogTransform  →  StandardScaler

``DeriveBehaviour`` outputs exactly the chosen features, so it also selects them.

Each step takes and returns a DataFrame (``set_output(transform="pandas")``), so
``get_feature_names_out`` names every model input.

Feature sets
------------
``"behaviour"`` (default)
    How a customer *uses* the card, comparable across tenures and limits: amounts
    per month and on a log scale, frequencies, shares and ratios. See
    :data:`FEATURES` for each feature and why it is there.
``"notebook"``
    The original notebook's choice: the 17 raw columns, scaled. Kept to compare
    against; it lets a few huge amounts dominate the distances.
a list of names
    Any subset of :data:`FEATURES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

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


class DomainImputer(TransformerMixin, BaseEstimator):
    """Fill missing values by card-domain rules learned on the training portfolio.

    - ``MINIMUM_PAYMENTS`` empty where ``PAYMENTS`` = 0: 0 (nothing was paid, so no
      minimum payment was made — the cause of most gaps in the public file);
      elsewhere the training median of ``MINIMUM_PAYMENTS / PAYMENTS`` times
      ``PAYMENTS``, so the filled value keeps the customer's scale.
    - Any other column: the training median (``CREDIT_LIMIT``, ``TENURE``, ...).

    Parameters
    ----------
    columns : sequence of str or None
        Canonical columns to keep and impute; ``None`` keeps all schema columns present.

    Attributes
    ----------
    medians_ : dict
        Training median of each column.
    minimum_ratio_ : float
        Training median of ``MINIMUM_PAYMENTS / PAYMENTS`` where both are positive.
    feature_names_in_ : ndarray of str
    """

    def __init__(self, columns=None):
        self.columns = columns

    def fit(self, X, y=None):
        X = self._frame(X, fitting=True)
        self.medians_ = {c: float(X[c].median()) if X[c].notna().any() else 0.0 for c in X.columns}
        self.minimum_ratio_ = 0.0
        if {"MINIMUM_PAYMENTS", "PAYMENTS"} <= set(X.columns):
            both = (X["MINIMUM_PAYMENTS"] > 0) & (X["PAYMENTS"] > 0)
            if both.any():
                self.minimum_ratio_ = float((X.loc[both, "MINIMUM_PAYMENTS"] / X.loc[both, "PAYMENTS"]).median())
        return self

    def transform(self, X):
        check_is_fitted(self, "medians_")
        X = self._frame(X, fitting=False).copy()
        if {"MINIMUM_PAYMENTS", "PAYMENTS"} <= set(X.columns):
            gap = X["MINIMUM_PAYMENTS"].isna()
            X.loc[gap, "MINIMUM_PAYMENTS"] = (X.loc[gap, "PAYMENTS"] * self.minimum_ratio_).to_numpy()
        return X.fillna(self.medians_)

    def _frame(self, X, fitting: bool) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("DomainImputer expects a DataFrame with canonical column names")
        if fitting:
            cols = list(self.columns) if self.columns is not None else [c for c in schema.BEHAVIOUR if c in X]
            self.feature_names_in_ = np.asarray(cols, dtype=object)
            self.n_features_in_ = len(cols)
        cols = list(self.feature_names_in_)
        absent = [c for c in cols if c not in X.columns]
        if absent:
            raise CustsegError(f"the data lacks column(s) {', '.join(absent)} that the features need")
        return X[cols].astype("float64")

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "medians_")
        return np.asarray(self.feature_names_in_, dtype=object)


class DeriveBehaviour(TransformerMixin, BaseEstimator):
    """Compute the behaviour features of :data:`FEATURES` from canonical columns.

    Ratios with a zero denominator are defined rather than left infinite: a
    customer with no purchase has ``oneoff_share`` 0 and ``average_purchase`` 0;
    ``payment_to_minimum`` with no minimum payment is the cap when something was
    paid and 0 otherwise.

    Parameters
    ----------
    features : sequence of str
        Names from :data:`FEATURES` to output, in order.
    """

    def __init__(self, features=FEATURE_SETS["behaviour"]):
        self.features = features

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        self.features_ = resolve_features(self.features)
        return self

    def transform(self, X):
        check_is_fitted(self, "features_")
        return pd.DataFrame({name: _compute(name, X) for name in self.features_}, index=X.index)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "features_")
        return np.asarray(self.features_, dtype=object)


def _ratio(num: pd.Series, den: pd.Series, empty: float = 0.0) -> pd.Series:
    out = num / den.where(den > 0)
    return out.fillna(empty)


def _compute(name: str, X: pd.DataFrame) -> pd.Series:
    feature = FEATURES[name]
    if len(feature.sources) == 1:
        return X[feature.sources[0]].astype("float64")
    if name in ("purchases_per_month", "cash_advance_per_month", "payments_per_month"):
        return _ratio(X[feature.sources[0]], X["TENURE"])
    if name == "oneoff_share":
        oneoff, inst = X["ONEOFF_PURCHASES"], X["INSTALLMENTS_PURCHASES"]
        return _ratio(oneoff, oneoff + inst)
    if name == "limit_utilisation":
        return _ratio(X["BALANCE"], X["CREDIT_LIMIT"]).clip(0.0, UTILISATION_CAP)
    if name == "payment_to_minimum":
        paid = X["PAYMENTS"]
        ratio = _ratio(paid, X["MINIMUM_PAYMENTS"], np.nan)
        ratio = ratio.fillna(pd.Series(np.where(paid > 0, PAYMENT_RATIO_CAP, 0.0), index=X.index))
        return ratio.clip(0.0, PAYMENT_RATIO_CAP)
    if name == "average_purchase":
        return _ratio(X["PURCHASES"], X["PURCHASES_TRX"])
    raise KeyError(name)  # pragma: no cover - FEATURES and _compute are kept in step by tests


class LogTransform(TransformerMixin, BaseEstimator):
    """``log1p`` of the heavily skewed features (negative values clipped to 0 first).

    Parameters
    ----------
    columns : sequence of str
        Columns to transform; each is renamed ``log_<name>``.
    """

    def __init__(self, columns=()):
        self.columns = columns

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        check_is_fitted(self, "feature_names_in_")
        X = X.copy()
        for col in self.columns:
            X[col] = np.log1p(X[col].clip(lower=0.0))
        return X.rename(columns={c: f"log_{c}" for c in self.columns})

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "feature_names_in_")
        logged = set(self.columns)
        return np.asarray([f"log_{c}" if c in logged else c for c in self.feature_names_in_], dtype=object)


def make_pipeline(features: str | list[str] | tuple[str, ...] = "behaviour", *, log: bool | None = None) -> Pipeline:
    """Build the unfitted feature pipeline for a feature set.

    Parameters
    ----------
    features : str or list of str
        A name in :data:`FEATURE_SETS` or a list of names from :data:`FEATURES`.
    log : bool, optional
        Log-transform the skewed features. Default: yes, except for the
        ``"notebook"`` set, which reproduces the original raw scaling.
    """
    names = resolve_features(features)
    use_log = (features != "notebook") if log is None else log
    logged = tuple(n for n in names if FEATURES[n].log) if use_log else ()
    pipeline = Pipeline([
        ("impute", DomainImputer(columns=required_columns(names))),
        ("derive", DeriveBehaviour(features=names)),
        ("log", LogTransform(columns=logged)),
        ("scale", StandardScaler()),
    ])
    return pipeline.set_output(transform="pandas")
