"""Figures of the report, drawn from the description only (no statistics computed here).

Every figure is a :class:`matplotlib.figure.Figure` rendered by the Agg canvas
directly, so the global pyplot backend is never switched and no pyplot state is
created. Each figure is built once and saved as PNG and SVG; sizes, DPI, fonts,
the SVG hash salt and the metadata are fixed (no dates, no software versions), so
the same description always gives byte-identical files. Segment colours come from
:func:`custseg.report.palette.colour_for` of each segment's ``colour`` index.

The figures are independent of each other, so :func:`make_figures` shares them
between this process and others (:mod:`custseg.report.drawing`; matplotlib is not
thread-safe) when more than one core is available; which process draws a figure
does not change its bytes. What the figures are (names, order, titles, labels) is in
:mod:`custseg.report.catalogue`, which imports no plotting library.

Figures (name -> content); a figure whose data are absent is left out:

``distributions``  every input column's histogram (log axis where skewed), with missing and zeros
``missing``        missing values per input column
``correlation``    Spearman correlations between the input columns
``evidence``       six criteria against k, axes from 0 where the criterion is non-negative
``silhouette``     per-customer silhouette widths of the chosen k, sorted within each segment
``sizes``          customers per segment, with each segment's stability
``projection``     2-D principal-component map of a customer sample; axes say what they capture
``distances``      distances between the segment centres (model space)
``profile``        segment centres over the model features (standard deviations from the average)
``effects``        key measures: segment median, coloured by how much higher or lower than the rest
``boxes``          spread of key behaviours by segment (box: quartiles, whiskers: 5th-95th percentile)
``value_risk``     value share against customer share, and risk signals, per segment
``stability``      each resample's Jaccard per segment, with the 0.6 and 0.75 thresholds
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Sequence

import matplotlib
import matplotlib.colors
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.textpath import TextToPath

from custseg.description import Description, SegmentDescription

from .catalogue import (COST, DISSOLVED_BELOW, FIGURE_ORDER, FIGURE_TITLES, HIGHLY_STABLE_AT, KEY_MEASURES,  # noqa: F401
                        LABELS, OPTIONAL_FIGURES, SECTIONS, SILHOUETTE_BANDS, STABLE_AT, WEAK_AT, figure_names, label,
                        num, shares, short_ratio)
from .drawing import Drawing, Rendered, processes_for
from .palette import colour_for, ink_on

DPI = 110
#: Heatmaps are at least this wide (inches) so that their titles fit with few segments.
MIN_HEATMAP_WIDTH = 9.0
#: Marker colours of the evidence figure (not segment colours).
CHOSEN, PREFERRED = "#0b5394", "#d55e00"


def segment_colours(n: int) -> list[str]:
    """Colours of segments numbered 1..n whose colour index is their number − 1 (figures without a description)."""
    return [colour_for(i) for i in range(n)]


def colours_of(segments: Iterable[SegmentDescription]) -> list[str]:
    """Each segment's colour, from its identity's colour index."""
    return [colour_for(s.colour) for s in segments]


# --------------------------------------------------------------------------- helpers

def _seg_label(seg: SegmentDescription, width: int = 18) -> str:
    name = seg.name.strip()
    if not name:
        return f"Segment {seg.segment}"
    return "\n".join(textwrap.wrap(f"{seg.segment}. {name}", width=width, max_lines=3, placeholder="…"))


def _new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _text_width(texts: Iterable[str], size: float = 9.0) -> float:
    """Width in inches of the longest line of text at a font size (DejaVu Sans), from the font's metrics."""
    props = FontProperties(family="DejaVu Sans", size=size)
    measure = TextToPath().get_text_width_height_descent
    return max((measure(line, props, ismath=False)[0] for t in texts for line in str(t).split("\n")),
               default=0.0) / 72.0


def _render(fig: Figure) -> Rendered:
    if fig.get_layout_engine() is not None:
        # lay out once: each savefig would otherwise run the constrained layout again, twice
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None}, facecolor="white")
    fig.clear()
    return Rendered(png.getvalue(), svg.getvalue())


_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 13,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888888",
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "svg.hashsalt": "custseg",
    "path.simplify": True,
}


# --------------------------------------------------------------------------- figures

def sizes_figure(description: Description) -> Figure | None:
    segs = description.segments
    if not segs:
        return None
    colours = colours_of(segs)
    labels = [_seg_label(s, width=30).replace("\n", " ") for s in segs]
    sizes = [num(s.size) for s in segs]
    shares = [num(s.share) for s in segs]
    stab = [f"{s.stability.status} ({num(s.stability.jaccard_mean):.2f})"
            if math.isfinite(num(s.stability.jaccard_mean)) else s.stability.status for s in segs]
    fig = _new_figure(9.0, 0.55 * len(segs) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(segs))
    ax.barh(y, np.nan_to_num(sizes), color=colours, edgecolor="white", height=0.7)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    top = max((v for v in sizes if math.isfinite(v)), default=1.0) or 1.0
    ax.set_xlim(0, top * 1.45)
    for yi, size, share, st in zip(y, sizes, shares, stab):
        if not math.isfinite(size):
            continue
        text = f"{size:,.0f}" + (f"  ({share:.1%})" if math.isfinite(share) else "") + f" · {st}"
        ax.text(size + top * 0.01, yi, text, va="center", ha="left", fontsize=9)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    ax.set_xlabel("Number of customers")
    ax.set_title("Customers per segment; stability = mean Jaccard across resamples", loc="left")
    return fig


def _heatmap_figure(values: np.ndarray, annotations: list[list[str]], *, vmax: float, cmap: str,
                    xlabels: list[str], ylabels: list[str], cbar_label: str, title: str, cbar_ticks=None,
                    cbar_ticklabels=None) -> tuple[Figure, object]:
    """Annotated heatmap (seaborn) with a colour bar on the right and a title, laid out in fixed inches.

    The layout is computed from the label lengths rather than by matplotlib's layout
    engines, which keeps rendering fast and the result deterministic; the figure is wide
    enough for its title (bold: about 0.6 em a character).
    """
    import warnings

    import seaborn as sns

    n_rows, n_cols = values.shape
    cell_w, cell_h = 1.05, 0.42
    left = 0.3 + _text_width(ylabels)
    top = 0.55 + 0.17 * max((str(x).count("\n") + 1 for x in xlabels), default=1)
    bottom, right = 0.15, 1.75
    min_width = max(MIN_HEATMAP_WIDTH, left + len(title) * 11 * 0.6 / 72 + 0.2)
    cell_w = max(cell_w, (min_width - left - right) / max(n_cols, 1))
    width, height = left + cell_w * n_cols + right, top + cell_h * n_rows + bottom
    fig = _new_figure(width, height, layout=None)
    ax = fig.add_axes((left / width, bottom / height, cell_w * n_cols / width, cell_h * n_rows / height))
    bar_h = min(cell_h * n_rows * 0.85, 4.5)
    cax = fig.add_axes(((left + cell_w * n_cols + 0.2) / width, (bottom + (cell_h * n_rows - bar_h) / 2) / height,
                        0.18 / width, bar_h / height))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # seaborn's cmap.set_bad
        sns.heatmap(values, ax=ax, cbar_ax=cax, cmap=cmap, center=0.0, vmin=-vmax, vmax=vmax,
                    annot=np.array(annotations), fmt="", annot_kws={"fontsize": 8.5}, linewidths=0.6,
                    linecolor="white", xticklabels=xlabels, yticklabels=ylabels, mask=~np.isfinite(values),
                    cbar_kws={"label": cbar_label})
    ax.set_facecolor("#f0f0f0")
    ax.tick_params(axis="x", labelrotation=0, length=0)
    ax.tick_params(axis="y", labelrotation=0, length=0)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    if cbar_ticks is not None:
        cbar = ax.collections[0].colorbar
        cbar.set_ticks(cbar_ticks)
        cbar.set_ticklabels(cbar_ticklabels)
    ax.set_title(title, loc="left", pad=12)
    return fig, ax


def _colour_tick_labels(ax, colours: list[str]) -> None:
    """Put a coloured square under each segment column label so the segment colour carries over."""
    for tick, colour in zip(ax.get_xticklabels(), colours):
        tick.set_bbox({"boxstyle": "round,pad=0.3", "facecolor": colour, "alpha": 0.22, "edgecolor": colour})


def profile_figure(description: Description) -> Figure | None:
    segs, features = description.segments, description.features
    if not segs or not features or not any(s.centre for s in segs):
        return None
    values = np.array([[num(s.centre[f]) if f in s.centre else math.nan for s in segs] for f in features])
    annotations = [["" if not math.isfinite(v) else f"{v:+.1f}" for v in row] for row in values]
    finite = np.abs(values[np.isfinite(values)])
    vmax = max(1.0, float(np.ceil(finite.max() * 2) / 2)) if finite.size else 1.0
    vmax = min(vmax, 2.5)
    fig, ax = _heatmap_figure(values, annotations, vmax=vmax, cmap="RdBu_r",
             xlabels=[_seg_label(s, width=14) for s in segs],
             ylabels=[label(f) for f in features],
             cbar_label="Centre (sd from the average)",
             title="Segment centres: red = above the portfolio average, blue = below")
    _colour_tick_labels(ax, colours_of(segs))
    return fig


#: Key measures of the effects heatmap and box plots, with their number format: the report's key
#: measures with the cash-advance frequency and the payment-to-minimum ratio added.
EFFECT_MEASURES = (*KEY_MEASURES[:-1], ("CASH_ADVANCE_FREQUENCY", "Cash-advance frequency", "share"),
                   KEY_MEASURES[-1], ("payment_to_minimum", "Payments ÷ minimum due", "score"))


def _short(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "–"
    if kind == "share":
        return f"{value:.0%}"
    if kind == "amount":
        return f"{value / 1000:,.1f}k" if abs(value) >= 1000 else f"{value:,.0f}"
    return f"{value:.1f}"


def effects_figure(description: Description) -> Figure | None:
    segs = description.segments
    if not segs or not any(s.effects for s in segs):
        return None
    by_seg = [{e.measure: e for e in s.effects} for s in segs]
    keys = [(k, lab, kind) for k, lab, kind in EFFECT_MEASURES if any(k in e for e in by_seg)]
    if not keys:
        return None
    effect = np.array([[num(e[k].effect) if k in e else math.nan for e in by_seg] for k, _, _ in keys])
    annotations = [[_short(num(e[k].median), kind) if k in e else "" for e in by_seg] for k, _, kind in keys]
    ylabels = []
    for k, lab, kind in keys:
        p = next((num(e[k].portfolio_median) for e in by_seg if k in e), math.nan)
        ylabels.append(f"{lab} (all: {_short(p, kind)})")
    fig, ax = _heatmap_figure(effect, annotations, vmax=1.0, cmap="PuOr_r",
                              xlabels=[_seg_label(s, width=14) for s in segs], ylabels=ylabels,
                              cbar_label="Effect: P(higher) − P(lower) than the other customers",
                              cbar_ticks=[-1, -0.5, 0, 0.5, 1],
                              cbar_ticklabels=["−1 all lower", "−0.5", "0 same", "+0.5", "+1 all higher"],
                              title="Cells: segment median; orange = higher, purple = lower than the rest")
    _colour_tick_labels(ax, colours_of(segs))
    return fig


def _axis_meaning(loadings: dict, j: int, n: int = 3) -> str:
    """The features that weigh most on a principal axis, by sign: 'right: more X, Y; left: more Z'."""
    items = [(f, num(v[j])) for f, v in loadings.items() if len(v) > j and math.isfinite(num(v[j]))]
    pos = [label(f) for f, v in sorted(items, key=lambda t: -t[1])[:n] if v > 0.2]
    neg = [label(f) for f, v in sorted(items, key=lambda t: t[1])[:n] if v < -0.2]
    parts = ([f"+ {', '.join(pos)}"] if pos else []) + ([f"− {', '.join(neg)}"] if neg else [])
    return "; ".join(parts)


def _place_labels(ax, fig, points: list[tuple[float, float]], texts: list[str], colours: list[str]) -> list:
    """Put one boxed label per centre where it overlaps neither other labels nor centre markers."""
    renderer = fig.canvas.get_renderer()
    placed_boxes, artists = [], []
    marker_px = [ax.transData.transform(p) for p in points]
    offsets = [(0, 0)] + [(r * math.cos(a), r * math.sin(a)) for r in (26, 42, 60, 80)
                          for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]
    for (x, y), text, colour in zip(points, texts, colours):
        best = None
        for dx, dy in offsets:
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha="center", va="center",
                            fontsize=9, fontweight="bold", color=ink_on(colour), zorder=7,
                            bbox={"boxstyle": "round,pad=0.25", "facecolor": colour, "edgecolor": "black",
                                  "linewidth": 0.8},
                            arrowprops=None if (dx, dy) == (0, 0) else {"arrowstyle": "-", "color": "black",
                                                                       "linewidth": 0.8})
            box = t.get_window_extent(renderer).expanded(1.08, 1.15)
            clash = any(box.overlaps(b) for b in placed_boxes) or any(
                box.contains(*m) for i, m in enumerate(marker_px) if points[i] != (x, y))
            if not clash:
                best = (t, box)
                break
            t.remove()
        if best is None:  # every candidate clashes: keep the farthest one
            t = ax.annotate(text, (x, y), xytext=offsets[-1], textcoords="offset points", ha="center",
                            va="center", fontsize=9, fontweight="bold", color=ink_on(colour), zorder=7,
                            bbox={"boxstyle": "round,pad=0.25", "facecolor": colour, "edgecolor": "black"},
                            arrowprops={"arrowstyle": "-", "color": "black", "linewidth": 0.8})
            best = (t, t.get_window_extent(renderer))
        placed_boxes.append(best[1])
        artists.append(best[0])
    return artists


def projection_figure(description: Description) -> Figure | None:
    proj, segs = description.projection, description.segments
    if proj is None or not segs:
        return None
    x = np.array([num(v) for v in proj.x])
    y = np.array([num(v) for v in proj.y])
    if not len(x) or len(x) != len(y) or len(proj.segment) != len(x):
        return None
    colours = colours_of(segs)
    ev = proj.explained_variance
    fig = _new_figure(10.8, 7.4, layout=None)
    ax = fig.add_axes((0.08, 0.12, 0.55, 0.78))
    lab_arr = np.array(proj.segment)
    for seg, colour in zip(segs, colours):
        take = lab_arr == seg.segment
        ax.scatter(x[take], y[take], s=6, color=colour, alpha=0.35, linewidths=0,
                   label=_seg_label(seg, width=40).replace("\n", " "))
    points, texts, cols = [], [], []
    for seg, centre, colour in zip(segs, proj.centres, colours):
        cx, cy = (num(centre[0]), num(centre[1])) if len(centre) >= 2 else (math.nan, math.nan)
        if math.isfinite(cx) and math.isfinite(cy):
            ax.scatter([cx], [cy], s=40, color=colour, edgecolors="black", linewidths=1.0, zorder=6, marker="X")
            points.append((cx, cy))
            texts.append(str(seg.segment))
            cols.append(colour)
    ax.figure.canvas.draw()
    _place_labels(ax, fig, points, texts, cols)

    def axis_label(j: int) -> str:
        share = num(ev[j]) if j < len(ev) else math.nan
        head = f"Principal component {j + 1}" + (f" ({share:.0%} of the spread)" if math.isfinite(share) else "")
        meaning = _axis_meaning(proj.loadings, j)
        return head + ("\n" + textwrap.fill(meaning, 80) if meaning else "")

    ax.set_xlabel(axis_label(0), fontsize=9)
    ax.set_ylabel(axis_label(1), fontsize=9)
    total = sum(num(v) for v in ev[:2])
    ax.set_title(f"A sample of {len(x):,} customers; ✕ and numbered boxes mark the segment centres", loc="left")
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, markerscale=3,
                       title="Segment", alignment="left")
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    if math.isfinite(total):
        fig.text(0.66, 0.14, textwrap.fill(
            f"The two axes together show {total:.0%} of the spread of the customers in the model space; "
            f"the rest ({1 - total:.0%}) is in directions this map cannot show, so segments that overlap "
            "here may still be apart.", 38), fontsize=8.5, color="#444444", va="bottom")
    return fig


def tsne_figure(description: Description) -> Figure | None:
    nmap, segs = description.neighbours, description.segments
    if nmap is None or not segs or not nmap.x:
        return None
    x = np.array([num(v) for v in nmap.x])
    y = np.array([num(v) for v in nmap.y])
    lab = np.array(nmap.segment)
    colours = colours_of(segs)
    fig = _new_figure(10.8, 7.4, layout=None)
    ax = fig.add_axes((0.08, 0.08, 0.55, 0.82))
    points, texts, cols = [], [], []
    for seg, colour in zip(segs, colours):
        take = lab == seg.segment
        ax.scatter(x[take], y[take], s=6, color=colour, alpha=0.4, linewidths=0,
                   label=_seg_label(seg, width=40).replace("\n", " "))
        if take.any():  # t-SNE has no image of the centres: label each segment at its customers' median
            points.append((float(np.median(x[take])), float(np.median(y[take]))))
            texts.append(str(seg.segment))
            cols.append(colour)
    ax.figure.canvas.draw()
    _place_labels(ax, fig, points, texts, cols)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1 (no unit)", fontsize=9)
    ax.set_ylabel("t-SNE 2 (no unit)", fontsize=9)
    ax.set_title(f"A sample of {len(x):,} customers (perplexity {num(nmap.perplexity):g}); "
                 "numbered boxes sit at each segment's median position", loc="left")
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, markerscale=3,
                       title="Segment", alignment="left")
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    fig.text(0.66, 0.10, textwrap.fill(
        "t-SNE keeps which customers are near each other, not how far apart groups are or what a direction "
        "means: read it for whether segments form their own neighbourhoods, not for distances or sizes.", 38),
        fontsize=8.5, color="#444444", va="bottom")
    return fig


def distances_figure(description: Description) -> Figure | None:
    segs, dist = description.segments, description.centre_distances
    if len(segs) < 2 or len(dist) != len(segs):
        return None
    values = np.array([[num(v) for v in row] for row in dist])
    off = values[~np.eye(len(segs), dtype=bool)]
    annotations = [["" if i == j else f"{v:.1f}" for j, v in enumerate(row)] for i, row in enumerate(values)]
    shown = values.copy()
    np.fill_diagonal(shown, np.nan)
    import warnings

    import seaborn as sns

    n = len(segs)
    side = 0.62 * n
    left = 0.3 + _text_width([_seg_label(s, 30).replace("\n", " ") for s in segs])
    fig = _new_figure(left + side + 1.6, side + 1.3, layout=None)
    W, H = fig.get_size_inches()
    ax = fig.add_axes((left / W, 0.35 / H, side / W, side / H))
    cax = fig.add_axes(((left + side + 0.2) / W, 0.35 / H, 0.18 / W, side / H))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(shown, ax=ax, cbar_ax=cax, cmap="viridis_r", vmin=0, vmax=float(np.nanmax(off)),
                    annot=np.array(annotations), fmt="", annot_kws={"fontsize": 8.5}, linewidths=0.6,
                    linecolor="white", mask=np.eye(n, dtype=bool), square=True,
                    xticklabels=[str(s.segment) for s in segs],
                    yticklabels=[_seg_label(s, 30).replace("\n", " ") for s in segs],
                    cbar_kws={"label": "Distance (standard deviations)"})
    ax.tick_params(length=0)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    _colour_tick_labels(ax, colours_of(segs))
    # wrapped to the width right of the labels (about 0.6 em a character in bold), so no line is cut off
    ax.set_title(textwrap.fill("Distance between centres in the model space (small = similar segments)",
                               int((side + 1.6) * 72 / (10 * 0.6))), loc="left", fontsize=10)
    return fig


def boxes_figure(description: Description) -> Figure | None:
    segs = description.segments
    keys = [(k, lab, kind) for k, lab, kind in EFFECT_MEASURES if all(k in s.distribution for s in segs)]
    if not segs or not keys:
        return None
    ncols = 2
    nrows = math.ceil(len(keys) / ncols)
    height = 0.32 * len(segs) * nrows + 1.1 * nrows + 0.8
    fig = _new_figure(11.0, height, layout=None)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={
        "left": 0.07, "right": 0.98, "top": 1 - 0.95 / height, "bottom": 0.55 / height, "wspace": 0.18,
        "hspace": 1.0 / (0.32 * len(segs) + 0.2)}).ravel()
    colours = colours_of(segs)
    for ax, (k, lab, kind) in zip(axes, keys):
        stats = []
        for s in segs:
            q = s.distribution[k]
            stats.append({"whislo": num(q.q05), "q1": num(q.q25), "med": num(q.median), "q3": num(q.q75),
                          "whishi": num(q.q95), "fliers": [], "label": str(s.segment)})
        parts = ax.bxp(stats, orientation="horizontal", patch_artist=True, widths=0.6, showfliers=False,
                       medianprops={"color": "black", "linewidth": 1.5})
        for box, colour in zip(parts["boxes"], colours):
            box.set_facecolor(colour)
            box.set_alpha(0.85)
        ax.invert_yaxis()
        ax.set_title(lab, loc="left", fontsize=10)
        ax.set_ylabel("Segment")
        lows = [v["whislo"] for v in stats if math.isfinite(v["whislo"])]
        if kind == "amount" and lows and min(lows) >= 0:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(left=0)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
            ax.set_xlabel("currency (log scale above 10)")
        elif kind == "share":
            ax.set_xlim(-0.02, 1.02)
            ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
            ax.set_xlabel("share (0–100%)")
        else:
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(left=0)
            ax.set_xlabel("ratio (log scale above 1)")
        ax.grid(axis="y", visible=False)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.suptitle("Box: middle half of the segment's customers; line: median; whiskers: 5th to 95th percentile",
                 x=0.01, ha="left", fontsize=11)
    return fig


def value_risk_figure(description: Description) -> Figure | None:
    segs = description.segments
    if not segs:
        return None
    colours = colours_of(segs)
    fig = _new_figure(11.0, 0.5 * len(segs) + 2.0)
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(segs))
    cust = np.array([num(s.share) for s in segs])
    value = np.array([num(s.value.value_share) for s in segs])
    left.barh(y - 0.2, np.nan_to_num(cust), height=0.38, color="#BBBBBB", label="share of customers")
    left.barh(y + 0.2, np.nan_to_num(value), height=0.38, color=colours, label="share of estimated revenue")
    for yi, v in zip(y, value):
        if math.isfinite(v):
            left.text(v + 0.005, yi + 0.2, f"{v:.0%}", va="center", fontsize=8.5)
    left.set_yticks(y, [_seg_label(s, 30).replace("\n", " ") for s in segs])
    left.invert_yaxis()
    left.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    left.set_xlim(0, max(1e-9, np.nanmax(np.r_[cust, value])) * 1.2)
    left.set_xlabel("share of the portfolio")
    left.set_title("Revenue share (colour) vs customer share (grey)", loc="left", fontsize=10)
    left.grid(axis="y", visible=False)
    signals = (("share_over_limit", "over their limit", "o"), ("share_minimum_only", "pay about the minimum", "s"),
               ("share_cash_users", "take cash advances", "^"))
    for key, words, marker in signals:
        vals = np.array([num(s.risk.get(key)) for s in segs])
        right.scatter(vals, y, marker=marker, s=55, color=colours, edgecolors="black", linewidths=0.7,
                      zorder=3, label=f"share who {words}")
    right.set_xlim(-0.02, 1.02)
    right.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    right.set_xlabel("share of the segment's customers")
    right.set_title("Risk signals", loc="left", fontsize=10)
    handles = [Line2D([], [], marker=m, color="white", markerfacecolor="#777777", markeredgecolor="black",
                      markersize=8, label=f"share who {w}") for _, w, m in signals]
    right.legend(handles=handles, loc="lower right", fontsize=8.5, frameon=True)
    right.grid(axis="y", visible=False)
    return fig


def silhouette_figure(description: Description) -> Figure | None:
    sil, segs = description.silhouettes, description.segments
    if sil is None or not sil.value or not segs:
        return None
    values = np.array([num(v) for v in sil.value])
    labels = np.array(sil.segment)
    fig = _new_figure(9.0, 6.5)
    ax = fig.add_subplot()
    y0, gap = 0, max(10, len(values) // 100)
    ticks = []
    for seg, colour in zip(segs, colours_of(segs)):
        v = np.sort(values[labels == seg.segment])
        if not len(v):
            continue
        yy = np.arange(y0, y0 + len(v))
        ax.fill_betweenx(yy, 0, v, facecolor=colour, edgecolor=colour, linewidth=0.3, alpha=0.9)
        ticks.append((y0 + len(v) / 2, f"{seg.segment}"))
        y0 += len(v) + gap
    mean = num(sil.mean)
    if math.isfinite(mean):
        ax.axvline(mean, color="#d62728", linestyle="--", linewidth=1.5)
        ax.text(mean, 1.01, f" mean {mean:.2f}", transform=ax.get_xaxis_transform(), color="#d62728",
                fontsize=9, va="bottom")
    ax.axvline(0, color="#444444", linewidth=0.8)
    ax.set_yticks([t for t, _ in ticks], [l for _, l in ticks])
    ax.set_ylim(y0, -gap)
    ax.set_ylabel("Segment (customers sorted by width)")
    ax.set_xlim(min(-0.1, float(np.nanmin(values)) - 0.02), 1.0)
    ax.set_xlabel("Silhouette width (−1 = closer to another segment, 0 = on the border, 1 = well inside)")
    ax.grid(axis="y", visible=False)
    ax.set_title(f"{sil.sample_size:,} customers sampled; widths below 0 sit closer to another segment's centre",
                 loc="left", fontsize=10, pad=16)  # room for the mean's label between the title and the axes
    return fig


def _log_ticks(hi: float) -> tuple[list[float], list[str]]:
    """Ticks of a log10(1 + x) axis at 0, 1, 10, 100, ... up to ``hi`` (in log units)."""
    pos, lab = [0.0], ["0"]
    p = 0
    while p + 1 <= hi + 1e-9:
        p += 1
        pos.append(math.log10(1 + 10 ** p))
        lab.append(_tick(10 ** p, None))
    return pos, lab


def distributions_figure(description: Description) -> Figure | None:
    cols = [c for c in description.exploration.columns if c.counts]
    if not cols:
        return None
    ncols = 3
    nrows = math.ceil(len(cols) / ncols)
    height = 2.3 * nrows + 0.6
    fig = _new_figure(12.0, height, layout=None)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={
        "left": 0.06, "right": 0.99, "top": 1 - 0.75 / height, "bottom": 0.5 / height, "wspace": 0.32,
        "hspace": 0.75}).ravel()
    for ax, c in zip(axes, cols):
        edges = np.array([num(e) for e in c.edges])
        ax.stairs(c.counts, edges, fill=True, color="#4a78a8", alpha=0.85)
        ax.set_title(c.column, loc="left", fontsize=9)
        ax.tick_params(labelsize=7.5)
        if c.scale == "log1p":
            pos, lab = _log_ticks(float(edges[-1]))
            ax.set_xticks(pos, lab)
            ax.set_xlabel(f"{c.unit}, log scale", fontsize=8)
        else:
            ax.set_xlabel(c.unit, fontsize=8)
        ax.set_ylabel("customers", fontsize=8)
        note = f"missing {c.missing:,}" + (f" · zeros {c.zeros / max(c.n, 1):.0%}" if c.zeros else "")
        ax.text(0.98, 0.95, note, transform=ax.transAxes, ha="right", va="top", fontsize=7.5, color="#333333",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    for ax in axes[len(cols):]:
        ax.set_visible(False)
    fig.suptitle(f"{description.exploration.n_rows:,} customers; skewed columns on a log axis", x=0.01, ha="left",
                 fontsize=11)
    return fig


def missing_figure(description: Description) -> Figure | None:
    cols = description.exploration.columns
    if not cols:
        return None
    n = max(description.exploration.n_rows, 1)
    fig = _new_figure(9.0, 0.28 * len(cols) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(cols))
    miss = np.array([c.missing for c in cols], dtype=float)
    ax.barh(y, miss, color=np.where(miss > 0, "#D55E00", "#BBBBBB"), height=0.7)
    ax.set_yticks(y, [c.column for c in cols], fontsize=8.5)
    ax.invert_yaxis()
    top = max(miss.max(), 1.0)
    ax.set_xlim(0, top * 1.35)
    for yi, m in zip(y, miss):
        ax.text(m + top * 0.01, yi, f"{m:,.0f} ({m / n:.1%})" if m else "none", va="center", fontsize=8.5)
    ax.set_xlabel("Customers with no value recorded")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    ax.grid(axis="y", visible=False)
    ax.set_title(f"Missing values among {n:,} customers (after validation)", loc="left")
    return fig


def correlation_figure(description: Description) -> Figure | None:
    ex = description.exploration
    if len(ex.correlation_columns) < 2:
        return None
    values = np.array([[num(v) for v in row] for row in ex.correlation])
    annotations = [["" if i == j or not math.isfinite(v) else f"{v:+.1f}".replace("-", "−").replace("+", "")
                    for j, v in enumerate(row)] for i, row in enumerate(values)]
    values[np.eye(len(values), dtype=bool)] = np.nan
    n = len(ex.correlation_columns)
    import warnings

    import seaborn as sns

    labels_ = ex.correlation_columns
    left = 0.3 + _text_width(labels_, 8.5)
    side = 0.48 * n
    fig = _new_figure(left + side + 1.4, side + left + 0.5, layout=None)
    W, H = fig.get_size_inches()
    ax = fig.add_axes((left / W, 0.3 / H, side / W, side / H))
    cax = fig.add_axes(((left + side + 0.2) / W, 0.3 / H, 0.18 / W, side / H))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(values, ax=ax, cbar_ax=cax, cmap="RdBu_r", vmin=-1, vmax=1, center=0,
                    annot=np.array(annotations), fmt="", annot_kws={"fontsize": 7}, linewidths=0.4,
                    linecolor="white", square=True, xticklabels=labels_, yticklabels=labels_,
                    mask=np.eye(len(values), dtype=bool),
                    cbar_kws={"label": "Spearman rank correlation"})
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", labelrotation=90, labelsize=8, length=0)
    ax.tick_params(axis="y", labelsize=8, length=0)
    return fig


_PANELS = (
    # key, title, y label, vote key, has k=1 baseline, error key
    ("inertia", "Inertia (within-segment spread)", "lower = tighter; look for the knee", "knee", True, None),
    ("silhouette", "Silhouette", "higher = better separated", "silhouette", False, "silhouette_se"),
    ("calinski_harabasz", "Calinski–Harabasz", "higher = better separated", None, False, None),
    ("davies_bouldin", "Davies–Bouldin", "lower = better separated", None, False, None),
    ("gap", "Gap statistic", "higher = more structure than chance", "gap", True, "gap_se"),
    ("gmm_bic", "Gaussian-mixture BIC", "lower = better fit", "bic", False, None),
)


def evidence_figure(description: Description) -> Figure | None:
    selection = description.metrics.selection
    if not selection.table:
        return None
    table = sorted(selection.table, key=lambda r: r.k)
    ks = np.array([num(r.k) for r in table])
    chosen = num(selection.chosen_k)
    baseline = selection.baseline
    fig = _new_figure(11.0, 6.8, layout=None)
    axes = fig.subplots(2, 3, gridspec_kw={"left": 0.075, "right": 0.985, "top": 0.83, "bottom": 0.08,
                                           "wspace": 0.34, "hspace": 0.42})
    for ax, (key, title, ylabel, vote_key, with_base, err_key) in zip(axes.flat, _PANELS):
        kk, vals = list(ks), [num(getattr(r, key)) for r in table]
        errs = [num(getattr(r, err_key)) for r in table] if err_key else None
        if with_base and math.isfinite(num(getattr(baseline, key))):
            kk = [1.0] + kk
            vals = [num(getattr(baseline, key))] + vals
            if errs is not None:
                errs = [num(getattr(baseline, err_key))] + errs
        kk_a, vals_a = np.array(kk), np.array(vals)
        vote = num(selection.votes.get(vote_key)) if vote_key else math.nan
        ax.set_title(title, loc="left")
        ax.set_ylabel(ylabel, fontsize=8.5, color="#555555")
        ax.set_xlabel("Number of segments (k)")
        ax.set_xticks(kk_a)
        ax.set_xlim(kk_a.min() - 0.5, kk_a.max() + 0.5)
        if math.isfinite(chosen):
            ax.axvspan(chosen - 0.3, chosen + 0.3, color=CHOSEN, alpha=0.15, linewidth=0, zorder=0)
        if not np.isfinite(vals_a).any():
            ax.text(0.5, 0.5, "not computed", transform=ax.transAxes, ha="center", va="center", color="#777777")
            continue
        ok = np.isfinite(vals_a)
        ax.plot(kk_a[ok], vals_a[ok], color="#333333", marker="o", markersize=5, linewidth=1.6, zorder=3)
        if errs is not None:
            err_a = np.array(errs)
            has = ok & np.isfinite(err_a)
            if has.any():
                ax.errorbar(kk_a[has], vals_a[has], yerr=err_a[has], fmt="none", ecolor="#333333",
                            elinewidth=1.2, capsize=4, zorder=3)
        if math.isfinite(chosen) and chosen in kk_a[ok]:
            v = vals_a[kk_a == chosen][0]
            ax.plot([chosen], [v], marker="o", markersize=10, color=CHOSEN, zorder=4)
        if math.isfinite(vote) and vote in kk_a[ok]:
            v = vals_a[kk_a == vote][0]
            ax.plot([vote], [v], marker="D", markersize=13, markerfacecolor="none", markeredgecolor=PREFERRED,
                    markeredgewidth=2.0, linestyle="none", zorder=5)
        if np.nanmax(np.abs(vals_a)) >= 1000:
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
        _honest_axis(ax, key, vals_a[ok], np.array(errs)[ok] if errs is not None else None)
    headline = f"Evidence for each number of segments k (chosen: k = {chosen:g})" if math.isfinite(chosen) \
        else "Evidence for each number of segments k"
    fig.suptitle(headline, x=0.01, y=0.985, horizontalalignment="left")
    handles = [Line2D([], [], marker="o", markersize=9, color=CHOSEN, linestyle="none"),
               Line2D([], [], marker="D", markersize=10, markerfacecolor="none", markeredgecolor=PREFERRED,
                      markeredgewidth=2.0, linestyle="none"),
               Line2D([], [], color="#333333", marker="|", markersize=9, linestyle="none")]
    fig.legend(handles, ["chosen k (shaded band)", "k preferred by that criterion (knee for inertia)",
                         "± standard error, where computed"],
               loc="upper left", bbox_to_anchor=(0.005, 0.945), ncols=3, frameon=False, fontsize=9)
    return fig


def _honest_axis(ax, key: str, values: np.ndarray, errors: np.ndarray | None) -> None:
    """Start a non-negative criterion's axis at 0, so small differences look small; mark the
    silhouette's conventional readings."""
    top = float(np.nanmax(values + (np.nan_to_num(errors) if errors is not None else 0)))
    if key == "silhouette":
        top = max(top, SILHOUETTE_BANDS[-1][0])
        for level, words in SILHOUETTE_BANDS:
            ax.axhline(level, color="#999999", linestyle=":", linewidth=1.0, zorder=1)
            ax.text(ax.get_xlim()[1], level, f"{words} ", ha="right", va="bottom", fontsize=7.5, color="#666666")
        ax.text(ax.get_xlim()[1], 0.0, "no structure ", ha="right", va="bottom", fontsize=7.5, color="#666666")
    if np.nanmin(values) >= 0:
        ax.set_ylim(0, top * 1.08)
    else:
        span = top - float(np.nanmin(values))
        ax.set_ylim(float(np.nanmin(values)) - 0.1 * span, top + 0.1 * span)


def _tick(value: float, _pos) -> str:
    """Thousands separators on large axes ('150k' from 100,000 on)."""
    if abs(value) >= 1e5:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}"


def stability_figure(description: Description) -> Figure | None:
    segs = description.segments
    rows = {r.segment: r for r in description.metrics.stability.segments}
    reps = [[num(v) for v in rows[s.segment].replicates] if s.segment in rows else [] for s in segs]
    if not segs or not any(any(math.isfinite(v) for v in r) for r in reps):
        return None
    stab = description.metrics.stability
    colours = colours_of(segs)
    fig = _new_figure(2.2 + 1.15 * len(segs), 5.6)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal values do not hide each other
    ticks = []
    for i, (seg, r, colour) in enumerate(zip(segs, reps, colours)):
        v = np.array([x for x in r if math.isfinite(x)])
        if len(v):
            ax.boxplot([v], positions=[i], widths=0.5, showfliers=False, whis=(0, 100),
                       medianprops={"color": "black"}, boxprops={"color": "#555555"},
                       whiskerprops={"color": "#555555"}, capprops={"color": "#555555"})
            ax.scatter(i + rng.uniform(-0.18, 0.18, len(v)), v, s=16, color=colour, edgecolors="black",
                       linewidths=0.4, alpha=0.85, zorder=3)
            mean = float(v.mean())
            ax.plot([i - 0.3, i + 0.3], [mean, mean], color="#d62728", linewidth=2.0, zorder=4)
            gone = int((v < DISSOLVED_BELOW).sum())
            ticks.append(f"{_seg_label(seg, 14)}\nmean {mean:.2f} · {seg.stability.status}\n"
                         f"dissolved {gone} of {len(v)}")
        else:
            ticks.append(_seg_label(seg, 14))
    ax.axhline(WEAK_AT, color="#444444", linestyle=":", linewidth=1.5)
    ax.axhline(STABLE_AT, color="#444444", linestyle="--", linewidth=1.3)
    right = len(segs) - 0.45
    ax.text(right, STABLE_AT + 0.01, f"stable ≥ {STABLE_AT:g}", va="bottom", ha="left", fontsize=8.5)
    ax.text(right, WEAK_AT + 0.01, f"weak ≥ {WEAK_AT:g}", va="bottom", ha="left", fontsize=8.5)
    ax.text(right, WEAK_AT - 0.01, "unstable", va="top", ha="left", fontsize=8.5)
    ax.set_xticks(np.arange(len(segs)), ticks, fontsize=8)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_xlim(-0.6, len(segs) + 0.6)
    ax.set_ylim(0, 1.0)
    ax.set_yticks([0, 0.2, 0.4, 0.5, 0.6, 0.75, 1.0])
    ax.set_ylabel("Jaccard similarity with the segment\n(1 = found again exactly, 0 = not found)")
    extra = f"B = {stab.n_boot} resamples"
    if math.isfinite(num(stab.mean_ari)):
        extra += f", mean adjusted Rand index {num(stab.mean_ari):.2f}"
    ax.set_title(f"Each dot is one resample; red line: mean; dissolved = Jaccard below {DISSOLVED_BELOW:g}\n{extra}",
                 loc="left", fontsize=10)
    return fig


def k_stability_figure(description: Description) -> Figure | None:
    choice = description.choice
    if choice is None or not choice.per_k:
        return None
    chosen = description.metrics.chosen_k
    width = max(6.0, 1.0 + 0.75 * len(choice.per_k))
    fig = _new_figure(width, 4.6)
    ax = fig.add_subplot()
    for row in choice.per_k:
        values = [num(v) for v in row.jaccard if math.isfinite(num(v))]
        ax.scatter([row.k] * len(values), values, s=18, color="#7f7f7f", alpha=0.8, zorder=2)
        lows = [num(v) for v in row.jaccard_lower if math.isfinite(num(v))]
        if lows:
            # the colour says what the diamond's height says: a bound at or above the line is green
            ax.scatter([row.k], [min(lows)], s=70, marker="D", zorder=3,
                       color=CHOSEN if row.k == chosen else ("#009e73" if min(lows) >= HIGHLY_STABLE_AT
                                                             else "#d55e00"))
    ax.axhline(HIGHLY_STABLE_AT, color="#444444", linestyle="-", linewidth=1.1)
    ax.axhline(STABLE_AT, color="#444444", linestyle="--", linewidth=1.3)
    ax.axhline(WEAK_AT, color="#444444", linestyle=":", linewidth=1.5)
    ks = [r.k for r in choice.per_k]
    ax.set_xticks(ks, [f"{k}\n(chosen)" if k == chosen else str(k) for k in ks])
    ax.set_xlim(min(ks) - 0.6, max(ks) + 0.6)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("number of segments k")
    ax.set_ylabel("mean bootstrap Jaccard per segment\n(1 = found again exactly)")
    title = ("Grey dots: each segment's mean at that k. Diamond: the lowest 95 % lower bound on that k's refits "
             "(green: at or above the solid line; orange: below; blue: the chosen k, confirmed on the most refits). "
             f"Lines: highly stable ≥ {HIGHLY_STABLE_AT:g}; dashed: stable ≥ {STABLE_AT:g}; dotted: weak ≥ {WEAK_AT:g}")
    # wrapped to the width right of the axis labels (about 0.6 em a character in bold), so no line is cut off
    ax.set_title(textwrap.fill(title, int((width - 1.0) * 72 / (10 * 0.6))), loc="left", fontsize=10)
    return fig


_MAKERS = {
    "distributions": distributions_figure,
    "missing": missing_figure,
    "correlation": correlation_figure,
    "evidence": evidence_figure,
    "k_stability": k_stability_figure,
    "silhouette": silhouette_figure,
    "sizes": sizes_figure,
    "projection": projection_figure,
    "tsne": tsne_figure,
    "distances": distances_figure,
    "profile": profile_figure,
    "effects": effects_figure,
    "boxes": boxes_figure,
    "value_risk": value_risk_figure,
    "stability": stability_figure,
}


def make_figures(description: Description, names: Iterable[str] = FIGURE_ORDER, *,
                 processes: int | None = None) -> dict[str, Rendered]:
    """Render every figure in ``names`` the description has data for: name -> PNG and SVG, in report order.

    Parameters
    ----------
    description : Description
        What the figures show (an object with an ``exploration`` is enough for the data figures).
    names : iterable of str
        The figures wanted; unknown names are ignored.
    processes : int, optional
        Processes that draw, this one included (on Linux; elsewhere everything is drawn here).
        Default: the cores this process may use, at most :data:`~custseg.report.drawing.MAX_PROCESSES`.
    """
    names = set(names)
    wanted = [name for name in FIGURE_ORDER if name in names]
    first, *others = shares(wanted, processes_for(processes, len(wanted))) or [[]]
    with Drawing() as drawing:
        for share in others:
            drawing.start(description, share, processes=1)
        out = _render_figures(description, first)
        out.update(drawing.result())
    return {name: out[name] for name in wanted if name in out}


def _render_figures(description: Description, names: Sequence[str]) -> dict[str, Rendered]:
    import seaborn as sns

    out: dict[str, Rendered] = {}
    with matplotlib.rc_context(_RC), sns.axes_style("whitegrid", {k: v for k, v in _RC.items()
                                                                  if k.startswith(("axes.", "grid."))}):
        matplotlib.rcParams.update(_RC)  # inside rc_context: restored on exit
        for name in names:
            fig = _MAKERS[name](description)
            if fig is not None:
                out[name] = _render(fig)
    return out

