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

from custseg.description import DataQuality, Description, Finding, PortfolioStatistic, SegmentDescription, Selection

from .figures import (FIGURE_TITLES, KEY_MEASURES, STABLE_AT, WEAK_AT, figure_names, label, num,
                      segment_colours, short_ratio)

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
    "sizes": "Number of customers in each segment, with the share of the portfolio.",
    "profile": "Where each segment's centre lies on every model feature, in standard deviations from the "
               "portfolio average (0). Red cells are above average, blue below; amounts enter on a log scale.",
    "ratios": "Each segment's average of a key measure divided by the portfolio average: 2× means twice the "
              "portfolio average, 0.5× half of it. Colours are on a doubling scale, capped at 8× either way.",
    "projection": "A two-dimensional principal-component view of the model space for a sample of customers. "
                  "Overlap here does not by itself mean overlap in all features, but segments that blend into "
                  "each other on this map are less distinct.",
    "evidence": "Six criteria computed for each candidate number of segments k. The shaded band is the chosen "
                "k; orange diamonds mark the k each criterion prefers on its own (the knee for inertia).",
    "stability": "How often each segment is found again when the model is refitted on bootstrap resamples "
                 f"of the customers (Jaccard similarity; stable from {STABLE_AT:g}, weak from {WEAK_AT:g}).",
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

def _stability_of(seg: SegmentDescription) -> dict:
    status = seg.stability.status.strip().lower()
    return {"status": status or "unknown", "jaccard": fmt_float(seg.stability.jaccard_mean, 2),
            "jaccard_sd": fmt_float(seg.stability.jaccard_sd, 2),
            "meaning": STATUS_MEANING.get(status, "not assessed")}


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
    colours = segment_colours(len(description.segments))
    segments = []
    for s, colour in zip(description.segments, colours):
        segments.append({
            "number": text(s.segment),
            "name": s.name or f"Segment {s.segment}",
            "description": s.description,
            "size": fmt_int(s.size),
            "share": fmt_share(s.share),
            "traits": list(s.traits),
            "stability": _stability_of(s),
            "colour": colour,
            "measures": _measures(s, description.portfolio),
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
    }


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env


def render_html(description: Description, figures: Mapping[str, bytes]) -> str:
    """The report as one self-contained HTML page (figures embedded as base64 PNG, CSS inline)."""
    ctx = build_context(description, figures)
    images = {n: "data:image/png;base64," + base64.b64encode(figures[n]).decode("ascii")
              for n in ctx["figure_order"]}
    return _environment().get_template("report.html.j2").render(**ctx, images=images)
