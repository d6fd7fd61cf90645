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

def _stability_of(description: Mapping, seg: Mapping, index: int) -> dict:
    stab = seg.get("stability")
    if not isinstance(stab, Mapping):
        rows = ((description.get("metrics") or {}).get("stability") or {}).get("segments") or []
        number = seg.get("segment", index + 1)
        stab = next((r for r in rows if isinstance(r, Mapping) and num(r.get("segment")) == num(number) - 1), {})
    status = str(stab.get("status") or "").strip().lower()
    return {"status": status or "unknown", "jaccard": fmt_float(stab.get("jaccard_mean"), 2),
            "jaccard_sd": fmt_float(stab.get("jaccard_sd"), 2),
            "meaning": STATUS_MEANING.get(status, "not assessed")}


def _measures(seg: Mapping, portfolio: Mapping) -> list[dict]:
    variables = seg.get("variables") or {}
    out = []
    for key, lab, kind in KEY_MEASURES:
        if key not in variables:
            continue
        v = variables.get(key) or {}
        p = portfolio.get(key) or {}
        out.append({"key": key, "label": lab, "mean": fmt_measure(v.get("mean"), kind),
                    "median": fmt_measure(v.get("median"), kind),
                    "portfolio_mean": fmt_measure(p.get("mean"), kind),
                    "portfolio_median": fmt_measure(p.get("median"), kind),
                    "ratio": fmt_ratio(v.get("ratio")), "direction": ratio_direction(v.get("ratio"))})
    return out


def _selection(description: Mapping) -> dict | None:
    metrics = description.get("metrics") or {}
    sel = metrics.get("selection")
    if not isinstance(sel, Mapping):
        return None
    chosen = sel.get("chosen_k", metrics.get("chosen_k"))
    votes = sel.get("votes") or {}
    vote_names = {"knee": "knee", "silhouette": "silhouette", "gap": "gap", "bic": "BIC"}
    rows = []
    for r in sorted((r for r in sel.get("table") or [] if isinstance(r, Mapping)), key=lambda r: num(r.get("k"))):
        k = r.get("k")
        picked = [vote_names.get(c, c) for c, v in votes.items() if v is not None and num(v) == num(k)]
        rows.append({"k": text(k), "chosen": num(k) == num(chosen),
                     "inertia": fmt_big(r.get("inertia")),
                     "silhouette": fmt_pm(r.get("silhouette"), r.get("silhouette_se")),
                     "calinski_harabasz": fmt_big(r.get("calinski_harabasz")),
                     "davies_bouldin": fmt_float(r.get("davies_bouldin")),
                     "gap": fmt_pm(r.get("gap"), r.get("gap_se")),
                     "gmm_bic": fmt_big(r.get("gmm_bic")),
                     "votes": ", ".join(picked) if picked else ""})
    baseline = sel.get("baseline") or {}
    return {
        "chosen_k": text(chosen),
        "auto_k": text(sel.get("auto_k")),
        "clear_structure": sel.get("clear_structure"),
        "reason": str(sel.get("reason") or ""),
        "votes": [{"criterion": vote_names.get(c, c), "k": text(v)} for c, v in votes.items()],
        "silhouette_sample_size": (None if sel.get("silhouette_sample_size") is None
                                   else fmt_int(sel.get("silhouette_sample_size"))),
        "baseline": {"inertia": fmt_big(baseline.get("inertia")),
                     "gap": fmt_pm(baseline.get("gap"), baseline.get("gap_se"))} if baseline else None,
        "table": rows,
    }


def _findings(dq: Mapping) -> list[dict]:
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    findings = [f for f in dq.get("findings") or [] if isinstance(f, Mapping)]
    ordered = sorted(enumerate(findings),
                     key=lambda p: (rank.get(str(p[1].get("severity") or "").lower(), len(rank)), p[0]))
    return [{"severity": str(f.get("severity") or "info").lower(), "check": text(f.get("check")),
             "column": text(f.get("column")), "count": fmt_int(f.get("count")), "rule": text(f.get("rule")),
             "examples": [str(e) for e in f.get("examples") or []]} for _, f in ordered]


def _data_quality(dq: Mapping | None) -> dict | None:
    if not isinstance(dq, Mapping):
        return None
    findings = _findings(dq)
    renamed = dq.get("renamed") or {}
    counts = {s: 0 for s in SEVERITY_ORDER}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    missing = [{"column": str(c), "count": fmt_int(n)} for c, n in (dq.get("missing") or {}).items()
               if num(n) > 0]
    return {
        "source": text(dq.get("source")) if dq.get("source") is not None else None,
        "n_rows": fmt_int(dq.get("n_rows")),
        "n_renamed": len(renamed),
        "renamed": [{"from": str(a), "to": str(b)} for a, b in renamed.items()],
        "ignored": [str(c) for c in dq.get("ignored") or []],
        "empty_ignored": [str(c) for c in dq.get("empty_ignored") or []],
        "notes": [str(n) for n in dq.get("notes") or []],
        "n_columns_used": len(dq.get("columns_used") or []) or None,
        "missing": missing,
        "findings": findings,
        "severity_counts": [{"severity": s, "n": n, "meaning": SEVERITY_MEANING.get(s, "")}
                            for s, n in counts.items() if n],
    }


def build_context(description: Mapping, figures: Mapping[str, bytes] | None = None) -> dict:
    """Display-ready values for both reports (strings already formatted; no statistics computed)."""
    segs = [s for s in description.get("segments") or [] if isinstance(s, Mapping)]
    colours = segment_colours(len(segs))
    portfolio = description.get("portfolio") or {}
    segments = []
    for i, s in enumerate(segs):
        segments.append({
            "number": text(s.get("segment", i + 1)),
            "name": str(s.get("name") or f"Segment {s.get('segment', i + 1)}"),
            "description": str(s.get("description") or ""),
            "size": fmt_int(s.get("size")),
            "share": fmt_share(s.get("share")),
            "traits": [str(t) for t in s.get("traits") or []],
            "stability": _stability_of(description, s, i),
            "colour": colours[i],
            "measures": _measures(s, portfolio),
        })
    training = description.get("training") or {}
    meta = description.get("custseg") or {}
    metrics = description.get("metrics") or {}
    stab = metrics.get("stability") if isinstance(metrics.get("stability"), Mapping) else None
    selection = _selection(description)
    chosen_k = selection["chosen_k"] if selection else text(metrics.get("chosen_k", len(segs) or None))
    status_counts = {}
    for s in segments:
        status_counts[s["stability"]["status"]] = status_counts.get(s["stability"]["status"], 0) + 1
    names = figure_names(figures or {})
    return {
        "title": "Customer segmentation report",
        "source": text(training.get("source") or (description.get("data_quality") or {}).get("source")),
        "n_customers": fmt_int(training.get("n_customers")),
        "fingerprint": text(training.get("fingerprint")),
        "n_segments": len(segments),
        "chosen_k": chosen_k,
        "segments": segments,
        "selection": selection,
        "stability": None if stab is None else {
            "mean_ari": fmt_float(stab.get("mean_ari"), 2), "n_boot": text(stab.get("n_boot")),
            "status_counts": [{"status": k, "n": status_counts[k]}
                              for k in ("stable", "weak", "unstable") if k in status_counts],
        },
        "stable_at": f"{STABLE_AT:g}",
        "weak_at": f"{WEAK_AT:g}",
        "data_quality": _data_quality(description.get("data_quality")),
        "features": [{"name": str(f), "label": label(str(f))} for f in description.get("features") or []],
        "config": [{"key": str(k), "value": text(v)} for k, v in (meta.get("config") or {}).items()],
        "versions": [{"key": str(k), "value": text(v)} for k, v in (meta.get("versions") or {}).items()],
        "inertia": fmt_big(metrics.get("inertia")),
        "figures": {n: {"title": FIGURE_TITLES.get(n, n), "caption": FIGURE_CAPTIONS.get(n, "")} for n in names},
        "figure_order": names,
        "has_projection": isinstance(description.get("projection"), Mapping),
    }


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env


def render_html(description: Mapping, figures: Mapping[str, bytes]) -> str:
    """The report as one self-contained HTML page (figures embedded as base64 PNG, CSS inline)."""
    ctx = build_context(description, figures)
    images = {n: "data:image/png;base64," + base64.b64encode(figures[n]).decode("ascii")
              for n in ctx["figure_order"]}
    return _environment().get_template("report.html.j2").render(**ctx, images=images)
