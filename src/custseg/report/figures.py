"""Figures of the report, drawn from the description only (no statistics computed here).

Every figure is a :class:`matplotlib.figure.Figure` rendered by the Agg canvas
directly, so the global pyplot backend is never switched and no pyplot state is
created. Sizes, DPI, fonts and the per-segment palette are fixed, and PNG
metadata carries no software version or date, so the same description always
gives byte-identical PNG files.

Figures (name -> content); a figure whose data are absent is left out:

``sizes``       customers per segment (horizontal bars, share in the label)
``profile``     segment centres over the model features (standardised; diverging map at 0)
``ratios``      key measures per segment relative to the portfolio (log2 colour, ratio annotated)
``projection``  2-D principal-component view of a customer sample, coloured by segment
``evidence``    six criteria against k (inertia, silhouette, Calinski-Harabasz,
                Davies-Bouldin, gap, Gaussian-mixture BIC) with the chosen k marked
``stability``   bootstrap Jaccard similarity per segment with the 0.6 / 0.75 thresholds
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable

import matplotlib
import matplotlib.colors
import matplotlib.ticker
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from custseg.description import Description, SegmentDescription

#: Order of figures in the report.
FIGURE_ORDER = ("sizes", "profile", "ratios", "projection", "evidence", "stability")

#: Plain-language titles of the figures (also used as alt text and captions).
FIGURE_TITLES = {
    "sizes": "Customers per segment",
    "profile": "What sets each segment apart (segment centres on the model's standardised scale)",
    "ratios": "Key measures relative to the portfolio average",
    "projection": "Customers on a two-dimensional map of the model space",
    "evidence": "How the number of segments was chosen",
    "stability": "How reproducible each segment is under resampling",
}

DPI = 110
#: Heatmaps are at least this wide (inches) so that their titles fit with few segments.
MIN_HEATMAP_WIDTH = 9.0
#: Marker colours of the evidence figure (not segment colours).
CHOSEN, PREFERRED = "#0b5394", "#d55e00"

#: Colourblind-safe qualitative palette: Paul Tol's "bright" scheme (distinct under the common
#: colour-vision deficiencies), extended with three of his "muted" colours for 8-10 segments.
_COLOURBLIND = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB",
                "#332288", "#999933", "#882255")
#: Used only beyond ten segments (not all pairs are colourblind-distinct any more).
_EXTRA = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
          "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
          "#bcbd22", "#dbdb8d", "#17becf", "#9edae5")

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
WEAK_AT, STABLE_AT = 0.6, 0.75


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


def segment_colours(n: int) -> list[str]:
    """One colour per segment (hex), the same in every figure and in the HTML."""
    pool = _COLOURBLIND if n <= len(_COLOURBLIND) else _EXTRA
    return [pool[i % len(pool)] for i in range(n)]


def _ink_on(colour: str) -> str:
    """Black or white text, whichever reads better on a fill colour."""
    r, g, b = matplotlib.colors.to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


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
    """Approximate width in inches of the longest line of text at a font size (DejaVu Sans)."""
    longest = max((len(line) for t in texts for line in str(t).split("\n")), default=0)
    return longest * size * 0.53 / 72.0


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    fig.clear()
    return buf.getvalue()


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
    colours = segment_colours(len(segs))
    labels = [_seg_label(s, width=30).replace("\n", " ") for s in segs]
    sizes = [num(s.size) for s in segs]
    shares = [num(s.share) for s in segs]
    fig = _new_figure(9.0, 0.55 * len(segs) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(segs))
    ax.barh(y, np.nan_to_num(sizes), color=colours, edgecolor="white", height=0.7)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    top = max((v for v in sizes if math.isfinite(v)), default=1.0) or 1.0
    ax.set_xlim(0, top * 1.22)
    for yi, size, share in zip(y, sizes, shares):
        if not math.isfinite(size):
            continue
        text = f"{size:,.0f}" + (f"  ({share:.1%})" if math.isfinite(share) else "")
        ax.text(size + top * 0.01, yi, text, va="center", ha="left", fontsize=9)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    ax.set_xlabel("Number of customers")
    ax.set_title(FIGURE_TITLES["sizes"], loc="left")
    return fig


def _heatmap_figure(values: np.ndarray, annotations: list[list[str]], *, vmax: float, cmap: str,
                    xlabels: list[str], ylabels: list[str], cbar_label: str, cbar_ticks=None,
                    cbar_ticklabels=None) -> tuple[Figure, object]:
    """Annotated heatmap (seaborn) with a colour bar on the right, laid out in fixed inches.

    The layout is computed from the label lengths rather than by matplotlib's layout
    engines, which keeps rendering fast and the result deterministic.
    """
    import warnings

    import seaborn as sns

    n_rows, n_cols = values.shape
    cell_w, cell_h = 1.05, 0.42
    left = 0.3 + _text_width(ylabels)
    top = 0.55 + 0.17 * max((str(x).count("\n") + 1 for x in xlabels), default=1)
    bottom, right = 0.15, 1.75
    cell_w = max(cell_w, (MIN_HEATMAP_WIDTH - left - right) / max(n_cols, 1))
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
             cbar_label="Segment centre (standard deviations from the portfolio average)")
    _colour_tick_labels(ax, segment_colours(len(segs)))
    ax.set_title("Segment centres: red = above the portfolio average, blue = below", loc="left", pad=12)
    return fig


def ratios_figure(description: Description) -> Figure | None:
    segs = description.segments
    keys = [(k, lab) for k, lab, _ in KEY_MEASURES if any(k in s.variables for s in segs)]
    if not segs or not keys:
        return None
    ratios = np.array([[num(s.variables[k].ratio) if k in s.variables else math.nan for s in segs]
                       for k, _ in keys])
    with np.errstate(divide="ignore", invalid="ignore"):
        colour = np.where(ratios > 0, np.log2(np.where(ratios > 0, ratios, 1.0)), np.where(ratios == 0, -np.inf, np.nan))
    colour = np.clip(colour, -3.0, 3.0)
    annotations = [[short_ratio(v) for v in row] for row in ratios]
    fig, ax = _heatmap_figure(colour, annotations, vmax=3.0, cmap="RdBu_r",
             xlabels=[_seg_label(s, width=14) for s in segs],
             ylabels=[lab for _, lab in keys],
             cbar_label="Segment average ÷ portfolio average",
             cbar_ticks=[-3, -2, -1, 0, 1, 2, 3],
             cbar_ticklabels=["≤⅛×", "¼×", "½×", "1×", "2×", "4×", "≥8×"])
    _colour_tick_labels(ax, segment_colours(len(segs)))
    ax.set_title("Segment average as a multiple of the portfolio average (1× = same as portfolio)",
                 loc="left", pad=12)
    return fig


def projection_figure(description: Description) -> Figure | None:
    proj, segs = description.projection, description.segments
    if proj is None or not segs:
        return None
    x = np.array([num(v) for v in proj.x])
    y = np.array([num(v) for v in proj.y])
    if not len(x) or len(x) != len(y) or len(proj.segment) != len(x):
        return None
    colours = segment_colours(len(segs))
    ev = proj.explained_variance
    fig = _new_figure(9.5, 7.0)
    ax = fig.add_subplot()
    lab_arr = np.array(proj.segment)
    for seg, colour in zip(segs, colours):
        take = lab_arr == seg.segment
        ax.scatter(x[take], y[take], s=7, color=colour, alpha=0.45, linewidths=0, rasterized=False,
                   label=_seg_label(seg, width=40).replace("\n", " "))
    for seg, centre, colour in zip(segs, proj.centres, colours):
        if len(centre) < 2:
            continue
        cx, cy = num(centre[0]), num(centre[1])
        if not (math.isfinite(cx) and math.isfinite(cy)):
            continue
        ax.scatter([cx], [cy], s=260, color=colour, edgecolors="black", linewidths=1.4, zorder=5)
        ax.text(cx, cy, str(seg.segment), ha="center", va="center", fontsize=9, fontweight="bold",
                color=_ink_on(colour), zorder=6)

    def axis_label(j: int) -> str:
        share = num(ev[j]) if j < len(ev) else math.nan
        tail = f" ({share:.0%} of the variation)" if math.isfinite(share) else ""
        return f"Principal component {j + 1}{tail}"

    ax.set_xlabel(axis_label(0))
    ax.set_ylabel(axis_label(1))
    ax.set_title(f"A sample of {len(x):,} customers; large circles mark the segment centres", loc="left")
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, markerscale=2.5,
                       title="Segment", alignment="left")
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
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


def _tick(value: float, _pos) -> str:
    """Thousands separators on large axes ('150k' from 100,000 on)."""
    if abs(value) >= 1e5:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}"


def stability_figure(description: Description) -> Figure | None:
    rows = [(_seg_label(s, width=14), num(s.stability.jaccard_mean), num(s.stability.jaccard_sd), s.stability.status)
            for s in description.segments]
    if not rows or not any(math.isfinite(r[1]) for r in rows):
        return None
    stab = description.metrics.stability
    colours = segment_colours(len(rows))
    fig = _new_figure(2.0 + 1.15 * len(rows), 5.2)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    means = np.array([r[1] for r in rows])
    sds = np.array([r[2] for r in rows])
    ax.bar(x, np.nan_to_num(means), color=colours, width=0.65, edgecolor="white")
    has = np.isfinite(means) & np.isfinite(sds)
    if has.any():
        ax.errorbar(x[has], means[has], yerr=sds[has], fmt="none", ecolor="#222222", elinewidth=1.3, capsize=5)
    ax.axhspan(0, WEAK_AT, color="#000000", alpha=0.04, zorder=0)
    ax.axhline(WEAK_AT, color="#444444", linestyle=":", linewidth=1.5)
    ax.axhline(STABLE_AT, color="#444444", linestyle="--", linewidth=1.3)
    right = len(rows) - 0.45
    ax.text(right, STABLE_AT + 0.01, f"stable ≥ {STABLE_AT:g}", va="bottom", ha="left", fontsize=8.5,
            color="#333333")
    ax.text(right, WEAK_AT + 0.01, f"weak ≥ {WEAK_AT:g}", va="bottom", ha="left", fontsize=8.5, color="#333333")
    ax.text(right, WEAK_AT - 0.01, "unstable", va="top", ha="left", fontsize=8.5, color="#333333")
    ticks = []
    for label_, m, _, status in rows:
        ticks.append(label_ + ("\n" + f"{m:.2f} · {status}" if math.isfinite(m) else ""))
    ax.set_xticks(x, ticks)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_xlim(-0.6, len(rows) + 0.45)
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.75, 1.0])
    ax.set_ylabel("Jaccard similarity across resamples\n(1 = segment always recovered)")
    title = "Bootstrap stability per segment (bars: mean, whiskers: ± 1 sd)"
    ari = num(stab.mean_ari)
    extra = [f"B = {stab.n_boot} resamples"]
    if math.isfinite(ari):
        extra.append(f"mean adjusted Rand index {ari:.2f}")
    ax.set_title(title + "\n" + ", ".join(extra), loc="left")
    return fig


_MAKERS = {
    "sizes": sizes_figure,
    "profile": profile_figure,
    "ratios": ratios_figure,
    "projection": projection_figure,
    "evidence": evidence_figure,
    "stability": stability_figure,
}


def make_figures(description: Description) -> dict[str, bytes]:
    """Render every figure the description has data for: name -> PNG bytes, in report order."""
    import seaborn as sns

    out: dict[str, bytes] = {}
    with matplotlib.rc_context(_RC), sns.axes_style("whitegrid", {k: v for k, v in _RC.items()
                                                                  if k.startswith(("axes.", "grid."))}):
        matplotlib.rcParams.update(_RC)  # inside rc_context: restored on exit
        for name in FIGURE_ORDER:
            fig = _MAKERS[name](description)
            if fig is not None:
                out[name] = _png(fig)
    return out


def figure_names(names: Iterable[str]) -> list[str]:
    """Figure names in report order (known ones first, then any others as given)."""
    names = list(names)
    return [n for n in FIGURE_ORDER if n in names] + [n for n in names if n not in FIGURE_ORDER]
