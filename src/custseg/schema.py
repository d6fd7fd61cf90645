"""The card-portfolio schema as data: columns, kinds, ranges, units and aliases.

Every other stage asks this module what a column is rather than hard-coding
names, so a renamed or extended schema is a change in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ID = "CUST_ID"


@dataclass(frozen=True)
class Column:
    """One column of the card-portfolio table.

    Parameters
    ----------
    name : str
        Canonical upper-case name, as in the public dataset.
    kind : {"id", "amount", "frequency", "count", "share", "months"}
        What the values measure; decides range checks and transforms.
    description : str
        Plain-language meaning, shown in reports.
    lower, upper : float or None
        Valid range in original units (``None``: unbounded).
    aliases : tuple of str
        Other spellings seen in public copies of the table.
    """

    name: str
    kind: str
    description: str
    lower: float | None = None
    upper: float | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def unit(self) -> str:
        return {
            "id": "text",
            "amount": "currency",
            "frequency": "score 0-1",
            "count": "transactions",
            "share": "share 0-1",
            "months": "months",
        }[self.kind]


COLUMNS: tuple[Column, ...] = (
    Column(ID, "id", "card holder id", aliases=("customer_id", "customer", "client_id", "id", "cust_no", "customer_number")),
    Column("BALANCE", "amount", "balance left on the account", 0.0, aliases=("balance_amount",)),
    Column("BALANCE_FREQUENCY", "frequency", "how often the balance is updated", 0.0, 1.0, aliases=("balance_freq",)),
    Column("PURCHASES", "amount", "purchase amount", 0.0, aliases=("purchase_amount", "total_purchases")),
    Column("ONEOFF_PURCHASES", "amount", "largest purchase made in one go", 0.0, aliases=("one_off_purchases",)),
    Column("INSTALLMENTS_PURCHASES", "amount", "amount bought in instalments", 0.0,
           aliases=("installment_purchases", "instalment_purchases", "instalments_purchases")),
    Column("CASH_ADVANCE", "amount", "cash advance taken", 0.0, aliases=("cash_advances",)),
    Column("PURCHASES_FREQUENCY", "frequency", "how often purchases are made", 0.0, 1.0,
           aliases=("purchase_frequency", "purchases_freq")),
    Column("ONEOFF_PURCHASES_FREQUENCY", "frequency", "how often one-go purchases are made", 0.0, 1.0,
           aliases=("one_off_purchases_frequency", "oneoff_purchase_frequency")),
    Column("PURCHASES_INSTALLMENTS_FREQUENCY", "frequency", "how often instalment purchases are made", 0.0, 1.0,
           aliases=("purchases_installment_frequency", "purchase_installments_frequency",
                    "installments_purchases_frequency", "installment_purchases_frequency")),
    Column("CASH_ADVANCE_FREQUENCY", "frequency", "how often cash advances are taken", 0.0, 1.0,
           aliases=("cash_advance_freq",)),
    Column("CASH_ADVANCE_TRX", "count", "number of cash-advance transactions", 0.0,
           aliases=("cash_advance_transactions", "cash_advance_trxs")),
    Column("PURCHASES_TRX", "count", "number of purchase transactions", 0.0,
           aliases=("purchase_transactions", "purchases_transactions", "purchase_trx")),
    Column("CREDIT_LIMIT", "amount", "credit limit", 0.0, aliases=("limit", "credit_line")),
    Column("PAYMENTS", "amount", "amount paid", 0.0, aliases=("payment_amount", "total_payments")),
    Column("MINIMUM_PAYMENTS", "amount", "minimum payments made", 0.0,
           aliases=("min_payments", "minimum_payment_amount", "min_payment")),
    Column("PRC_FULL_PAYMENT", "share", "share of months paid in full", 0.0, 1.0,
           aliases=("percent_full_payment", "pct_full_payment", "full_payment_share")),
    Column("TENURE", "months", "months of card service in the window", 1.0, 12.0,
           aliases=("tenure_months", "months_on_book")),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
BEHAVIOUR: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind != "id")
AMOUNTS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind == "amount")
FREQUENCIES: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind in ("frequency", "share"))
COUNTS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.kind == "count")

_SPELLING = {"instalment": "installment", "freq": "frequency", "trxs": "trx", "pct": "prc", "min": "minimum"}


def normalise_name(name: str) -> str:
    """Reduce a column name to a spelling-insensitive key.

    Case, separators (space, ``-``, ``_``, ``.``), a plural ``s`` on each word and
    British/American ``instalment`` are all folded, so ``Minimum Payment`` and
    ``MINIMUM_PAYMENTS`` share a key. ``oneoff`` and ``one_off`` fold together too.
    """
    words = [w for w in re.split(r"[^0-9a-z]+", str(name).strip().lower()) if w]
    folded = []
    for w in words:
        w = _SPELLING.get(w, w)
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        w = _SPELLING.get(w, w)
        folded.append(w)
    return "".join(folded)


def _keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for col in COLUMNS:
        for spelling in (col.name, *col.aliases):
            keys.setdefault(normalise_name(spelling), col.name)
    return keys


NAME_KEYS: dict[str, str] = _keys()


def canonical_name(name: str) -> str | None:
    """Return the canonical column a header refers to, or ``None`` if unknown."""
    return NAME_KEYS.get(normalise_name(name))
