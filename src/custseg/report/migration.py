"""The migration report: a flow figure and a short HTML/Markdown report, from ``migration.json`` only.

:func:`build_context` turns :meth:`custseg.migration.Migration.to_dict` into
display-ready values; :func:`flow_figure` draws the flows; :func:`render_markdown`
and :func:`render_html` render the same context, so both reports say the same thing.
Nothing here computes a statistic beyond sums and shares of the given counts.

The flow figure is Sankey-style: BEFORE segments (and "Joined") stacked on the left,
AFTER segments (and "Left") on the right, node heights proportional to customers,
one band per (from, to) pair with its width proportional to the customers in it,
coloured by the segment they came from. Bands of customers who changed segment and
hold at least 1 % of all customers are labelled with their count.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path as MplPath

from .figures import DPI, segment_colours

TEMPLATES = Path(__file__).resolve().parent / "templates"
JOINED, LEFT = "joined", "left"
#: Colour of customers who joined or left.
OUTSIDE = "#9a9a9a"
#: Moving bands with at least this share of all customers get a count label.
LABEL_SHARE = 0.01
#: Vertical gap between nodes, as a share of the taller column.
GAP = 0.02
_AXES_HEIGHT = 0.86  # share of the figure height
_LABEL_INCHES = 0.42  # height of a node label (two lines of name, one of count, at 9 pt)


def _colours(segments: list[Mapping]) -> dict:
    n = max((int(s["colour"]) for s in segments), default=-1) + 1
    palette = segment_colours(max(n, 1))
    return {s["segment"]: palette[int(s["colour"])] for s in segments}


def _label(segment, names: Mapping) -> str:
    if segment == JOINED:
        return "Joined"
    if segment == LEFT:
        return "Left"
    return f"{segment}. {names.get(segment, '')}".strip()


def build_context(data: Mapping) -> dict:
    """Display values for both renderers: counts, segment rows, the transition matrix, net flow."""
    segments = list(data["segments"])
    names = {s["segment"]: s["name"] for s in segments}
    colours = _colours(segments)
    flows = {(t["from_segment"], t["to_segment"]): (t["customers"], t["row_percent"]) for t in data["transitions"]}
    numbers = [s["segment"] for s in segments]
    rows = [n for n in numbers if any(k[0] == n for k in flows)] + ([JOINED] if any(k[0] == JOINED for k in flows)
                                                                    else [])
    cols = [n for n in numbers if any(k[1] == n for k in flows)] + ([LEFT] if any(k[1] == LEFT for k in flows)
                                                                   else [])
    matrix = [{"label": _label(r, names), "cells": [
        (f"{flows[(r, c)][0]:,} ({flows[(r, c)][1]:.1f} %)" if (r, c) in flows else "–") for c in cols]}
        for r in rows]
    customers = data["customers"]
    in_both = max(customers["in_both"], 1)
    biggest = sorted((t for t in data["transitions"] if t["from_segment"] not in (JOINED,)
                      and t["to_segment"] not in (LEFT,) and t["from_segment"] != t["to_segment"]),
                     key=lambda t: (-t["customers"], str(t["from_segment"]), str(t["to_segment"])))[:5]
    return {
        "before": data["before"], "after": data["after"], "matched_by": data["matched_by"],
        "customers": customers,
        "moved_share": f"{customers['moved'] / in_both:.1%}",
        "segments": [{**s, "hex": colours[s["segment"]],
                      "status": "both" if s["in_before"] and s["in_after"] else
                      ("new" if s["in_after"] else "vanished")} for s in segments],
        "columns": [_label(c, names) for c in cols],
        "matrix": matrix,
        "net_flow": list(data["net_flow"]),
        "biggest_moves": [{"from": _label(t["from_segment"], names), "to": _label(t["to_segment"], names),
                           "customers": t["customers"], "row_percent": t["row_percent"]} for t in biggest],
    }


# ---------------------------------------------------------------- figure
def _stack(order: list, sizes: Mapping, total: float, gap: float) -> dict:
    """Bottom and top of each node, stacked from the top of the column down."""
    spans, y = {}, total + gap * (len(order) - 1)
    for key in order:
        spans[key] = (y - sizes[key], y)
        y -= sizes[key] + gap
    return spans


def _band(ax, x0: float, x1: float, left: tuple, right: tuple, colour: str) -> None:
    """A band from span ``left`` at x0 to span ``right`` at x1 with cubic edges."""
    xm = (x0 + x1) / 2
    verts = [(x0, left[1]), (xm, left[1]), (xm, right[1]), (x1, right[1]),
             (x1, right[0]), (xm, right[0]), (xm, left[0]), (x0, left[0]), (x0, left[1])]
    codes = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.LINETO,
             MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.CLOSEPOLY]
    ax.add_patch(PathPatch(MplPath(verts, codes), facecolor=colour, alpha=0.45, edgecolor="none"))


def flow_figure(data: Mapping) -> Figure | None:
    """Sankey-style flows from BEFORE (left) to AFTER (right); ``None`` when there are no customers."""
    transitions = [t for t in data["transitions"] if t["customers"] > 0]
    if not transitions:
        return None
    segments = list(data["segments"])
    names = {s["segment"]: s["name"] for s in segments}
    colours = {**_colours(segments), JOINED: OUTSIDE, LEFT: OUTSIDE}
    numbers = [s["segment"] for s in segments]
    out_size, in_size = {}, {}
    for t in transitions:
        out_size[t["from_segment"]] = out_size.get(t["from_segment"], 0) + t["customers"]
        in_size[t["to_segment"]] = in_size.get(t["to_segment"], 0) + t["customers"]
    left_order = [n for n in numbers if n in out_size] + ([JOINED] if JOINED in out_size else [])
    right_order = [n for n in numbers if n in in_size] + ([LEFT] if LEFT in in_size else [])
    total = float(max(sum(out_size.values()), sum(in_size.values())))
    gap = GAP * total
    left, right = _stack(left_order, out_size, total, gap), _stack(right_order, in_size, total, gap)
    rank = {k: i for i, k in enumerate(numbers + [JOINED, LEFT])}

    fig = Figure(figsize=(10.0, max(4.5, 0.55 * max(len(left_order), len(right_order)) + 1.5)), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.27, 0.04, 0.46, _AXES_HEIGHT))
    x0, x1, width = 0.0, 1.0, 0.04
    out_cursor = {k: left[k][1] for k in left_order}
    in_cursor = {k: right[k][1] for k in right_order}
    everyone = sum(t["customers"] for t in transitions)
    for t in sorted(transitions, key=lambda t: (rank[t["from_segment"]], rank[t["to_segment"]])):
        f, to, c = t["from_segment"], t["to_segment"], t["customers"]
        a = (out_cursor[f] - c, out_cursor[f])
        out_cursor[f] -= c
        b = (in_cursor[to] - c, in_cursor[to])
        in_cursor[to] -= c
        _band(ax, x0 + width, x1 - width, a, b, colours[f])
        if f != to and c >= LABEL_SHARE * everyone:
            ax.text(0.5, (a[0] + a[1] + b[0] + b[1]) / 4, f"{c:,}", ha="center", va="center", fontsize=8,
                    color="#222222", bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.7,
                                           "edgecolor": "none"})
    top = total + gap * max(len(left_order), len(right_order))
    # Labels are three lines (name wrapped to two, count): keep their centres this far apart.
    spacing = (top + gap) * _LABEL_INCHES / (fig.get_figheight() * _AXES_HEIGHT)
    lowest = -gap
    for order, spans, size, x, ha, tx in ((left_order, left, out_size, x0, "right", x0 - 0.02),
                                          (right_order, right, in_size, x1 - width, "left", x1 + 0.02)):
        previous = np.inf
        for key in order:
            lo, hi = spans[key]
            ax.add_patch(Rectangle((x, lo), width, hi - lo, facecolor=colours[key], edgecolor="white"))
            text = "\n".join(textwrap.wrap(_label(key, names), width=30, max_lines=2, placeholder="…"))
            y = min((lo + hi) / 2, previous - spacing)
            previous = y
            lowest = min(lowest, y - spacing / 2)
            ax.text(tx, y, f"{text}\n{size[key]:,} customers", ha=ha, va="center", fontsize=9)
    ax.set_xlim(x0, x1)
    ax.set_ylim(lowest, top)
    ax.axis("off")
    ax.text(x0 + width / 2, ax.get_ylim()[1], "Before", ha="center", va="bottom", fontsize=10, fontweight="bold")
    ax.text(x1 - width / 2, ax.get_ylim()[1], "After", ha="center", va="bottom", fontsize=10, fontweight="bold")
    fig.suptitle("Where customers went between the two assignments", fontsize=12, fontweight="bold", y=0.99)
    return fig


def flow_png(data: Mapping) -> bytes | None:
    """The flow figure as PNG bytes (no date or version in the metadata: same data, same bytes)."""
    fig = flow_figure(data)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


# ---------------------------------------------------------------- renderers
def render_markdown(data: Mapping) -> str:
    """The Markdown report (the figure referenced as ``figures/flow.png``)."""
    ctx = build_context(data)
    c = ctx["customers"]
    lines = [
        "# Segment migration", "",
        f"Before: `{ctx['before']}`  ", f"After: `{ctx['after']}`  ",
        f"Segments matched by {ctx['matched_by']}.", "",
        f"{c['before']:,} customers before, {c['after']:,} after; {c['in_both']:,} in both, of whom "
        f"{c['moved']:,} ({ctx['moved_share']}) changed segment; {c['joined']:,} joined, {c['left']:,} left.", "",
        "![Where customers went](figures/flow.png)", "",
    ]
    if ctx["biggest_moves"]:
        lines += ["## Largest moves", ""]
        lines += [f"- {m['from']} → {m['to']}: {m['customers']:,} ({m['row_percent']:.1f} % of the segment)"
                  for m in ctx["biggest_moves"]]
        lines.append("")
    new = [s for s in ctx["segments"] if s["status"] != "both"]
    if new:
        lines += ["## New and vanished segments", ""]
        lines += [f"- {s['segment']}. {s['name']}: {s['status']}" for s in new]
        lines.append("")
    lines += ["## Transitions (customers and row percentages)", "",
              "| from \\ to | " + " | ".join(ctx["columns"]) + " |",
              "|---|" + "---:|" * len(ctx["columns"])]
    lines += [f"| {r['label']} | " + " | ".join(r["cells"]) + " |" for r in ctx["matrix"]]
    lines += ["", "## Net flow per segment", "",
              "| segment | before | after | stayed | moved in | moved out | joined | left | net |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {n['segment']}. {n['name']} | {n['before']:,} | {n['after']:,} | {n['stayed']:,} | "
              f"{n['moved_in']:,} | {n['moved_out']:,} | {n['joined']:,} | {n['left']:,} | {n['net']:+,} |"
              for n in ctx["net_flow"]]
    return "\n".join(lines) + "\n"


def render_html(data: Mapping, png: bytes | None) -> str:
    """The self-contained HTML report (the figure embedded)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      keep_trailing_newline=True)
    image = "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else None
    return env.get_template("migration.html.j2").render(**build_context(data), image=image)


def write_report(data: Mapping, folder) -> list[str]:
    """Write ``report.html``, ``report.md`` and ``figures/flow.png`` into ``folder``; returns their names."""
    folder = Path(folder)
    png = flow_png(data)
    written = []
    if png is not None:
        (folder / "figures").mkdir(exist_ok=True)
        (folder / "figures" / "flow.png").write_bytes(png)
        written.append("figures/flow.png")
    (folder / "report.html").write_text(render_html(data, png), encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(data), encoding="utf-8")
    return written + ["report.html", "report.md"]


__all__ = ["build_context", "flow_figure", "flow_png", "render_html", "render_markdown", "write_report"]
