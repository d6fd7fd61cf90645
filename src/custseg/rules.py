"""Threshold rules a branch can apply, their fidelity and price of explainability.

For each segment a shallow one-vs-rest decision tree (depth ≤ 3, balanced class
weights) is fitted on the original columns; the segment's rule is the tree leaf
with the best F1 for the segment, i.e. at most three conditions such as
``CASH_ADVANCE > 1,200 and PURCHASES_FREQUENCY ≤ 0.25``. Thresholds are rounded
to two significant figures (shares to two decimals) and every figure is measured
with the rounded rule. Missing values count as the column's portfolio median.

The rules form a *decision list*: a customer takes the first rule they match,
rules ordered by precision (most precise first); customers matching none take the
``default`` segment (the one most of them belong to). Reported:

- **fidelity** per segment: share of its customers whom the list gives their own
  segment; overall: share of all customers;
- **precision** and **recall** of each rule on its own;
- **price of explainability**: inertia (in the model's scaled feature space) of the
  rule partition around its own means ÷ the k-means inertia, overall and per
  segment (the rule group's inertia ÷ the segment's k-means inertia). 1 is free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

from . import schema
from .jsonio import jsonable

MAX_DEPTH = 3


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # "<=" or ">"
    threshold: float

    def mask(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy()
        return x <= self.threshold if self.op == "<=" else x > self.threshold

    def text(self) -> str:
        kind = schema.BY_NAME[self.column].kind
        value = f"{self.threshold:.2f}" if kind in ("frequency", "share") else f"{self.threshold:,.10g}"
        return f"{self.column} {'≤' if self.op == '<=' else '>'} {value}"


@dataclass(frozen=True)
class SegmentRule:
    """One segment's rule and how well it explains the segment."""

    segment: int
    conditions: tuple[Condition, ...]
    fidelity: float
    precision: float
    recall: float
    price_of_explainability: float
    order: int

    @property
    def text(self) -> str:
        return " and ".join(c.text() for c in self.conditions) or "all customers"

    def to_dict(self) -> dict:
        return jsonable({"segment": self.segment, "rule": self.text, "order": self.order,
                         "conditions": [{"column": c.column, "op": c.op, "threshold": c.threshold}
                                        for c in self.conditions],
                         "fidelity": self.fidelity, "precision": self.precision, "recall": self.recall,
                         "price_of_explainability": self.price_of_explainability})


@dataclass(frozen=True)
class Rules:
    """The decision list over all segments, with overall fidelity and price of explainability."""

    segments: dict[int, SegmentRule]
    default: int
    fidelity: float
    price_of_explainability: float
    fill_values: dict[str, float]

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """1-based segment each customer's rules give (first matching rule, else the default)."""
        X = _matrix(frame, self.fill_values)
        out = np.full(len(X), self.default)
        done = np.zeros(len(X), dtype=bool)
        for rule in sorted(self.segments.values(), key=lambda r: r.order):
            hit = _matches(rule.conditions, X) & ~done
            out[hit] = rule.segment
            done |= hit
        return out

    def to_dict(self) -> dict:
        return jsonable({"method": "one-vs-rest decision tree (depth <= 3) per segment, best-F1 leaf; "
                                   "decision list by precision",
                         "default_segment": self.default, "fidelity": self.fidelity,
                         "price_of_explainability": self.price_of_explainability,
                         "segments": {s: r.to_dict() for s, r in self.segments.items()}})


def explain(frame: pd.DataFrame, labels: np.ndarray, Z: np.ndarray, centres: np.ndarray, inertia: float,
            random_state: int = 0) -> Rules:
    """Fit threshold rules per segment and measure their fidelity and price of explainability.

    Parameters
    ----------
    frame : DataFrame
        The validated portfolio (canonical columns; rules use its behaviour columns).
    labels : ndarray of int
        0-based segment of each row.
    Z : ndarray of shape (n, d)
        The scaled features k-means saw (``Segmenter.embed``).
    centres : ndarray of shape (k, d)
        The k-means centres.
    inertia : float
        The k-means inertia.
    random_state : int
        Seed of the trees (ties between equally good splits).
    """
    labels = np.asarray(labels)
    k = len(centres)
    columns = [c for c in schema.BEHAVIOUR if c in frame.columns and c != "TENURE"]
    fill = {c: float(frame[c].median()) for c in columns}
    X = _matrix(frame, fill)
    leaf_size = max(20, len(X) // 200)
    found = {}
    for s in range(k):
        y = labels == s
        tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, min_samples_leaf=leaf_size, class_weight="balanced",
                                      random_state=random_state).fit(X.to_numpy(), y)
        found[s + 1] = _best_leaf(tree, X, y)
    precision = {}
    for s, conds in found.items():
        hit = _matches(conds, X)
        precision[s] = float((labels[hit] == s - 1).mean()) if hit.any() else 0.0
    order = {s: i + 1 for i, s in enumerate(sorted(found, key=lambda s: (-precision[s], s)))}
    provisional = Rules({s: SegmentRule(s, found[s], np.nan, precision[s], np.nan, np.nan, order[s])
                         for s in found}, 0, np.nan, np.nan, fill)
    unmatched = provisional.assign(frame) == 0
    default = int(np.bincount(labels[unmatched], minlength=k).argmax()) + 1 if unmatched.any() else 1
    assigned = Rules(provisional.segments, default, np.nan, np.nan, fill).assign(frame)
    truth = labels + 1
    rule_inertia = _inertia_by_group(Z, assigned, k)
    model_inertia = np.bincount(labels, weights=((Z - centres[labels]) ** 2).sum(axis=1), minlength=k)
    segments = {}
    for s, conds in found.items():
        own = truth == s
        hit = _matches(conds, X)
        segments[s] = SegmentRule(s, conds, float((assigned[own] == s).mean()) if own.any() else np.nan,
                                  precision[s], float(hit[own].mean()) if own.any() else np.nan,
                                  float(rule_inertia[s - 1] / model_inertia[s - 1])
                                  if model_inertia[s - 1] > 0 else np.nan, order[s])
    return Rules(segments, default, float((assigned == truth).mean()), float(rule_inertia.sum() / inertia), fill)


def _matrix(frame: pd.DataFrame, fill: dict[str, float]) -> pd.DataFrame:
    return frame[list(fill)].astype("float64").fillna(fill)


def _matches(conditions, X: pd.DataFrame) -> np.ndarray:
    hit = np.ones(len(X), dtype=bool)
    for c in conditions:
        hit &= c.mask(X)
    return hit


def _best_leaf(tree: DecisionTreeClassifier, X: pd.DataFrame, y: np.ndarray) -> tuple[Condition, ...]:
    """The leaf path (rounded thresholds, merged conditions) with the best F1 for ``y``."""
    t = tree.tree_
    best, best_f1 = (), -1.0
    stack = [(0, ())]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1:
            conds = _simplify(path)
            hit = _matches(conds, X)
            tp = int((hit & y).sum())
            f1 = 2 * tp / (hit.sum() + y.sum()) if hit.any() else 0.0
            if f1 > best_f1:
                best, best_f1 = conds, f1
            continue
        column = X.columns[t.feature[node]]
        threshold = _round(float(t.threshold[node]), column)
        stack.append((t.children_right[node], path + (Condition(column, ">", threshold),)))
        stack.append((t.children_left[node], path + (Condition(column, "<=", threshold),)))
    return best


def _round(value: float, column: str) -> float:
    if schema.BY_NAME[column].kind in ("frequency", "share"):
        return round(value, 2)
    if value == 0:
        return 0.0
    digits = 1 - int(np.floor(np.log10(abs(value))))
    return float(round(value, digits))


def _simplify(path: tuple[Condition, ...]) -> tuple[Condition, ...]:
    """Keep the tightest bound per column and direction, in the order first used."""
    tight: dict[tuple[str, str], float] = {}
    for c in path:
        key = (c.column, c.op)
        pick = min if c.op == "<=" else max
        tight[key] = pick(tight[key], c.threshold) if key in tight else c.threshold
    return tuple(Condition(col, op, v) for (col, op), v in tight.items())


def _inertia_by_group(Z: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(k)
    for s in range(1, k + 1):
        members = Z[groups == s]
        if len(members):
            out[s - 1] = ((members - members.mean(axis=0)) ** 2).sum()
    return out
