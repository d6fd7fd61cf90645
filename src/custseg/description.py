"""Everything a run shows, as typed and versioned data: what renderers and sinks read.

:func:`describe` builds a :class:`Description` from a run's results; :func:`to_dict`
gives the JSON written as ``description.json`` (``metrics.json``, ``profiles.json`` and
``data_quality.json`` are parts of it); :func:`from_dict` reads one back, checking
every field, so a stored run can be rendered again.

Field order is the order of keys in the JSON. Numbers are held as they are written
(:mod:`custseg.jsonio` precision, NaN as ``None``), so a description read back equals
the one written. Segments are numbered from 1 (largest first) everywhere.

>>> d = describe(result)                                  # doctest: +SKIP
>>> from_dict(json.loads(dumps(to_dict(d)))) == d         # doctest: +SKIP
True
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CustsegError
from .exploration import Exploration, explore
from .jsonio import jsonable
from .persist import versions

if TYPE_CHECKING:
    from .run import RunResult

#: Version of the description's layout, written as its ``schema_version``. Raise it when a
#: field is added, removed, renamed or changes meaning; :func:`from_dict` reads only this version.
SCHEMA_VERSION = 4

__all__ = ["SCHEMA_VERSION", "Action", "Baseline", "ClaimCheck", "ClaimTest", "Concentration", "DataQuality",
           "Description", "Effect", "EvidenceRow", "ExecutiveSummary", "Finding", "Metrics", "PortfolioInsights",
           "PortfolioStatistic", "Projection", "Provenance", "Quantiles", "RuleCondition", "RulesSummary",
           "SegmentActions", "SegmentDescription", "SegmentRule", "SegmentStability", "SegmentValue", "Selection",
           "Silhouettes", "StabilityScore", "StabilitySummary", "Statistic", "SummaryRow", "Thresholds",
           "Training", "describe", "from_dict", "to_dict"]


@dataclass
class Provenance:
    """The library versions and the run configuration that produced the description."""

    versions: dict[str, str]
    config: dict[str, Any]


@dataclass
class Training:
    """The data the model was fitted on."""

    source: str
    n_customers: int
    fingerprint: str


@dataclass
class Finding:
    """One data-quality check's outcome (see :class:`custseg.quality.Finding`)."""

    check: str
    severity: str
    count: int
    rule: str
    column: str | None
    examples: list[str]


@dataclass
class DataQuality:
    """What validation found and repaired (see :class:`custseg.quality.QualityReport`)."""

    source: str
    n_rows: int
    columns_used: list[str]
    renamed: dict[str, str]
    ignored: list[str]
    empty_ignored: list[str]
    notes: list[str]
    missing: dict[str, int]
    findings: list[Finding]
    distribution: dict[str, dict[str, float | None]]


@dataclass
class EvidenceRow:
    """The evidence for one candidate number of segments k."""

    k: int
    inertia: float | None
    silhouette: float | None
    silhouette_se: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    gap: float | None
    gap_se: float | None
    gmm_bic: float | None


@dataclass
class Baseline:
    """The k = 1 values the knee and the gap rule compare against."""

    inertia: float | None
    gap: float | None
    gap_se: float | None


@dataclass
class Selection:
    """How the number of segments was chosen (see :class:`custseg.selection.Selection`)."""

    chosen_k: int
    auto_k: int | None
    clear_structure: bool | None  # None: k was fixed and the evidence not computed
    reason: str
    silhouette_sample_size: int | None
    votes: dict[str, int | None]
    baseline: Baseline | None
    table: list[EvidenceRow]


@dataclass
class Thresholds:
    """Mean Jaccard from which a segment is stable, below which it is unstable, and from which it is
    highly stable; the confidence of each segment's lower bound."""

    stable: float
    unstable: float
    highly_stable: float
    confidence: float


@dataclass
class SegmentStability:
    """One segment's bootstrap stability, with its number."""

    segment: int
    jaccard_mean: float | None
    jaccard_sd: float | None
    jaccard_lower: float | None
    status: str
    replicates: list[float | None]


@dataclass
class StabilitySummary:
    """Bootstrap stability of the segmentation and of every segment."""

    n_boot: int
    mean_ari: float | None
    thresholds: Thresholds
    segments: list[SegmentStability]


@dataclass
class Metrics:
    """The choice of k, its evidence and the stability (``metrics.json``)."""

    chosen_k: int
    selection: Selection
    stability: StabilitySummary
    inertia: float


@dataclass
class Statistic:
    """A segment's mean and median of one variable, and its mean's ratio to the portfolio mean."""

    mean: float | None
    median: float | None
    ratio: float | None


@dataclass
class PortfolioStatistic:
    """The whole portfolio's mean and median of one variable."""

    mean: float | None
    median: float | None


@dataclass
class StabilityScore:
    """A segment's bootstrap stability, inside its :class:`SegmentDescription`."""

    jaccard_mean: float | None
    jaccard_sd: float | None
    status: str


@dataclass
class ClaimTest:
    """One test of a claim: a robust statistic of the segment against a threshold."""

    statistic: str
    value: float | None
    op: str
    threshold: float | None
    holds: bool


@dataclass
class ClaimCheck:
    """A claim a segment's name makes, with its tests (see :mod:`custseg.claims`)."""

    claim: str
    label: str
    holds: bool
    tests: list[ClaimTest]


@dataclass
class Effect:
    """Rank-biserial effect of one measure, segment against the rest (see :mod:`custseg.naming`)."""

    measure: str
    effect: float | None
    median: float | None
    portfolio_median: float | None
    share_positive: float | None
    portfolio_share_positive: float | None


@dataclass
class SegmentValue:
    """Revenue proxies per customer and in total (per year), and the share of the portfolio's."""

    per_customer: dict[str, float | None]
    total: dict[str, float | None]
    value_share: float | None


@dataclass
class Action:
    """A playbook action suggested for a segment, with the facts that triggered it."""

    id: str
    action: str
    why: str
    stake: str
    stake_per_customer: float | None
    triggers: dict[str, Any]


@dataclass
class SegmentActions:
    """A segment's suggested actions (largest stake first) and its priority across segments (1 = first)."""

    segment: int
    priority: int
    priority_score: float | None
    stability_weight: float
    actions: list[Action]


@dataclass
class RuleCondition:
    column: str
    op: str
    threshold: float


@dataclass
class SegmentRule:
    """A short rule on original columns that picks the segment, and how well it does."""

    segment: int
    rule: str
    order: int
    conditions: list[RuleCondition]
    fidelity: float | None
    precision: float | None
    recall: float | None
    price_of_explainability: float | None


@dataclass
class Quantiles:
    """5th, 25th, 50th, 75th and 95th percentiles of one measure within a segment (box plots)."""

    q05: float | None
    q25: float | None
    median: float | None
    q75: float | None
    q95: float | None


@dataclass
class SegmentDescription:
    """One segment: size, profile, name, stability, centre, value and risk, actions and rule.

    ``colour`` is the segment's colour index (its identity, not its size rank), which every
    figure and the HTML use through :func:`custseg.report.palette.colour_for`.
    """

    segment: int
    colour: int
    size: int
    share: float
    variables: dict[str, Statistic]
    distribution: dict[str, Quantiles]
    name: str
    description: str
    traits: list[str]
    stability: StabilityScore
    centre: dict[str, float]
    claims: list[ClaimCheck]
    held_claims: list[str]
    effects: list[Effect]
    value: SegmentValue
    risk: dict[str, float | None]
    risk_summary: str
    actions: SegmentActions
    rule: str
    fidelity: float | None
    rule_detail: SegmentRule


@dataclass
class Projection:
    """A 2-D principal-component view of a customer sample and of the centres (the scatter figure)."""

    explained_variance: list[float]
    loadings: dict[str, list[float]]
    x: list[float]
    y: list[float]
    segment: list[int]
    centres: list[list[float]]


@dataclass
class NeighbourMap:
    """A t-SNE map of the scatter sample (``--tsne``): who is near whom, without distances or axes' meaning."""

    sample_size: int
    perplexity: float
    x: list[float]
    y: list[float]
    segment: list[int]


@dataclass
class Silhouettes:
    """Per-customer silhouette widths of the chosen segmentation on a sample (the silhouette diagram)."""

    sample_size: int
    mean: float | None
    segment: list[int]
    value: list[float]


@dataclass
class SummaryRow:
    """One segment's line in the executive table (see :class:`custseg.summary.SummaryRow`)."""

    segment: int
    name: str
    size: int
    share: float | None
    value_share: float | None
    risk: str
    stability: str
    jaccard: float | None
    top_action: str
    priority: int


@dataclass
class ExecutiveSummary:
    paragraph: str
    rows: list[SummaryRow]


@dataclass
class Concentration:
    """Where the customers with one risk flag sit, as counts and a sentence made from them."""

    signal: str
    segment: int
    count: int
    total: int
    segment_share: float | None
    sentence: str


@dataclass
class RulesSummary:
    method: str
    default_segment: int
    fidelity: float | None
    price_of_explainability: float | None


@dataclass
class PortfolioInsights:
    """Portfolio-level insights: the executive summary, value assumptions and totals, risk
    concentration and the rules' overall fidelity and price of explainability."""

    executive_summary: ExecutiveSummary
    value_assumptions: dict[str, float]
    value_total: dict[str, float | None]
    annualisation: str
    concentration: list[Concentration]
    rules: RulesSummary
    table: list[dict[str, Any]]  # one row per segment: segments_summary.csv


@dataclass
class KStability:
    """Bootstrap stability of the segmentation at one k (the choice of k rests on it).

    ``highly_stable``: a usable level (every segment's lower bound >= the highly-stable
    threshold, on the refits a level is confirmed on); ``jaccard_lower``: each segment's
    lower bound, in the order of ``jaccard``; ``n_boot``: the refits this k was given."""

    k: int
    all_stable: bool
    highly_stable: bool
    n_boot: int
    jaccard_min: float | None
    jaccard: list[float | None]
    jaccard_lower: list[float | None]


@dataclass
class SubSegmentation:
    """The drill-down under one segment: a stable split into ``k`` sub-segments, or none (``k`` null)."""

    segment: int
    n_customers: int
    k: int | None
    sizes: list[int]
    jaccard: list[float | None]


@dataclass
class ChoiceStability:
    """Which k reproduce under resampling, each k's segments' stability, and the drill-down."""

    stable_ks: list[int]
    highly_stable_ks: list[int]
    per_k: list[KStability]
    drilldown: list[SubSegmentation]


@dataclass
class Description:
    """Everything the report shows, as data (``description.json``)."""

    schema_version: int = field(default=SCHEMA_VERSION, init=False)
    custseg: Provenance
    training: Training
    data_quality: DataQuality
    exploration: Exploration
    features: list[str]
    metrics: Metrics
    insights: PortfolioInsights
    segments: list[SegmentDescription]
    portfolio: dict[str, PortfolioStatistic]
    centre_distances: list[list[float]]
    projection: Projection | None
    silhouettes: Silhouettes | None
    choice: ChoiceStability | None = None
    neighbours: NeighbourMap | None = None


# --------------------------------------------------------------------------- from a run

def describe(result: RunResult) -> Description:
    """The description of a computed run (a :class:`custseg.run.RunResult`)."""
    model = result.model
    features = [str(f) for f in model.feature_names_out_]
    stability = _stability(result.stability, result.numbers)
    profiles = jsonable(result.profiles.to_dict())
    quality = jsonable(result.quality.to_dict())
    selection = jsonable(model.selection_.to_dict())
    centres = np.asarray(model.cluster_centers_, dtype=float)
    distances = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))
    return Description(
        custseg=Provenance(versions=versions(), config=jsonable(result.config.to_dict())),
        training=Training(**jsonable(result.training_info())),
        data_quality=DataQuality(**{**quality, "findings": [Finding(**f) for f in quality["findings"]]}),
        exploration=(result.exploration if getattr(result, "exploration", None) is not None
                     else exploration_of(_measured(result)[0])),
        features=features,
        metrics=Metrics(chosen_k=int(model.n_clusters_),
                        selection=Selection(**{**selection,
                                               "baseline": Baseline(**selection["baseline"]) if selection["baseline"]
                                               else None,
                                               "table": [EvidenceRow(**r) for r in selection["table"]]}),
                        stability=stability, inertia=jsonable(model.inertia_)),
        insights=_typed(PortfolioInsights, _numbered_insights(result.insights.to_dict(), result.numbers)),
        segments=_segments(result, profiles["segments"], stability, features),
        portfolio={var: PortfolioStatistic(**stats) for var, stats in profiles["portfolio"].items()},
        centre_distances=jsonable(np.round(distances, 4)),
        projection=_typed(Projection, result.projection) if result.projection else None,
        silhouettes=_typed(Silhouettes, result.silhouettes) if result.silhouettes else None,
        choice=_choice(model.selection_, result.numbers),
        neighbours=_typed(NeighbourMap, result.neighbours) if getattr(result, "neighbours", None) else None,
    )


def exploration_of(frame) -> Exploration:
    """The data overview (:func:`custseg.exploration.explore`) of ``frame``, as a description holds it."""
    return _typed(Exploration, explore(frame).to_dict())


def _choice(selection, numbers) -> ChoiceStability | None:
    """The stability of every k the choice weighed, and the drill-down under each chosen segment."""
    if not hasattr(selection, "stability_to_dict"):
        return None
    d = jsonable(selection.stability_to_dict())
    if not d["per_k"]:
        return None
    per_k = [KStability(k=r["k"], all_stable=r["all_stable"], highly_stable=r["highly_stable"], n_boot=r["n_boot"],
                        jaccard_min=r["jaccard_min"], jaccard=[row["jaccard_mean"] for row in r["segments"]],
                        jaccard_lower=[row["jaccard_lower"] for row in r["segments"]]) for r in d["per_k"]]
    # the drill-down numbers segments by size, as the model does before identities renumber them
    drill = [SubSegmentation(segment=int(numbers[row["segment"] - 1]), n_customers=row["n_customers"],
                             k=row["k"], sizes=row["sizes"],
                             jaccard=[] if row["stability"] is None else
                             [seg["jaccard_mean"] for seg in row["stability"]["segments"]])
             for row in d["drilldown"]]
    return ChoiceStability(stable_ks=d["stable_ks"], highly_stable_ks=d["highly_stable_ks"], per_k=per_k,
                           drilldown=drill)


def _numbered_insights(data: dict, numbers) -> dict:
    """The insights' table carries each segment's number (the insights count segments by model position)."""
    table = [{**row, "segment": int(numbers[int(row["segment"]) - 1])} for row in data["table"]]
    return {**data, "table": table}


def _typed(cls, data: Mapping):
    """A part of the description built from its plain data, checked as :func:`from_dict` checks it."""
    return _parse(cls, jsonable(data), "the run", cls.__name__)


def _segments(result: RunResult, profiles: list[dict], stability: StabilitySummary,
              features: list[str]) -> list[SegmentDescription]:
    scores = {row.segment: row for row in stability.segments}
    centres = jsonable(result.model.cluster_centers_)
    rows = {r.segment: r for r in result.insights.summary.rows}
    quantiles = _quantiles(*_measured(result))
    segments = []
    # centres, insights and quantiles by model position; a segment's number is its identity's, which skips the
    # numbers of vanished segments
    for position, (name, prof) in enumerate(zip(result.names, profiles)):
        number = name.segment
        score = scores[number]
        extra = _typed(_InsightFields, {**result.insights.segment_fields(position + 1),
                                        "risk_summary": rows[number].risk})
        segments.append(SegmentDescription(
            segment=prof["segment"], colour=_colour(result, position), size=prof["size"], share=prof["share"],
            variables={var: Statistic(**stats) for var, stats in prof["variables"].items()},
            distribution=quantiles.get(position + 1, {}),
            name=name.name, description=name.description, traits=list(name.traits),
            stability=StabilityScore(score.jaccard_mean, score.jaccard_sd, score.status),
            centre=dict(zip(features, centres[position])),
            **{f.name: getattr(extra, f.name) for f in fields(_InsightFields)}))
    return segments


def _measured(result) -> tuple:
    """The customers and segments the overview and the quantiles describe: a large run's sample, else everyone."""
    take = getattr(result, "sample", None)
    if take is None:
        return result.portfolio.frame, result.labels
    return result.portfolio.frame.iloc[take], result.labels[take]


def _colour(result, position: int) -> int:
    """The segment's colour index: its identity's (kept across refits with --reference), else its position."""
    identities = getattr(result, "identities", None)
    return int(identities[position].colour) if identities else position


@dataclass
class _InsightFields:
    """The per-segment fields :meth:`custseg.summary.Insights.segment_fields` gives."""

    claims: list[ClaimCheck]
    held_claims: list[str]
    effects: list[Effect]
    value: SegmentValue
    risk: dict[str, float | None]
    risk_summary: str
    actions: SegmentActions
    rule: str
    fidelity: float | None
    rule_detail: SegmentRule


#: Measures whose spread per segment the report shows as box plots.
DISTRIBUTION_MEASURES = ("purchases_per_month", "cash_advance_per_month", "BALANCE", "CREDIT_LIMIT",
                         "limit_utilisation", "PRC_FULL_PAYMENT", "PURCHASES_FREQUENCY",
                         "payments_per_month")


def _quantiles(frame, labels) -> dict[int, dict[str, Quantiles]]:
    from .profiles import _variables as variables

    values = variables(frame)
    keep = [m for m in DISTRIBUTION_MEASURES if m in values.columns]
    segment = np.asarray(labels) + 1
    out: dict[int, dict[str, Quantiles]] = {}
    for seg in np.unique(segment):
        part = values.loc[segment == seg, keep]
        out[int(seg)] = {m: Quantiles(*jsonable(part[m].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).to_numpy()))
                         for m in keep}
    return out


def _stability(stability, numbers) -> StabilitySummary:
    d = jsonable(stability.to_dict())
    # one row per segment in ascending label order; outputs number segments by their identity (``numbers``,
    # ascending in model order)
    reps = stability.replicates
    rows = [SegmentStability(**{**row, "segment": int(number), "replicates": jsonable(reps[:, position])})
            for position, (number, row) in enumerate(zip(numbers, d["segments"]))]
    return StabilitySummary(n_boot=d["n_boot"], mean_ari=d["mean_ari"], thresholds=Thresholds(**d["thresholds"]),
                            segments=rows)


# --------------------------------------------------------------------------- JSON

def to_dict(description: Description) -> dict:
    """The description as JSON-ready plain data, keys in field order."""
    return jsonable(asdict(description))


def from_dict(data: Mapping, *, source: str = "the description") -> Description:
    """Read a description from plain data (e.g. a parsed ``description.json``), checking every field.

    Raises
    ------
    CustsegError
        When the schema version is not :data:`SCHEMA_VERSION`, or a field is missing,
        unknown or of the wrong type; the message names ``source`` and the field.
    """
    if not isinstance(data, Mapping):
        raise CustsegError(f"{source} is not a JSON object; give the description.json a run wrote.")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise CustsegError(f"{source} has schema version {version!r}, but this custseg reads version "
                           f"{SCHEMA_VERSION}; run `custseg run` again to write a current description.")
    return _parse(Description, data, source, "description")


#: What a JSON scalar of each type must be: (as said in messages, test).
_SCALARS = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a finite number",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)),
    str: ("text", lambda v: isinstance(v, str)),
}


def _parse(tp, value, source: str, where: str):
    """``value`` checked against the type ``tp`` (dataclasses, lists, dicts, scalars, ``X | None``)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse(inner, value, source, where)
    if is_dataclass(tp):
        return _parse_dataclass(tp, value, source, where)
    if origin is list:
        _expect(isinstance(value, list), "a list", value, source, where)
        return [_parse(args[0], v, source, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _expect(isinstance(value, Mapping), "an object", value, source, where)
        return {str(k): _parse(args[1], v, source, f"{where}.{k}") for k, v in value.items()}
    expected, test = _SCALARS[tp]
    _expect(test(value), expected, value, source, where)
    return value


def _parse_dataclass(cls, value, source: str, where: str):
    _expect(isinstance(value, Mapping), "an object", value, source, where)
    names = [f.name for f in fields(cls)]
    unknown = [k for k in value if k not in names]
    missing = [n for n in names if n not in value]
    if unknown or missing:
        problems = ([f"unknown field(s) {', '.join(map(str, unknown))}"] if unknown else []) + \
                   ([f"missing field(s) {', '.join(missing)}"] if missing else [])
        raise CustsegError(f"{source}: {where} has {' and '.join(problems)}; it was not written by this "
                           f"version of custseg (schema {SCHEMA_VERSION}). Run `custseg run` again.")
    hints = _hints(cls)
    parsed = {n: _parse(hints[n], value[n], source, f"{where}.{n}") for n in names}
    init = {f.name for f in fields(cls) if f.init}
    return cls(**{n: v for n, v in parsed.items() if n in init})


@cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _expect(ok: bool, expected: str, value, source: str, where: str) -> None:
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise CustsegError(f"{source}: {where} should be {expected}, not {shown}; "
                           "give the description.json a run wrote, unchanged.")
