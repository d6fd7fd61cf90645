"""Synthetic card portfolios with known segments.

One generator serves three needs: a user on a fresh machine who has no card data
yet, tests that need portfolios whose true segments are known, and benchmarks
that need millions of customers.

Each customer is drawn from one of six behavioural *archetypes* (see
:data:`ARCHETYPES`), each a documented generative recipe. Rows obey the schema's
logic (purchase sums, frequencies on the tenure's month grid, zero amount ⇔ zero
transactions ⇔ zero frequency, minimum payments missing mostly where nothing was
paid); with ``quirks=True`` the measured quirks of the real file are injected at
the real rates. With :data:`DEFAULT_WEIGHTS` the columns' quantiles and pairwise
Spearman correlations are calibrated to the public "Credit Card Dataset for
Clustering" (see ``docs/datasets.md`` for tolerances and measured figures).

Generation works in fixed-size chunks, each seeded from ``(seed, chunk index)``,
so :func:`generate` and :func:`write_sample` give the same rows for the same
seed, whatever the size, and memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .atomic import temp_beside
from .errors import CustsegError

__all__ = ["Archetype", "ARCHETYPES", "DEFAULT_WEIGHTS", "CHUNK_ROWS", "Months", "archetype_centres",
           "clearly_placed", "generate", "generate_months", "month_file", "write_months", "write_sample"]

#: Rows generated per chunk; constant so outputs are byte-identical per (rows, seed).
CHUNK_ROWS = 500_000

#: TENURE values and their counts in the real file (12 for 7,584 of 8,950).
TENURE_COUNTS = {6: 204, 7: 190, 8: 196, 9: 175, 10: 236, 11: 365, 12: 7584}

#: Per-row rates of the real file's quirks (counts out of 8,950 customers).
QUIRK_RATES = {
    "cash_advance_frequency_above_1": 8 / 8950,
    "purchase_sum_mismatch": 19 / 8950,
    "balance_above_limit": 227 / 8950,
    "credit_limit_missing": 1 / 8950,
}

#: Share of customers with PAYMENTS > 0 whose MINIMUM_PAYMENTS is still missing
#: (73 of the real file's 8,710 payers); every non-payer's is missing.
MIN_PAYMENT_MISSING_AMONG_PAYERS = 73 / 8710


@dataclass(frozen=True)
class Archetype:
    """A behavioural segment as a generative recipe.

    Activity in each product (one-off purchases, instalment purchases, cash
    advances) is drawn in three steps: whether the customer uses it at all
    (``use_*``), in what share of the tenure's months (a Beta draw ``*_months``,
    rounded up to whole months) and how many extra transactions per active
    month (Poisson mean ``*_rate``). Amounts are transactions times a log-normal
    ticket (median ``*_ticket``) that grows with the customer's wealth factor,
    which also drives the credit limit. The balance is a Beta share
    (``utilisation``) of the limit, lowered for customers who pay in full and
    raised a little by cash taken; full payment happens in a Beta share
    (``full_months``) of the months for the ``full_payer`` share of customers;
    payments cover a share of the spending (more for full payers) and of the
    balance. See ``docs/datasets.md`` for every recipe and the calibration.

    Parameters
    ----------
    name : str
        Key in :data:`ARCHETYPES` and label in the ground truth.
    description : str
        One-line plain-language summary.
    limit : float
        Median credit limit.
    use_oneoff, use_instal, use_cash : float
        Probability of using the product at all during the tenure.
    oneoff_months, instal_months, cash_months : tuple of float
        Beta(a, b) for the share of months with that product, when used.
    oneoff_rate, instal_rate, cash_rate : float
        Mean extra transactions per active month (one is always made), for a
        customer active in half the months; busier customers make more per
        month, and each customer's rate varies (Gamma, mean 1).
    oneoff_ticket, instal_ticket, cash_ticket : float
        Median amount per transaction.
    utilisation : tuple of float
        Beta(a, b) for BALANCE / CREDIT_LIMIT.
    zero_balance : float
        Probability of a zero balance (never updated: BALANCE_FREQUENCY = 0).
    balance_months : tuple of float
        Beta(a, b) for the share of months the balance was updated, never
        below 85 % of the months with any transaction; then shrunk when the
        balance is tiny (a few units: settled in most months).
    full_payer : float
        Probability of paying in full in some months.
    full_months : tuple of float
        Beta(a, b) for the share of months paid in full, for full payers.
    repay_spend, repay_balance : float
        Median PAYMENTS as multiples of the spending (purchases + cash) and of
        the balance.
    no_payment : float
        Probability of no payment at all in the window.
    """

    name: str
    description: str
    limit: float
    use_oneoff: float
    use_instal: float
    use_cash: float
    oneoff_months: tuple[float, float]
    instal_months: tuple[float, float]
    cash_months: tuple[float, float]
    oneoff_rate: float
    instal_rate: float
    cash_rate: float
    oneoff_ticket: float
    instal_ticket: float
    cash_ticket: float
    utilisation: tuple[float, float]
    zero_balance: float
    balance_months: tuple[float, float]
    full_payer: float
    full_months: tuple[float, float]
    repay_spend: float
    repay_balance: float
    no_payment: float


ARCHETYPES: dict[str, Archetype] = {
    a.name: a
    for a in (
        Archetype(
            "transactor",
            "full-paying transactor: buys often (one-off and instalments), "
            "pays in full most months, barely revolves",
            limit=4500, use_oneoff=0.9, use_instal=0.95, use_cash=0.05,
            oneoff_months=(1.2, 3.0), instal_months=(2.0, 2.0), cash_months=(1.0, 6.0),
            oneoff_rate=0.8, instal_rate=0.3, cash_rate=0.3,
            oneoff_ticket=55, instal_ticket=40, cash_ticket=250,
            utilisation=(1.2, 7.0), zero_balance=0.02, balance_months=(8.0, 0.3),
            full_payer=0.95, full_months=(3.0, 1.0),
            repay_spend=1.0, repay_balance=0.3, no_payment=0.003,
        ),
        Archetype(
            "revolver",
            "revolver: buys and takes some cash, carries a balance near the limit, repays little of it",
            limit=4000, use_oneoff=0.9, use_instal=0.6, use_cash=0.95,
            oneoff_months=(2.0, 2.5), instal_months=(2.0, 2.0), cash_months=(1.0, 3.0),
            oneoff_rate=0.4, instal_rate=0.3, cash_rate=0.4,
            oneoff_ticket=90, instal_ticket=45, cash_ticket=300,
            utilisation=(6.0, 2.0), zero_balance=0.0, balance_months=(8.0, 0.3),
            full_payer=0.08, full_months=(1.0, 5.0),
            repay_spend=0.3, repay_balance=0.2, no_payment=0.03,
        ),
        Archetype(
            "cash_advance",
            "cash-advance heavy: withdraws cash on the card often, rarely buys, revolves the result",
            limit=4300, use_oneoff=0.03, use_instal=0.03, use_cash=1.0,
            oneoff_months=(1.0, 5.0), instal_months=(1.0, 4.0), cash_months=(1.8, 3.8),
            oneoff_rate=0.3, instal_rate=0.2, cash_rate=1.3,
            oneoff_ticket=100, instal_ticket=60, cash_ticket=250,
            utilisation=(3.0, 3.0), zero_balance=0.0, balance_months=(6.0, 0.4),
            full_payer=0.15, full_months=(1.0, 5.0),
            repay_spend=0.3, repay_balance=0.2, no_payment=0.03,
        ),
        Archetype(
            "instalment",
            "instalment shopper: buys regularly in instalments, small tickets, seldom one-off",
            limit=3500, use_oneoff=0.05, use_instal=1.0, use_cash=0.1,
            oneoff_months=(1.0, 5.0), instal_months=(6.0, 0.7), cash_months=(1.0, 5.0),
            oneoff_rate=0.3, instal_rate=0.6, cash_rate=0.3,
            oneoff_ticket=80, instal_ticket=28, cash_ticket=250,
            utilisation=(2.0, 4.5), zero_balance=0.0, balance_months=(8.0, 0.3),
            full_payer=0.3, full_months=(1.0, 2.5),
            repay_spend=0.6, repay_balance=0.3, no_payment=0.01,
        ),
        Archetype(
            "dormant",
            "dormant / low activity: a purchase or cash advance in a month or two, "
            "small and rarely updated balance",
            limit=3000, use_oneoff=0.5, use_instal=0.45, use_cash=0.2,
            oneoff_months=(1.0, 8.0), instal_months=(1.0, 8.0), cash_months=(1.0, 8.0),
            oneoff_rate=0.1, instal_rate=0.1, cash_rate=0.1,
            oneoff_ticket=70, instal_ticket=50, cash_ticket=250,
            utilisation=(0.6, 6.0), zero_balance=0.06, balance_months=(1.2, 2.5),
            full_payer=0.2, full_months=(1.0, 2.0),
            repay_spend=0.8, repay_balance=0.3, no_payment=0.1,
        ),
        Archetype(
            "premium",
            "premium big spender: high limit, large and frequent one-off spending, pays large amounts",
            limit=12000, use_oneoff=1.0, use_instal=0.8, use_cash=0.2,
            oneoff_months=(6.0, 0.7), instal_months=(2.0, 1.5), cash_months=(1.0, 4.0),
            oneoff_rate=2.5, instal_rate=1.0, cash_rate=0.5,
            oneoff_ticket=120, instal_ticket=100, cash_ticket=600,
            utilisation=(1.2, 4.0), zero_balance=0.0, balance_months=(8.0, 0.3),
            full_payer=0.3, full_months=(2.0, 2.0),
            repay_spend=0.6, repay_balance=0.3, no_payment=0.002,
        ),
    )
}

#: Mixture weights calibrated so the portfolio resembles the real file.
DEFAULT_WEIGHTS: dict[str, float] = {
    "transactor": 0.18,
    "revolver": 0.22,
    "cash_advance": 0.2,
    "instalment": 0.2,
    "dormant": 0.13,
    "premium": 0.07,
}

_AMOUNT_SIGMA = 0.8  # log-sd of individual tickets around an archetype's median
_LIMIT_SIGMA = 0.5  # log-sd of the limit not shared with spending
# A shared "wealth" factor moves limit, tickets and transaction counts together.
# Kept modest: strong shared variation stretches every segment along one axis,
# which k-means then cuts in two.
_WEALTH_TO_LIMIT = 0.3
_WEALTH_TO_TICKET = 0.15
_WEALTH_TO_COUNT = 0.15
_RATE_SHAPE = 1.0  # Gamma shape of a customer's own multiplier on the extra-transaction rate
_BUSY_TO_RATE = 0.8  # extra rate grows by this share from half the months active to all of them
_MINIMUM_FLOOR = 180.0  # median floor of MINIMUM_PAYMENTS for small balances
_PAYMENT_FLOOR = 50.0  # median payment unrelated to spending or balance (fees, interest, habit)
_ACTIVITY_TO_BALANCE_MONTHS = 0.85  # balance updated in most months with activity
# Share of balance months kept for a tiny balance: slope * log10(balance) + intercept
# (with log-normal noise), between _SETTLED_MIN and 1 (balance 5: ~0.3, 20: ~0.65, 300: 1).
_SETTLED_SLOPE = 0.6
_SETTLED_INTERCEPT = -0.12
_SETTLED_NOISE = 0.25
_SETTLED_MIN = 0.05
_TENURE_TO_LIMIT = 0.12  # log-limit change per month of tenure below 12
_CASH_TO_BALANCE = 0.05  # share of cash advances still owed at the end of the window


# ---------------------------------------------------------------- parameters
def _weights_vector(weights: Mapping[str, float] | None) -> np.ndarray:
    """Validate ``weights`` and return them normalised in ARCHETYPES order."""
    weights = DEFAULT_WEIGHTS if weights is None else weights
    unknown = set(weights) - set(ARCHETYPES)
    if unknown:
        raise CustsegError(f"unknown archetype(s) {sorted(unknown)}; choose from {sorted(ARCHETYPES)}")
    w = np.array([float(weights.get(name, 0.0)) for name in ARCHETYPES])
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise CustsegError("archetype weights must be finite, non-negative and not all zero")
    return w / w.sum()


def _param(codes: np.ndarray, field: str) -> np.ndarray:
    """Per-row value of a scalar recipe field, looked up by archetype code."""
    return np.array([getattr(a, field) for a in ARCHETYPES.values()], dtype=float)[codes]


def _beta(rng: np.random.Generator, codes: np.ndarray, field: str) -> np.ndarray:
    """Per-row Beta draw with the archetype's (a, b) for ``field``."""
    ab = np.array([getattr(a, field) for a in ARCHETYPES.values()], dtype=float)
    return rng.beta(ab[codes, 0], ab[codes, 1])


# ---------------------------------------------------------------- recipes
_PRODUCTS = ("oneoff", "instal", "cash")


def _product_use(rng, codes) -> np.ndarray:
    """Which products each customer used, shape (n, 3), in :data:`_PRODUCTS` order.

    Every customer used the card somehow (the real file has one exception in
    8,950): when no product was drawn, the archetype's likeliest one is used.
    """
    p = np.array([[getattr(a, f"use_{k}") for k in _PRODUCTS] for a in ARCHETYPES.values()])
    used = rng.random((codes.size, len(_PRODUCTS))) < p[codes]
    idle = ~used.any(axis=1)
    used[idle, p.argmax(axis=1)[codes[idle]]] = True
    return used


def _months(rng, codes, tenure, used, months_field) -> np.ndarray:
    """Active months of one product: 0 when unused, else 1..tenure."""
    share = _beta(rng, codes, months_field)
    months = np.clip(np.ceil(share * tenure), 1, tenure)
    return np.where(used, months, 0).astype(np.int64)


def _transactions(rng, codes, months, tenure, rate_field, wealth) -> np.ndarray:
    """One transaction per active month plus Poisson extras.

    More extras for the wealthy and for customers active in more months (a
    habitual user buys several times a month), times a customer's own Gamma
    habit factor (mean 1).
    """
    habit = rng.gamma(_RATE_SHAPE, 1.0 / _RATE_SHAPE, codes.size)
    busy = (1.0 - _BUSY_TO_RATE) + 2.0 * _BUSY_TO_RATE * months / tenure  # 1 at half the months
    lam = months * _param(codes, rate_field) * np.exp(_WEALTH_TO_COUNT * wealth) * habit * busy
    return months + rng.poisson(lam)


def _amount(rng, codes, trx, ticket_field, wealth) -> np.ndarray:
    """Transactions times a log-normal ticket; zero exactly when no transaction."""
    log_ticket = np.log(_param(codes, ticket_field)) + _WEALTH_TO_TICKET * wealth
    ticket = np.exp(log_ticket + _AMOUNT_SIGMA * rng.standard_normal(codes.size))
    return np.round(trx * ticket, 2)


def _credit_limit(rng, codes, wealth, tenure) -> np.ndarray:
    """Log-normal limit around the archetype median, rounded like real limits.

    Newer accounts (short tenure) have lower limits, as in the real file.
    """
    log_limit = (np.log(_param(codes, "limit")) + _WEALTH_TO_LIMIT * wealth
                 + _TENURE_TO_LIMIT * (tenure - 12))
    limit = np.exp(log_limit + _LIMIT_SIGMA * rng.standard_normal(codes.size))
    # Real limits are multiples of 500 for 82 % of customers, of 100 or 50 otherwise.
    step = np.where(rng.random(codes.size) < 0.82, 500.0, 100.0)
    return np.clip(np.round(limit / step) * step, 300.0, 30000.0)


def _purchase_months(rng, oneoff_m, instal_m, tenure) -> np.ndarray:
    """Months with any purchase: at least the busier product's, at most the sum."""
    lo = np.maximum(oneoff_m, instal_m)
    extra = rng.binomial(np.minimum(oneoff_m, instal_m), 0.4)
    return np.minimum(lo + extra, tenure)


def _balance(rng, codes, limit, cash, full_share) -> np.ndarray:
    """Revolving balance: a share of the limit, raised by cash taken, lowered by paying in full.

    Capped just below the limit (balances above it are a quirk); a few
    archetypes sometimes keep a zero balance.
    """
    revolving = _beta(rng, codes, "utilisation") * limit * (1.0 - 0.85 * full_share)
    balance = np.minimum(revolving + _CASH_TO_BALANCE * cash, 0.985 * limit)
    zero = rng.random(codes.size) < _param(codes, "zero_balance")
    return np.where(zero, 0.0, np.round(balance, 2))


def _balance_months(rng, codes, tenure, active_m, balance) -> np.ndarray:
    """Months the balance was updated: hardly fewer than the months with activity.

    A tiny balance (a few units of currency) was mostly settled, so it was
    carried in fewer months, whatever the activity: the share of months kept
    grows with log10(balance) and is complete from a few hundred on.
    """
    log_balance = np.log10(np.maximum(balance, 1e-2)) + _SETTLED_NOISE * rng.standard_normal(codes.size)
    settled = np.clip(_SETTLED_SLOPE * log_balance + _SETTLED_INTERCEPT, _SETTLED_MIN, 1.0)
    share = _beta(rng, codes, "balance_months")
    # A new account (tenure < 12) often has no statement balance in its first month.
    cap = np.where((tenure < 12) & (rng.random(codes.size) < 0.6), tenure - 1, tenure)
    base = np.maximum(share * tenure, _ACTIVITY_TO_BALANCE_MONTHS * active_m)
    months = np.clip(np.ceil(base * settled), 1, cap)
    return np.where(balance > 0, months, 0)


def _payments(rng, codes, spend, balance, tenure, pays, full_share) -> np.ndarray:
    """Payments cover shares of the spending and of the balance, with noise."""
    # Customers who pay in full in more months also repay more of what they spent.
    base = (_param(codes, "repay_spend") * (1.0 + full_share) * spend
            + _param(codes, "repay_balance") * balance * tenure / 12)
    noise = np.exp(0.5 * rng.standard_normal(codes.size))
    floor = np.exp(np.log(_PAYMENT_FLOOR) + 0.8 * rng.standard_normal(codes.size))
    paid = np.round((base + floor) * noise, 2)
    return np.where(pays, paid, 0.0)


def _minimum_payments(rng, balance, balance_share, payments) -> np.ndarray:
    """Minimum payments track the balance above a floor, over the months it was owed.

    Missing for every customer who paid nothing and for a few others, as in the
    real file.
    """
    n = balance.size
    floor = np.exp(np.log(_MINIMUM_FLOOR) + 0.45 * rng.standard_normal(n))
    share = np.exp(np.log(0.33) + 0.5 * rng.standard_normal(n))
    minimum = np.round(np.hypot(floor, share * balance) * (0.5 + 0.5 * balance_share), 2)
    missing = (payments == 0) | (rng.random(n) < MIN_PAYMENT_MISSING_AMONG_PAYERS)
    return np.where(missing, np.nan, minimum)


def _full_payment(rng, codes, tenure, pays) -> np.ndarray:
    """Share of months paid in full, on the tenure grid; zero for non-payers."""
    payer = (rng.random(codes.size) < _param(codes, "full_payer")) & pays
    months = np.clip(np.round(_beta(rng, codes, "full_months") * tenure), 0, tenure)
    return np.where(payer, months, 0) / tenure


def _tenure(rng, n) -> np.ndarray:
    values = np.array(list(TENURE_COUNTS), dtype=np.int64)
    p = np.array(list(TENURE_COUNTS.values()), dtype=float)
    return rng.choice(values, size=n, p=p / p.sum())


def _freq(months, tenure) -> np.ndarray:
    return np.round(months / tenure, 6)


def _behaviour(rng: np.random.Generator, codes: np.ndarray,
               tenure: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All behaviour columns for customers of the given archetype codes (tenure drawn unless given)."""
    n = codes.size
    tenure = _tenure(rng, n) if tenure is None else tenure
    wealth = rng.standard_normal(n)
    limit = _credit_limit(rng, codes, wealth, tenure)

    used = _product_use(rng, codes)
    oneoff_m = _months(rng, codes, tenure, used[:, 0], "oneoff_months")
    instal_m = _months(rng, codes, tenure, used[:, 1], "instal_months")
    cash_m = _months(rng, codes, tenure, used[:, 2], "cash_months")
    purchase_m = _purchase_months(rng, oneoff_m, instal_m, tenure)

    oneoff_n = _transactions(rng, codes, oneoff_m, tenure, "oneoff_rate", wealth)
    instal_n = _transactions(rng, codes, instal_m, tenure, "instal_rate", wealth)
    cash_n = _transactions(rng, codes, cash_m, tenure, "cash_rate", wealth)
    oneoff = _amount(rng, codes, oneoff_n, "oneoff_ticket", wealth)
    instal = _amount(rng, codes, instal_n, "instal_ticket", wealth)
    cash = _amount(rng, codes, cash_n, "cash_ticket", wealth)
    purchases = np.round(oneoff + instal, 2)

    pays = rng.random(n) >= _param(codes, "no_payment")
    full_share = _full_payment(rng, codes, tenure, pays)
    balance = _balance(rng, codes, limit, cash, full_share)
    balance_m = _balance_months(rng, codes, tenure, np.maximum(purchase_m, cash_m), balance)
    payments = _payments(rng, codes, purchases + cash, balance, tenure, pays, full_share)
    return {
        "BALANCE": balance,
        "BALANCE_FREQUENCY": _freq(balance_m, tenure),
        "PURCHASES": purchases,
        "ONEOFF_PURCHASES": oneoff,
        "INSTALLMENTS_PURCHASES": instal,
        "CASH_ADVANCE": cash,
        "PURCHASES_FREQUENCY": _freq(purchase_m, tenure),
        "ONEOFF_PURCHASES_FREQUENCY": _freq(oneoff_m, tenure),
        "PURCHASES_INSTALLMENTS_FREQUENCY": _freq(instal_m, tenure),
        "CASH_ADVANCE_FREQUENCY": _freq(cash_m, tenure),
        "CASH_ADVANCE_TRX": cash_n,
        "PURCHASES_TRX": oneoff_n + instal_n,
        "CREDIT_LIMIT": limit,
        "PAYMENTS": payments,
        "MINIMUM_PAYMENTS": _minimum_payments(rng, balance, balance_m / tenure, payments),
        "PRC_FULL_PAYMENT": np.round(full_share, 6),
        "TENURE": tenure,
    }


# ---------------------------------------------------------------- quirks
def _pick(rng: np.random.Generator, eligible: np.ndarray, rate: float) -> np.ndarray:
    """Rows to make quirky: ``rate`` of all rows, drawn among the eligible ones."""
    share = eligible.mean() if eligible.size else 0.0
    p = min(1.0, rate / share) if share > 0 else 0.0
    return eligible & (rng.random(eligible.size) < p)


def _inject_quirks(rng: np.random.Generator, cols: dict[str, np.ndarray]) -> None:
    """Inject the real file's quirks in place, at the real per-row rates.

    Rates are per customer overall; eligibility (e.g. a cash advance for a
    frequency above 1) is required, so the realised rate is a little lower when
    few customers are eligible.
    """
    n = cols["TENURE"].size
    tenure = cols["TENURE"]
    rates = QUIRK_RATES

    # Cash-advance frequency above 1 (real: up to 1.5, short tenures only).
    rows = _pick(rng, (cols["CASH_ADVANCE"] > 0) & (tenure < 12), rates["cash_advance_frequency_above_1"])
    half = tenure // 2
    extra = np.minimum(1 + np.floor(rng.random(n) * half), half)  # frequency at most 1.5
    above = np.round((tenure + extra) / tenure, 6)
    cols["CASH_ADVANCE_FREQUENCY"] = np.where(rows, above, cols["CASH_ADVANCE_FREQUENCY"])

    # PURCHASES falls short of its parts by 20-600 (always short in the real file).
    parts = cols["ONEOFF_PURCHASES"] + cols["INSTALLMENTS_PURCHASES"]
    rows = _pick(rng, parts > 40, rates["purchase_sum_mismatch"])
    short = np.minimum(np.round(20 + rng.random(n) * 580, 2), parts / 2)
    cols["PURCHASES"] = np.where(rows, np.round(parts - short, 2), cols["PURCHASES"])

    # BALANCE above CREDIT_LIMIT: the limit was lowered below the balance.
    balance = cols["BALANCE"]
    rows = _pick(rng, balance > 100, rates["balance_above_limit"])
    lowered = np.maximum(np.floor(balance / (1.0 + 0.3 * rng.random(n)) / 50) * 50, 50.0)
    lowered = np.where(lowered >= balance, balance - 1, lowered)
    cols["CREDIT_LIMIT"] = np.where(rows, lowered, cols["CREDIT_LIMIT"])

    rows = rng.random(n) < rates["credit_limit_missing"]
    cols["CREDIT_LIMIT"] = np.where(rows, np.nan, cols["CREDIT_LIMIT"])


# ---------------------------------------------------------------- chunks
def _chunk_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=(index,))


def _customer_ids(prefix: str, start: int, n: int) -> pd.Series:
    numbers = np.arange(start, start + n, dtype=np.int64).astype(str)
    return pd.Series(np.strings.add(prefix, numbers), dtype="str")


def _chunk(n: int, ss: np.random.SeedSequence, p: np.ndarray, quirks: bool,
           id_prefix: str, id_start: int) -> tuple[pd.DataFrame, pd.Series]:
    """One chunk of customers and their archetypes, from its own seed sequence."""
    base_ss, quirk_ss = ss.spawn(2)
    rng = np.random.default_rng(base_ss)
    codes = rng.choice(len(p), size=n, p=p)
    cols = _behaviour(rng, codes)
    if quirks:
        _inject_quirks(np.random.default_rng(quirk_ss), cols)
    frame = pd.DataFrame({schema.ID: _customer_ids(id_prefix, id_start, n), **cols})
    frame = frame[[c.name for c in schema.COLUMNS]]
    truth = pd.Series(pd.Categorical.from_codes(codes, categories=list(ARCHETYPES)), name="archetype")
    return frame, truth


def _chunks(n: int, seed: int, weights, quirks: bool, id_prefix: str,
            id_start: int) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """Yield ``(frame, truth)`` chunks of :data:`CHUNK_ROWS` rows (the last shorter)."""
    if int(n) != n or n < 0:
        raise CustsegError(f"number of customers must be a non-negative integer, got {n!r}")
    p = _weights_vector(weights)
    for index, offset in enumerate(range(0, int(n), CHUNK_ROWS)):
        size = min(CHUNK_ROWS, int(n) - offset)
        yield _chunk(size, _chunk_seed(seed, index), p, quirks, id_prefix, id_start + offset)


# ---------------------------------------------------------------- public API
def generate(n: int, *, seed: int = 0, weights: Mapping[str, float] | None = None,
             quirks: bool = False, id_prefix: str = "C",
             id_start: int = 10001) -> tuple[pd.DataFrame, pd.Series]:
    """Generate a synthetic portfolio of ``n`` customers with known archetypes.

    Parameters
    ----------
    n : int
        Number of customers (rows).
    seed : int, default 0
        Seed; the same seed and ``n`` always give the same rows. Rows come in
        chunks of :data:`CHUNK_ROWS`, each seeded from ``(seed, chunk index)``,
        so every complete chunk is the same whatever ``n`` is.
    weights : mapping of str to float, optional
        Mixture weights by archetype name (normalised; missing names weigh 0).
        Defaults to :data:`DEFAULT_WEIGHTS`, calibrated to the real file.
    quirks : bool, default False
        Inject the real file's quirks at its measured rates (cash-advance
        frequency above 1, purchases not adding up, balance above the limit,
        a missing credit limit).
    id_prefix : str, default "C"
        Text before the running customer number.
    id_start : int, default 10001
        Number of the first customer.

    Returns
    -------
    frame : pandas.DataFrame
        The 18 columns of :data:`custseg.schema.COLUMNS`, in that order, with a
        RangeIndex.
    truth : pandas.Series
        Categorical ``"archetype"`` of each row, aligned with ``frame``. Keep it
        away from any model: it is the answer key.
    """
    parts = list(_chunks(n, seed, weights, quirks, id_prefix, id_start))
    if not parts:
        parts = [_chunk(0, _chunk_seed(seed, 0), _weights_vector(weights), quirks, id_prefix, id_start)]
    frame = pd.concat([f for f, _ in parts], ignore_index=True)
    truth = pd.concat([t for _, t in parts], ignore_index=True).rename("archetype")
    return frame, truth


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CustsegError(
            f"cannot write a sample to {path.name!r}: the extension must be .csv or .parquet "
            f"(got {suffix or 'none'})"
        )
    return suffix[1:]


class _TableWriter:
    """Append pandas chunks to one CSV or Parquet file with a fixed schema."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self._writer, self._schema = path, fmt, None, None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema.remove_metadata()
            table = table.replace_schema_metadata(None)
            self._writer = self._open(self._schema)
        self._writer.write_table(table.replace_schema_metadata(None))

    def _open(self, arrow_schema):
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.path, arrow_schema, compression="zstd")
        import pyarrow.csv as pacsv

        return pacsv.CSVWriter(self.path, arrow_schema, write_options=pacsv.WriteOptions(quoting_style="none"))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()




def write_sample(path, rows: int, *, seed: int = 0, weights: Mapping[str, float] | None = None,
                 quirks: bool = False, truth_path=None, progress=None) -> None:
    """Write a synthetic portfolio to CSV or Parquet, chunk by chunk.

    The rows equal ``generate(rows, seed=seed, weights=weights, quirks=quirks)``;
    each chunk of :data:`CHUNK_ROWS` rows is seeded from ``(seed, chunk
    index)``, so the same arguments always give byte-identical files and memory
    stays bounded whatever ``rows`` is. Both files are written to temporary
    files in the target folders and moved into place only when complete, so a
    failure leaves nothing behind.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; ``.csv`` or ``.parquet`` decides the format.
    rows : int
        Number of customers.
    seed : int, default 0
        Seed, as in :func:`generate`.
    weights : mapping of str to float, optional
        Archetype mixture weights, as in :func:`generate`.
    quirks : bool, default False
        Inject the real file's quirks, as in :func:`generate`.
    truth_path : str or os.PathLike, optional
        Where to write the answer key (``CUST_ID``, ``archetype``), also
        ``.csv`` or ``.parquet``.
    progress : object with ``update(n)``, optional
        Told the number of rows written after each chunk.

    Raises
    ------
    custseg.errors.CustsegError
        On an unsupported extension, bad weights or a bad row count.
    """
    path = Path(path)
    targets = [(path, _format(path))]
    if truth_path is not None:
        targets.append((Path(truth_path), _format(Path(truth_path))))
    _weights_vector(weights)
    temps = [temp_beside(p) for p, _ in targets]
    writers = [_TableWriter(t, fmt) for t, (_, fmt) in zip(temps, targets)]
    try:
        for frame, truth in _chunks(rows, seed, weights, quirks, "C", 10001):
            writers[0].write(frame)
            if len(writers) > 1:
                writers[1].write(pd.DataFrame({schema.ID: frame[schema.ID], "archetype": truth.astype("str")}))
            if progress is not None:
                progress.update(len(frame))
        if rows == 0:
            empty, truth = generate(0, seed=seed, weights=weights, quirks=quirks)
            writers[0].write(empty)
            if len(writers) > 1:
                writers[1].write(pd.DataFrame({schema.ID: empty[schema.ID], "archetype": truth.astype("str")}))
        for w in writers:
            w.close()
        for temp, (final, _) in zip(temps, targets):
            os.replace(temp, final)
    except BaseException:
        for w in writers:
            try:
                w.close()
            except Exception:
                pass
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- months
#: Spawn key that keeps the month streams apart from :func:`generate`'s chunk streams.
_MONTHS_KEY = 0x6D6F6E7468


@dataclass(frozen=True)
class Months:
    """Consecutive synthetic months of one portfolio, with the answer key.

    Attributes
    ----------
    frames : list of pandas.DataFrame
        One portfolio per month (schema columns), rows in customer-id order.
    truth : list of pandas.Series
        The true archetype of each row of the matching frame (categorical).
    events : pandas.DataFrame
        Every planted change: ``month`` (the month it is seen in, 2..N),
        ``customer_id``, ``event`` (``"move"``, ``"join"`` or ``"leave"``),
        ``from_archetype`` (empty for a join) and ``to_archetype`` (empty for a
        leave), in month then customer order.
    """

    frames: list
    truth: list
    events: pd.DataFrame

    def moves(self, month: int) -> pd.DataFrame:
        """The planted events seen in ``month`` (2..N)."""
        return self.events[self.events["month"] == month].reset_index(drop=True)


def _shares(move_share: float, join_share: float, leave_share: float) -> None:
    for name, value in (("move_share", move_share), ("join_share", join_share), ("leave_share", leave_share)):
        if not (np.isfinite(value) and 0.0 <= value <= 1.0):
            raise CustsegError(f"{name} must be a share between 0 and 1 (got {value!r})")
    if leave_share >= 1.0:
        raise CustsegError("leave_share must be below 1: some customers have to stay to compare months")


def _month_rows(ids: np.ndarray, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame({schema.ID: pd.Series(ids, dtype="str"), **cols})
    return frame[[c.name for c in schema.COLUMNS]]


def _destination(rng: np.random.Generator, codes: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A different archetype for each mover, drawn with the mixture weights of the others."""
    w = np.tile(p, (codes.size, 1))
    w[np.arange(codes.size), codes] = 0.0
    total = w.sum(axis=1, keepdims=True)
    if np.any(total == 0):
        raise CustsegError("customers can only move when at least two archetypes have a positive weight")
    cum = np.cumsum(w / total, axis=1)
    return np.minimum((rng.random((codes.size, 1)) > cum).sum(axis=1), len(p) - 1)


def generate_months(n: int, months: int, *, seed: int = 0, move_share: float = 0.05,
                    join_share: float = 0.02, leave_share: float = 0.02,
                    weights: Mapping[str, float] | None = None) -> Months:
    """Consecutive months of the same customers, with seeded moves, joins and leaves.

    Month 1 has ``n`` customers (ids ``C10001`` …) drawn like :func:`generate`
    (without quirks). From one month to the next, in this order:

    1. ``round(leave_share x customers)`` customers, drawn at random, leave;
    2. ``round(move_share x remaining customers)`` of those who stay move to
       another archetype, drawn with the mixture weights of the other
       archetypes; their behaviour is re-drawn from the new archetype (their
       tenure is kept);
    3. ``round(join_share x n)`` new customers join, with the next unused ids and
       archetypes drawn with the mixture weights.

    Customers who neither move nor join keep last month's row unchanged: every
    planted move is then the only change in behaviour, so a model that is held
    fixed can assign a segment change to nobody but a mover. (Re-drawing them
    from their own archetype would move a customer near a boundary between
    segments without any planted cause, and the answer key would no longer be
    exact.) Which moves a segmentation can see is discussed in
    ``docs/migration.md``; see :func:`clearly_placed`.

    Parameters
    ----------
    n : int
        Customers in month 1.
    months : int
        Number of months (at least 1).
    seed : int, default 0
        Seed; month ``m`` is drawn from ``SeedSequence(seed, spawn_key=(key, m))``.
    move_share, join_share, leave_share : float, default 0.05, 0.02, 0.02
        Shares as described above.
    weights : mapping of str to float, optional
        Archetype mixture weights, as in :func:`generate`.

    Returns
    -------
    Months
    """
    if int(months) != months or months < 1:
        raise CustsegError(f"the number of months must be a positive integer, got {months!r}")
    if int(n) != n or n < 1:
        raise CustsegError(f"the number of customers must be a positive integer, got {n!r}")
    _shares(move_share, join_share, leave_share)
    p = _weights_vector(weights)
    names = list(ARCHETYPES)

    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_MONTHS_KEY, 1)))
    codes = rng.choice(len(p), size=int(n), p=p)
    ids = np.strings.add("C", np.arange(10001, 10001 + int(n)).astype(str)).astype(object)
    cols = _behaviour(rng, codes)
    next_id = 10001 + int(n)
    frames, truth, events = [_month_rows(ids, cols)], [codes.copy()], []
    for month in range(2, int(months) + 1):
        rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_MONTHS_KEY, month)))
        leaving = np.zeros(ids.size, dtype=bool)
        leaving[rng.choice(ids.size, size=round(leave_share * ids.size), replace=False)] = True
        events += [(month, c, "leave", names[a], "") for c, a in zip(ids[leaving], codes[leaving])]
        ids, codes = ids[~leaving], codes[~leaving]
        cols = {k: v[~leaving] for k, v in cols.items()}

        movers = np.sort(rng.choice(ids.size, size=round(move_share * ids.size), replace=False))
        new_codes = _destination(rng, codes[movers], p)
        events += [(month, ids[i], "move", names[a], names[b]) for i, a, b in zip(movers, codes[movers], new_codes)]
        codes = codes.copy()
        codes[movers] = new_codes
        redrawn = _behaviour(rng, new_codes, tenure=cols["TENURE"][movers])
        cols = {k: v.copy() for k, v in cols.items()}
        for k, v in redrawn.items():
            cols[k][movers] = v

        n_join = round(join_share * int(n))
        join_codes = rng.choice(len(p), size=n_join, p=p)
        join_ids = np.strings.add("C", np.arange(next_id, next_id + n_join).astype(str)).astype(object)
        next_id += n_join
        joined = _behaviour(rng, join_codes)
        events += [(month, c, "join", "", names[b]) for c, b in zip(join_ids, join_codes)]
        ids = np.concatenate([ids, join_ids])
        codes = np.concatenate([codes, join_codes])
        cols = {k: np.concatenate([v, joined[k]]) for k, v in cols.items()}
        frames.append(_month_rows(ids, cols))
        truth.append(codes.copy())

    events_frame = pd.DataFrame(events, columns=["month", "customer_id", "event", "from_archetype",
                                                 "to_archetype"])
    events_frame = events_frame.astype({"month": "int64", "customer_id": "str", "event": "str",
                                        "from_archetype": "str", "to_archetype": "str"})
    events_frame = events_frame.sort_values(["month", "customer_id"], kind="stable").reset_index(drop=True)
    truth_series = [pd.Series(pd.Categorical.from_codes(c, categories=names), name="archetype") for c in truth]
    return Months(frames=frames, truth=truth_series, events=events_frame)


def archetype_centres(embedded: np.ndarray, archetypes: pd.Series) -> pd.DataFrame:
    """Mean embedded row of each archetype present (one row per archetype, in ARCHETYPES order).

    Parameters
    ----------
    embedded : ndarray of shape (n_samples, n_features)
        Rows in a model's feature space (e.g. ``Segmenter.embed(frame)``).
    archetypes : pandas.Series
        True archetype of each row, as in :attr:`Months.truth`.
    """
    embedded = np.asarray(embedded, dtype=float)
    labels = np.asarray(archetypes, dtype=object)
    if embedded.ndim != 2 or len(labels) != embedded.shape[0]:
        raise CustsegError("archetype_centres needs one archetype per embedded row")
    present = [a for a in ARCHETYPES if np.any(labels == a)]
    return pd.DataFrame([embedded[labels == a].mean(axis=0) for a in present], index=pd.Index(present,
                        name="archetype"))


def clearly_placed(embedded: np.ndarray, archetypes: pd.Series, centres: pd.DataFrame,
                   margin: float) -> np.ndarray:
    """Whether each row lies clearly on its own archetype's side of every other archetype.

    A row of archetype A is clearly placed when, for every other archetype B,
    its distance to B's centre exceeds its distance to A's centre by more than
    ``margin``. With ``margin = 2 delta``, where ``delta`` is the largest
    distance between an archetype's centre and the centre of the segment that
    holds most of its customers (one segment per archetype), the segmentation
    assigns such a row to its archetype's segment: by the triangle inequality
    its distance to that centre is below ``d(A) + delta`` and to any other
    centre above ``d(B) - delta``. A planted move between two clearly placed
    rows is therefore visible to the model; ``docs/migration.md`` gives the
    measured agreement for the others.

    Parameters
    ----------
    embedded : ndarray of shape (n_samples, n_features)
        Rows in the model's feature space.
    archetypes : pandas.Series
        True archetype of each row.
    centres : pandas.DataFrame
        From :func:`archetype_centres`; must cover every archetype in ``archetypes``.
    margin : float
        Non-negative margin, in the feature space's units.

    Returns
    -------
    ndarray of bool, shape (n_samples,)
    """
    if not (np.isfinite(margin) and margin >= 0):
        raise CustsegError(f"the margin must be a non-negative number (got {margin!r})")
    labels = np.asarray(archetypes, dtype=object)
    missing = set(labels) - set(centres.index)
    if missing:
        raise CustsegError(f"no centre for archetype(s) {sorted(missing)}")
    embedded = np.asarray(embedded, dtype=float)
    distances = np.column_stack([np.linalg.norm(embedded - c, axis=1) for c in centres.to_numpy()])
    own = centres.index.get_indexer(labels)
    rows = np.arange(labels.size)
    to_own = distances[rows, own].copy()
    distances[rows, own] = np.inf
    return distances.min(axis=1) - to_own > margin


def month_file(month: int) -> str:
    """File name of a month in a folder written by :func:`write_months`."""
    return f"month_{month:02d}.csv"


def write_months(folder, n: int, months: int, *, seed: int = 0, move_share: float = 0.05,
                 join_share: float = 0.02, leave_share: float = 0.02,
                 weights: Mapping[str, float] | None = None) -> Months:
    """Write :func:`generate_months` to ``folder``, all files or none.

    Files: ``month_01.csv`` … (the portfolios), ``truth_archetypes.csv``
    (``month``, ``customer_id``, ``archetype``) and ``truth_moves.csv`` (the
    planted events, as :attr:`Months.events`). Each is written to a temporary
    file beside its target; all are moved into place only when every one is
    complete. The folder is created if missing; existing files of those names
    are replaced.

    Returns
    -------
    Months
        What was written.
    """
    result = generate_months(n, months, seed=seed, move_share=move_share, join_share=join_share,
                             leave_share=leave_share, weights=weights)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth = pd.concat([pd.DataFrame({"month": m, "customer_id": f[schema.ID], "archetype": t.astype("str")})
                       for m, (f, t) in enumerate(zip(result.frames, result.truth), start=1)], ignore_index=True)
    tables = {month_file(m): f for m, f in enumerate(result.frames, start=1)}
    tables["truth_archetypes.csv"] = truth
    tables["truth_moves.csv"] = result.events
    temps = {}
    try:
        for name, table in tables.items():
            temps[name] = temp_beside(folder / name)
            table.to_csv(temps[name], index=False, lineterminator="\n")
        for name, temp in temps.items():
            os.replace(temp, folder / name)
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        raise
    return result
