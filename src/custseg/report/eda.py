"""The data and quality part of the report on its own (``custseg eda``): figures, eda.html, eda.md, eda.json.

It reads a :class:`custseg.exploration.Exploration` and a data-quality dict only.
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

from custseg.description import DataQuality, _typed
from custseg.exploration import Exploration
from custseg.jsonio import write_json

from .figures import FIGURE_TITLES, SECTIONS, make_figures
from .html import FIGURE_CAPTIONS, _data_quality, _environment, fmt_amount, fmt_float, fmt_int, fmt_share
from .markdown import code, md


def _view(exploration: Exploration, quality: DataQuality) -> dict:
    return {"source": quality.source, "n_rows": fmt_int(exploration.n_rows),
            "exploration": [{"column": c.column, "description": c.description, "unit": c.unit,
                             "missing": fmt_int(c.missing), "zeros": fmt_share(c.zeros / c.n if c.n else None, 0),
                             "median": fmt_amount(c.median), "q95": fmt_amount(c.q95),
                             "maximum": fmt_amount(c.maximum), "skew": fmt_float(c.skew, 1)}
                            for c in exploration.columns],
            "findings": len(quality.findings), "quality": _data_quality(quality)["findings"],
            "figures": {n: {"title": FIGURE_TITLES[n], "caption": FIGURE_CAPTIONS[n]} for n in SECTIONS["data"]}}


def write_eda(exploration: Exploration, quality: dict, folder: Path) -> None:
    """Write figures/*.png|svg, eda.html (self-contained), eda.md and eda.json into ``folder``."""
    dq = _typed(DataQuality, quality)
    figures = make_figures(SimpleNamespace(exploration=exploration), SECTIONS["data"])
    (folder / "figures").mkdir(exist_ok=True)
    for name, r in figures.items():
        (folder / "figures" / f"{name}.png").write_bytes(r.png)
        (folder / "figures" / f"{name}.svg").write_bytes(r.svg)
    view = _view(exploration, dq)
    images = {n: "data:image/png;base64," + base64.b64encode(r.png).decode("ascii") for n, r in figures.items()}
    html = _environment().get_template("eda.html.j2").render(**view, images=images, order=list(figures))
    (folder / "eda.html").write_text(html, encoding="utf-8", newline="\n")
    lines = [f"# First look at {md(view['source'])}", "", f"{view['n_rows']} customers.", "",
             "| Column | Unit | Missing | Zeros | Median | 95th pct. | Maximum | Skew |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {code(c['column'])} | {c['unit']} | {c['missing']} | {c['zeros']} | {c['median']} | {c['q95']} | "
              f"{c['maximum']} | {c['skew']} |" for c in view["exploration"]]
    lines.append("")
    for n in figures:
        lines += [f"![{md(FIGURE_TITLES[n])}](figures/{n}.png)", "", f"*{md(FIGURE_CAPTIONS[n])}*", ""]
    lines += ["## What validation found", ""] + [f"- {f['severity']}: {code(f['column'])} {f['count']} rows, "
                                                   f"{md(f['rule'])}" for f in view["quality"]]
    (folder / "eda.md").write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    write_json(folder / "eda.json", {"exploration": exploration.to_dict(), "data_quality": quality})
