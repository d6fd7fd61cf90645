"""What the report's figures are, without drawing any: names, order, sections, titles, labels,
thresholds and how to share the drawing out.

The report's text (:mod:`custseg.report.html`, :mod:`custseg.report.markdown`) and the
drawing processes (:mod:`custseg.report.drawing`) read these; only
:mod:`custseg.report.figures` imports matplotlib, so a run that draws its figures in
other processes never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

#: Order of figures in the report.
FIGURE_ORDER = ("distributions", "missing", "correlation", "evidence", "k_stability", "silhouette", "sizes",
                "projection", "tsne", "distances", "profile", "effects", "boxes", "value_risk", "stability")

#: Figures drawn only when a run asks for them (``--tsne``).
OPTIONAL_FIGURES = ("tsne",)

#: The figures of each report section.
SECTIONS = {
    "summary": ("sizes", "value_risk"),
    "segments": ("projection", "tsne", "effects", "profile", "boxes", "distances"),
    "choice": ("evidence", "k_stability", "silhouette", "stability"),
    "data": ("distributions", "missing", "correlation"),
}

#: Plain-language titles of the figures (also used as alt text and captions).
FIGURE_TITLES = {
    "distributions": "Distribution of every input column",
    "missing": "Missing values per input column",
    "correlation": "How the input columns move together (Spearman correlation)",
    "evidence": "How the number of segments was chosen",
    "k_stability": "Which numbers of segments reproduce under resampling",
    "silhouette": "How well each customer fits its segment (silhouette widths)",
    "sizes": "Customers per segment, with stability",
    "projection": "Customers on a two-dimensional map of the model space",
    "tsne": "Customers on a t-SNE map (neighbourhoods only)",
    "distances": "Distances between segment centres",
    "profile": "What sets each segment apart (segment centres on the model's standardised scale)",
    "effects": "Key measures per segment: median, and how different from the other customers",
    "boxes": "Spread of key behaviours within each segment",
    "value_risk": "Value and risk per segment",
    "stability": "How reproducible each segment is under resampling",
}


#: A replicate with Jaccard below this counts as the segment having dissolved (Hennig 2007).
DISSOLVED_BELOW = 0.5


#: Key measures shown per segment, in report order, with a plain-language label and a kind
#: ("amount", "share" or "score") that decides the number format.
KEY_MEASURES = (
    ("purchases_per_month", "Purchases per month", "amount"),
    ("cash_advance_per_month", "Cash advances per month", "amount"),
    ("BALANCE", "Balance", "amount"),
    ("CREDIT_LIMIT", "Credit limit", "amount"),
    ("limit_utilisation", "Limit utilisation", "share"),
    ("PRC_FULL_PAYMENT", "Months paid in full", "share"),
    ("PURCHASES_FREQUENCY", "Purchase frequency", "share"),
    ("PURCHASES_INSTALLMENTS_FREQUENCY", "Instalment purchase frequency", "share"),
    ("ONEOFF_PURCHASES_FREQUENCY", "One-off purchase frequency", "share"),
    ("payments_per_month", "Payments per month", "amount"),
)

#: Plain-language names of model features and profile columns; others get a generic label.
LABELS = {
    "log_balance": "Balance (log)",
    "balance_frequency": "Balance update frequency",
    "log_purchases_per_month": "Purchases per month (log)",
    "oneoff_share": "One-off share of purchases",
    "purchases_frequency": "Purchase frequency",
    "oneoff_purchases_frequency": "One-off purchase frequency",
    "purchases_installments_frequency": "Instalment purchase frequency",
    "log_cash_advance_per_month": "Cash advances per month (log)",
    "cash_advance_frequency": "Cash-advance frequency",
    "limit_utilisation": "Limit utilisation",
    "log_credit_limit": "Credit limit (log)",
    "log_payments_per_month": "Payments per month (log)",
    "log_payment_to_minimum": "Payments ÷ minimum due (log)",
    "prc_full_payment": "Months paid in full",
    "log_average_purchase": "Average purchase (log)",
    **{key: label for key, label, _ in KEY_MEASURES},
}

#: Stability thresholds on the bootstrap Jaccard similarity (Hennig 2007).
WEAK_AT, STABLE_AT, HIGHLY_STABLE_AT = 0.6, 0.75, 0.85


def label(name: str) -> str:
    """Plain-language label of a feature or column name."""
    if name in LABELS:
        return LABELS[name]
    text = str(name)
    log = text.lower().startswith("log_")
    if log:
        text = text[4:]
    text = text.replace("_", " ").strip().lower()
    text = text[:1].upper() + text[1:]
    return f"{text} (log)" if log else text


def num(value) -> float:
    """A float, with ``None`` and non-numbers as NaN."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def short_ratio(ratio: float) -> str:
    """A ratio to the portfolio as '2.3×' (two significant figures, '<0.01×' below)."""
    if not math.isfinite(ratio):
        return "–"
    if ratio < 0.01:
        return "<0.01×"
    if ratio < 1:
        return f"{ratio:.2f}×"
    if ratio < 10:
        return f"{ratio:.1f}×"
    return f"{ratio:,.0f}×"


#: Kaufman & Rousseeuw's (1990) reading of the average silhouette width.
SILHOUETTE_BANDS = ((0.25, "weak"), (0.5, "reasonable"), (0.7, "strong"))


#: Rough relative drawing cost of each figure (CPU seconds on the real file), to share them out evenly.
COST = {"distributions": 1.2, "evidence": 0.75, "correlation": 0.7, "boxes": 0.55, "stability": 0.5,
        "profile": 0.4, "effects": 0.35, "tsne": 0.35, "missing": 0.35, "value_risk": 0.3, "projection": 0.3,
        "k_stability": 0.3, "sizes": 0.2, "silhouette": 0.2, "distances": 0.15}


def figure_names(names: Iterable[str]) -> list[str]:
    """Figure names in report order (known ones first, then any others as given)."""
    names = list(names)
    return [n for n in FIGURE_ORDER if n in names] + [n for n in names if n not in FIGURE_ORDER]


def shares(names: Sequence[str], processes: int) -> list[list[str]]:
    """Split the figures into ``processes`` groups of about equal cost (largest first, each to the lightest group)."""
    groups: list[list[str]] = [[] for _ in range(processes)]
    loads = [0.0] * processes
    for name in sorted(names, key=lambda n: -COST[n]):
        lightest = loads.index(min(loads))
        groups[lightest].append(name)
        loads[lightest] += COST[name]
    return [group for group in groups if group]
