"""Suggested actions per segment from a playbook, and a priority order across segments.

A playbook (default: the package's ``playbook.toml``; any TOML file, or YAML when
PyYAML is installed, of the same shape) lists actions, each with the conditions on
a segment's *facts* that trigger it and the revenue proxy it puts at stake. Facts
are the claims (true/false, from :mod:`custseg.claims`), the value and risk figures
(:mod:`custseg.value`) and the segment's stability.

A segment gets up to three matching actions, largest stake per customer first, each
with the facts that triggered it. Segments are ranked by *priority* = stake per
customer of their top action × size × stability weight (stable 1, weak 0.6,
unstable 0.3): the value at stake, how many customers it reaches, and how far the
segment can be trusted to exist.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from .claims import CLAIMS
from .errors import CustsegError
from .jsonio import jsonable
from .naming import SegmentName
from .value import REVENUES, PortfolioValue

MAX_ACTIONS = 3
STABILITY_WEIGHT = {"stable": 1.0, "weak": 0.6, "unstable": 0.3}
STAKES = (*REVENUES, "total")
_CONDITION = re.compile(r"^\s*(not\s+)?([a-z_]+)\s*(?:(<=|>=|==|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?))?\s*$")
_OPS = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b, "==": lambda a, b: a == b,
        "<": lambda a, b: a < b, ">": lambda a, b: a > b}


@dataclass(frozen=True)
class Condition:
    """``fact``, ``not fact`` or ``fact op number``."""

    fact: str
    op: str | None = None
    value: float | None = None
    negate: bool = False

    def holds(self, facts: dict) -> bool:
        x = facts[self.fact]
        if self.op is None:
            return bool(x) != self.negate
        return x is not None and x == x and _OPS[self.op](float(x), self.value)  # x == x: not NaN

    def text(self) -> str:
        return f"{'not ' if self.negate else ''}{self.fact}" + (f" {self.op} {self.value:g}" if self.op else "")


@dataclass(frozen=True)
class PlaybookAction:
    """One playbook entry."""

    id: str
    action: str
    why: str
    when: tuple[Condition, ...]
    stake: str
    fallback: bool = False


@dataclass(frozen=True)
class SuggestedAction:
    """An action suggested for one segment, with the facts that triggered it."""

    id: str
    action: str
    why: str
    stake: str
    stake_per_customer: float
    triggers: dict

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class SegmentActions:
    """A segment's suggested actions and its priority across segments (1 = first)."""

    segment: int
    actions: tuple[SuggestedAction, ...]
    priority_score: float
    priority: int
    stability_weight: float

    def to_dict(self) -> dict:
        return jsonable({"segment": self.segment, "priority": self.priority, "priority_score": self.priority_score,
                         "stability_weight": self.stability_weight, "actions": [a.to_dict() for a in self.actions]})


def default_playbook_path() -> Path:
    return Path(str(resources.files("custseg") / "playbook.toml"))


def load_playbook(path: str | Path | None = None) -> tuple[PlaybookAction, ...]:
    """Read a playbook (TOML, or YAML if PyYAML is installed); ``None`` for the default."""
    path = Path(path) if path is not None else default_playbook_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CustsegError(f"cannot read the playbook {path}: {exc.strerror}; give an existing TOML file.") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # optional: only when a YAML playbook is given

            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except ImportError:
        raise CustsegError(f"{path} is YAML but PyYAML is not installed; install it or write the playbook "
                           "as TOML.") from None
    except Exception as exc:  # the parsers' own error types differ; the message names the line
        raise CustsegError(f"the playbook {path} is not valid: {exc}. See docs/segments.md for the format.") from None
    return parse_playbook(data, str(path))


def parse_playbook(data: dict, source: str = "playbook") -> tuple[PlaybookAction, ...]:
    """Check a playbook's entries and turn them into :class:`PlaybookAction`."""
    entries = data.get("action") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CustsegError(f"{source} has no [[action]] entries; see docs/segments.md for the format.")
    out = []
    for i, e in enumerate(entries, 1):
        missing = [f for f in ("id", "action", "why", "when", "stake") if f not in e]
        if missing:
            raise CustsegError(f"{source}: action {i} lacks {', '.join(missing)}; every action needs id, "
                               "action, why, when and stake.")
        if e["stake"] not in STAKES:
            raise CustsegError(f"{source}: action '{e['id']}' has stake '{e['stake']}'; use one of "
                               f"{', '.join(STAKES)}.")
        out.append(PlaybookAction(str(e["id"]), str(e["action"]), str(e["why"]),
                                  tuple(_condition(c, source, e["id"]) for c in e["when"]), e["stake"],
                                  bool(e.get("fallback", False))))
    return tuple(out)


def _condition(text: str, source: str, action_id: str) -> Condition:
    m = _CONDITION.match(str(text))
    if not m:
        raise CustsegError(f"{source}: action '{action_id}' has condition '{text}'; write 'fact', 'not fact' "
                           "or 'fact <op> number'.")
    negate, fact, op, value = m.groups()
    return Condition(fact, op, float(value) if value is not None else None, bool(negate))


def segment_facts(names: list[SegmentName], value: PortfolioValue,
                  stability: pd.DataFrame | None = None) -> dict[int, dict]:
    """Every fact a playbook condition can use, per 1-based segment."""
    facts = {}
    for n in names:
        v = value.segments[n.segment]
        f = {key: key in n.held for key in CLAIMS}
        f.update({"size": v.size, "value_share": v.value_share})
        f.update({f"{k}_per_customer": x for k, x in v.per_customer.items()})
        f.update(v.risk)
        f.update(_stability_facts(stability, n.segment))
        facts[n.segment] = f
    return facts


def _stability_facts(stability: pd.DataFrame | None, segment: int) -> dict:
    if stability is None:
        return {"jaccard": float("nan"), "stability": "unknown"}
    row = stability.iloc[segment - 1]
    return {"jaccard": float(row["jaccard_mean"]), "stability": str(row["status"])}


def suggest_actions(names: list[SegmentName], value: PortfolioValue, stability: pd.DataFrame | None = None,
                    playbook: tuple[PlaybookAction, ...] | None = None) -> dict[int, SegmentActions]:
    """Suggest one to three actions per segment and rank segments by priority.

    Parameters
    ----------
    names : list of SegmentName
        From :func:`custseg.naming.name_segments`.
    value : PortfolioValue
        From :func:`custseg.value.segment_value`.
    stability : DataFrame, optional
        One row per segment in segment order with ``jaccard_mean`` and ``status``
        (``Stability.segments``); without it every segment weighs 1.
    playbook : tuple of PlaybookAction, optional
        Default: :func:`load_playbook` of the package's playbook.

    Returns
    -------
    dict
        ``{segment (1-based): SegmentActions}``.
    """
    playbook = load_playbook() if playbook is None else playbook
    facts = segment_facts(names, value, stability)
    known = set(next(iter(facts.values()))) if facts else set()
    for p in playbook:
        unknown = [c.fact for c in p.when if c.fact not in known]
        if unknown:
            raise CustsegError(f"playbook action '{p.id}' uses unknown fact(s) {', '.join(unknown)}; known facts: "
                               f"{', '.join(sorted(known))}.")
    chosen, scores, weights = {}, {}, {}
    for seg, f in facts.items():
        chosen[seg] = _matching(playbook, f)
        weights[seg] = STABILITY_WEIGHT.get(f["stability"], 1.0)
        top = chosen[seg][0].stake_per_customer if chosen[seg] else 0.0
        scores[seg] = top * f["size"] * weights[seg]
    order = sorted(scores, key=lambda s: (-scores[s], s))
    return {s: SegmentActions(s, tuple(chosen[s]), scores[s], order.index(s) + 1, weights[s]) for s in facts}


def _matching(playbook, facts: dict) -> list[SuggestedAction]:
    def suggest(p: PlaybookAction) -> SuggestedAction:
        stake = facts[f"{p.stake}_per_customer"]
        return SuggestedAction(p.id, p.action, p.why, p.stake, stake,
                               {c.text(): facts[c.fact] for c in p.when})

    hits = [suggest(p) for p in playbook if not p.fallback and all(c.holds(facts) for c in p.when)]
    if not hits:
        hits = [suggest(p) for p in playbook if p.fallback and all(c.holds(facts) for c in p.when)]
    hits.sort(key=lambda a: -a.stake_per_customer)
    return hits[:MAX_ACTIONS]
