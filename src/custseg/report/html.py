"""The self-contained HTML report, and the view model it shares with the Markdown report.

:func:`build_context` turns the description into display-ready values (formatted
numbers, labels, ordering); it computes no statistics. Both renderers read it, so
the HTML and Markdown reports always say the same thing.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from custseg.description import (DataQuality, Description, Finding, PortfolioStatistic, SegmentDescription,
                                 Selection)

from .catalogue import (DISSOLVED_BELOW, FIGURE_TITLES, KEY_MEASURES, SECTIONS, SILHOUETTE_BANDS, STABLE_AT, WEAK_AT,
                      figure_names, label, num, short_ratio)
from .palette import colour_for

TEMPLATES = Path(__file__).resolve().parent / "templates"
DASH = "–"
SEVERITY_ORDER = ("fatal", "repaired", "imputed", "warning", "info")
SEVERITY_MEANING = {
    "fatal": "stops the run",
    "repaired": "values corrected by a documented rule",
    "imputed": "empty values filled in by the model pipeline",
    "warning": "kept as reported, worth a look",
    "info": "for context, no action taken",
}
STATUS_MEANING = {
    "stable": f"recovered in resamples (Jaccard ≥ {STABLE_AT:g})",
    "weak": f"partly recovered ({WEAK_AT:g} ≤ Jaccard < {STABLE_AT:g})",
    "unstable": f"not reliably recovered (Jaccard < {WEAK_AT:g})",
}
FIGURE_CAPTIONS = {
    "distributions": "One histogram per input column after validation. Columns whose values are strongly skewed "
                     "(most customers near 0, a few very large) are on a log axis, so the bulk of the customers "
                     "is visible; the box in each panel gives the missing values and the share of exact zeros.",
    "missing": "How many customers have no value recorded in each column (orange). Missing values are skipped "
               "in the profiles and filled in by the model pipeline.",
    "correlation": "Spearman rank correlation between every pair of input columns: +1 (red) rise together, "
                   "−1 (blue) one rises as the other falls, 0 no monotone relation. Strongly related columns carry "
                   "overlapping information.",
    "evidence": "Six criteria for each candidate number of segments k. Axes of non-negative criteria start at 0, so "
                "a small difference looks small. The shaded band is the chosen k; orange diamonds mark the k each "
                "criterion prefers on its own (the knee for inertia). Dotted lines on the silhouette panel: "
                "Kaufman & Rousseeuw's readings (0.25 weak, 0.5 reasonable, 0.7 strong structure).",
    "tsne": "The same sample of customers as the map above, placed by t-SNE so that customers with similar "
            "behaviour sit together. Only neighbourhoods are meaningful: not the distances between groups, "
            "nor their sizes, nor the axes.",
    "k_stability": "For each candidate k the data were resampled and re-segmented; each grey dot is one segment's "
                   "mean Jaccard similarity with its best match in the resamples. A k reproduces when every "
                   "segment is at or above the dashed line (0.75). Without clear structure the choice offers the "
                   "largest k whose every segment is highly stable: even the 95 % lower bound of its mean (the "
                   "diamond, for the least stable segment) at or above the solid line (0.85).",
    "silhouette": "Each customer's silhouette width for the chosen segmentation, sorted within each segment: how "
                  "much closer the customer is to its own segment than to the next one. Long bars mean customers "
                  "well inside their segment; bars left of 0 are customers closer to another segment. The dashed "
                  "line is the average.",
    "sizes": "Number of customers in each segment with its share of the portfolio, and its stability (mean "
             "Jaccard similarity when the model is refitted on resampled customers).",
    "projection": "Customers on the two directions of the model space that spread them most (principal "
                  "components). Each axis says which features increase (+) or decrease (−) along it, and how much of "
                  "the total spread it shows. Segments overlapping on this map may still be apart in the directions "
                  "the map cannot show.",
    "distances": "Distance between each pair of segment centres in the model space (standard deviations of the "
                 "features). Small numbers mark segments that differ little; they are the ones most easily confused.",
    "profile": "Where each segment's centre lies on every model feature, in standard deviations from the "
               "portfolio average (0). Red cells are above average, blue below; amounts enter on a log scale.",
    "effects": "Each cell gives the segment's median of a key measure; the row label gives the median of all "
               "customers. The colour says how often a customer of the segment has a higher value than a customer "
               "outside it, minus how often lower (rank-biserial correlation, −1 to +1): higher and lower values "
               "are shown with the same strength, and a few extreme customers cannot colour a cell.",
    "boxes": "How the customers of each segment spread on key behaviours: the box holds the middle half, the line "
             "is the median and the whiskers reach from the 5th to the 95th percentile. Amounts are on a log axis.",
    "value_risk": "Left: each segment's share of the estimated yearly revenue (colour) beside its share of "
                  "customers (grey); a segment whose coloured bar is longer earns more than its size. Right: the "
                  "share of the segment's customers over their limit, paying about the minimum, and taking cash "
                  "advances. Revenue is a proxy (see Features and method).",
    "stability": "Each dot is one bootstrap resample: how well the segment was found again (Jaccard similarity, "
                 f"1 = exactly). The red line is the mean used for the status (stable from {STABLE_AT:g}, weak from "
                 f"{WEAK_AT:g}). Dots near 0 are resamples in which the segment dissolved (Jaccard below "
                 f"{DISSOLVED_BELOW:g}): a segment with some of them is not reliably there, even when its mean is high.",
}


# --------------------------------------------------------------------------- formatting

def fmt_int(value) -> str:
    v = num(value)
    return f"{v:,.0f}" if math.isfinite(v) else DASH


def fmt_share(value, digits: int = 1) -> str:
    v = num(value)
    return f"{v:.{digits}%}" if math.isfinite(v) else DASH


def fmt_float(value, digits: int = 3) -> str:
    v = num(value)
    return f"{v:,.{digits}f}" if math.isfinite(v) else DASH


def fmt_amount(value) -> str:
    """Currency amounts: whole units from 10 up, two decimals below."""
    v = num(value)
    if not math.isfinite(v):
        return DASH
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.2f}"


def fmt_measure(value, kind: str) -> str:
    v = num(value)
    if not math.isfinite(v):
        return DASH
    if kind == "share":
        return f"{v:.0%}" if abs(v) >= 0.1 else f"{v:.1%}"
    if kind == "amount":
        return fmt_amount(v)
    return f"{v:,.2f}"


def fmt_ratio(value) -> str:
    return short_ratio(num(value))


def fmt_big(value) -> str:
    """Large criterion values (inertia, Calinski-Harabasz, BIC) with separators."""
    v = num(value)
    if not math.isfinite(v):
        return DASH
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def fmt_pm(value, se, digits: int = 3) -> str:
    v, e = num(value), num(se)
    if not math.isfinite(v):
        return DASH
    return f"{v:.{digits}f} ± {e:.{digits}f}" if math.isfinite(e) else f"{v:.{digits}f}"


def text(value) -> str:
    """Any value as display text; None/NaN as a dash."""
    if value is None:
        return DASH
    if isinstance(value, float) and not math.isfinite(value):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value) if value else DASH
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {text(v)}" for k, v in value.items()) if value else DASH
    return str(value)


def ratio_direction(value) -> str:
    v = num(value)
    if not math.isfinite(v):
        return ""
    if v >= 1.25:
        return "up"
    if v <= 0.8:
        return "down"
    return ""


# --------------------------------------------------------------------------- view model

def _stability_of(seg: SegmentDescription, replicates: list) -> dict:
    status = seg.stability.status.strip().lower()
    seen = [num(v) for v in replicates if math.isfinite(num(v))]
    return {"status": status or "unknown", "jaccard": fmt_float(seg.stability.jaccard_mean, 2),
            "jaccard_sd": fmt_float(seg.stability.jaccard_sd, 2),
            "dissolved": (f"{sum(v < DISSOLVED_BELOW for v in seen)} of {len(seen)}" if seen else DASH),
            "meaning": STATUS_MEANING.get(status, "not assessed")}


def _insights_of(seg: SegmentDescription) -> dict:
    acts = [{"action": a.action, "why": a.why,
             "facts": ", ".join(f"{k} ({_fact(v)})" for k, v in a.triggers.items())} for a in seg.actions.actions]
    detail = seg.rule_detail
    return {
        "value_per_customer": fmt_amount(seg.value.per_customer.get("total")),
        "value_share": fmt_share(seg.value.value_share, 0),
        "value_parts": [{"label": k.replace("_", " "), "value": fmt_amount(v)}
                        for k, v in seg.value.per_customer.items() if k != "total"],
        "risk": seg.risk_summary,
        "rule": seg.rule, "fidelity": fmt_share(seg.fidelity, 0), "precision": fmt_share(detail.precision, 0),
        "recall": fmt_share(detail.recall, 0), "priority": text(seg.actions.priority), "actions": acts,
        "claims": [c.label for c in seg.claims if c.holds],
    }


def _drilldown(description: Description, number: int) -> str | None:
    """One sentence on the segment's second level (the choice of k's drill-down), or None without one."""
    choice = description.choice
    found = [d for d in (choice.drilldown if choice else []) if d.segment == number]
    if not found:
        return None
    d = found[0]
    if d.k is None:
        return (f"No stable split: none of 2 to 4 sub-segments of its {fmt_int(d.n_customers)} customers "
                "reproduces under resampling, so it is best treated as one group.")
    sizes = ", ".join(fmt_int(n) for n in d.sizes)
    jac = ", ".join(fmt_float(j, 2) for j in d.jaccard)
    return (f"Splits stably into {d.k} sub-segments of {sizes} customers (bootstrap Jaccard {jac}); "
            "a second level for a finer campaign.")


def _fact(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    v = num(value)
    return fmt_share(v, 0) if math.isfinite(v) and abs(v) <= 1 else fmt_float(v, 2)


def _summary(description: Description) -> dict:
    ins = description.insights
    colour = {s.segment: colour_for(s.colour) for s in description.segments}
    names = {s.segment: s.name for s in description.segments}
    rows = [{"number": text(r.segment), "name": names.get(r.segment, r.name), "size": fmt_int(r.size), "share": fmt_share(r.share, 0),
             "value_share": fmt_share(r.value_share, 0), "risk": r.risk, "stability": r.stability,
             "jaccard": fmt_float(r.jaccard, 2), "top_action": r.top_action, "priority": text(r.priority),
             "colour": colour.get(r.segment, "#888888")} for r in ins.executive_summary.rows]
    return {"paragraph": ins.executive_summary.paragraph, "rows": rows,
            "concentration": [c.sentence for c in ins.concentration],
            "value_total": fmt_amount(ins.value_total.get("total")),
            "assumptions": [{"key": k.replace("_", " "), "value": (fmt_share(v, 1) if k != "minimum_only_factor"
                                                                   else f"{v:g}×")}
                            for k, v in ins.value_assumptions.items()],
            "annualisation": ins.annualisation,
            "rules": {"method": ins.rules.method, "fidelity": fmt_share(ins.rules.fidelity, 0),
                      "price": fmt_float(ins.rules.price_of_explainability, 2)}}


def _exploration(description: Description) -> list[dict]:
    return [{"column": c.column, "description": c.description, "unit": c.unit, "missing": fmt_int(c.missing),
             "zeros": fmt_share(c.zeros / c.n if c.n else None, 0), "median": fmt_amount(c.median),
             "q95": fmt_amount(c.q95), "maximum": fmt_amount(c.maximum), "skew": fmt_float(c.skew, 1),
             "log": c.scale == "log1p"} for c in description.exploration.columns]


def _measures(seg: SegmentDescription, portfolio: Mapping[str, PortfolioStatistic]) -> list[dict]:
    out = []
    for key, lab, kind in KEY_MEASURES:
        if key not in seg.variables:
            continue
        v = seg.variables[key]
        p = portfolio[key] if key in portfolio else PortfolioStatistic(None, None)
        out.append({"label": lab, "mean": fmt_measure(v.mean, kind),
                    "median": fmt_measure(v.median, kind),
                    "portfolio_mean": fmt_measure(p.mean, kind),
                    "ratio": fmt_ratio(v.ratio), "direction": ratio_direction(v.ratio)})
    return out


def _selection(sel: Selection) -> dict:
    vote_names = {"knee": "knee", "silhouette": "silhouette", "gap": "gap", "bic": "BIC"}
    rows = []
    for r in sorted(sel.table, key=lambda r: r.k):
        picked = [vote_names.get(c, c) for c, v in sel.votes.items() if v == r.k]
        rows.append({"k": text(r.k), "chosen": r.k == sel.chosen_k,
                     "inertia": fmt_big(r.inertia),
                     "silhouette": fmt_pm(r.silhouette, r.silhouette_se),
                     "calinski_harabasz": fmt_big(r.calinski_harabasz),
                     "davies_bouldin": fmt_float(r.davies_bouldin),
                     "gap": fmt_pm(r.gap, r.gap_se),
                     "gmm_bic": fmt_big(r.gmm_bic),
                     "votes": ", ".join(picked) if picked else ""})
    return {
        "chosen_k": text(sel.chosen_k),
        "clear_structure": sel.clear_structure,
        "reason": sel.reason,
        "silhouette_sample_size": (None if sel.silhouette_sample_size is None
                                   else fmt_int(sel.silhouette_sample_size)),
        "baseline": None if sel.baseline is None else {"inertia": fmt_big(sel.baseline.inertia),
                                                       "gap": fmt_pm(sel.baseline.gap, sel.baseline.gap_se)},
        "table": rows,
    }


def _findings(findings: list[Finding]) -> list[dict]:
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    ordered = sorted(enumerate(findings), key=lambda p: (rank.get(p[1].severity.lower(), len(rank)), p[0]))
    return [{"severity": (f.severity or "info").lower(), "column": text(f.column), "count": fmt_int(f.count),
             "rule": text(f.rule), "examples": list(f.examples)} for _, f in ordered]


def _data_quality(dq: DataQuality) -> dict:
    findings = _findings(dq.findings)
    counts = {s: 0 for s in SEVERITY_ORDER}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return {
        "n_rows": fmt_int(dq.n_rows),
        "n_renamed": len(dq.renamed),
        "renamed": [{"from": a, "to": b} for a, b in dq.renamed.items()],
        "ignored": list(dq.ignored),
        "empty_ignored": list(dq.empty_ignored),
        "notes": list(dq.notes),
        "missing": [{"column": c, "count": fmt_int(n)} for c, n in dq.missing.items() if n > 0],
        "findings": findings,
        "severity_counts": [{"severity": s, "n": n, "meaning": SEVERITY_MEANING.get(s, "")}
                            for s, n in counts.items() if n],
    }


def build_context(description: Description, figures: Mapping[str, bytes] | None = None) -> dict:
    """Display-ready values for both reports (strings already formatted; no statistics computed)."""
    replicates = {r.segment: r.replicates for r in description.metrics.stability.segments}
    segments = []
    for s in description.segments:
        colour = colour_for(s.colour)
        segments.append({
            "number": text(s.segment),
            "name": s.name or f"Segment {s.segment}",
            "description": s.description,
            "size": fmt_int(s.size),
            "share": fmt_share(s.share),
            "traits": list(s.traits),
            "stability": _stability_of(s, replicates.get(s.segment, [])),
            "colour": colour,
            "measures": _measures(s, description.portfolio),
            **_insights_of(s),
            "drilldown": _drilldown(description, s.segment),
        })
    training = description.training
    meta = description.custseg
    metrics = description.metrics
    status_counts = {}
    for s in segments:
        status_counts[s["stability"]["status"]] = status_counts.get(s["stability"]["status"], 0) + 1
    names = figure_names(figures or {})
    return {
        "title": "Customer segmentation report",
        "source": text(training.source),
        "n_customers": fmt_int(training.n_customers),
        "fingerprint": text(training.fingerprint),
        "n_segments": len(segments),
        "segments": segments,
        "selection": _selection(metrics.selection),
        "stability": {
            "mean_ari": fmt_float(metrics.stability.mean_ari, 2), "n_boot": text(metrics.stability.n_boot),
            "status_counts": [{"status": k, "n": status_counts[k]}
                              for k in ("stable", "weak", "unstable") if k in status_counts],
        },
        "stable_at": f"{STABLE_AT:g}",
        "weak_at": f"{WEAK_AT:g}",
        "data_quality": _data_quality(description.data_quality),
        "features": [{"name": f, "label": label(f)} for f in description.features],
        "config": [{"key": k, "value": text(v)} for k, v in meta.config.items()],
        "versions": [{"key": k, "value": text(v)} for k, v in meta.versions.items()],
        "inertia": fmt_big(metrics.inertia),
        "figures": {n: {"title": FIGURE_TITLES.get(n, n), "caption": FIGURE_CAPTIONS.get(n, "")} for n in names},
        "figure_order": names,
        "sections": {k: [n for n in v if n in names] for k, v in SECTIONS.items()},
        "summary": _summary(description),
        "exploration": _exploration(description),
        "silhouette_mean": fmt_float(description.silhouettes.mean if description.silhouettes else None, 2),
        "silhouette_bands": [{"level": f"{lvl:g}", "words": w} for lvl, w in SILHOUETTE_BANDS],
        "seed": text(meta.config.get("seed")),
    }


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env


def render_html(description: Description, figures: Mapping[str, bytes], template: str = "report.html.j2") -> str:
    """The report as one self-contained HTML page (figures: name -> PNG bytes, embedded as base64; CSS inline)."""
    ctx = build_context(description, figures)
    images = {n: "data:image/png;base64," + base64.b64encode(figures[n]).decode("ascii")
              for n in ctx["figure_order"]}
    return _environment().get_template(template).render(**ctx, images=images)
