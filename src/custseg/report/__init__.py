"""Render a run's :class:`~custseg.description.Description` as figures, an HTML and a Markdown report.

The analysis is computed elsewhere; rendering only reads the description
(formatting, ordering and choosing what to show). Outputs carry no timestamps,
so the same description always gives byte-identical files.

>>> render_all(description, Path("out"))   # doctest: +SKIP
out/figures/<name>.png and .svg, out/report.html (self-contained), out/report.md
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custseg.description import Description
    from custseg.report.drawing import Rendered

__all__ = ["render_all"]


def render_all(description: Description, folder: pathlib.Path,
               figures: Mapping[str, Rendered] | None = None) -> None:
    """Write folder/figures/*.png and *.svg, folder/report.html (self-contained: figures embedded as
    base64 PNG), folder/report.md (figures linked as figures/*.png).

    ``figures`` are the description's figures when they were drawn already (name -> PNG and SVG,
    in report order, e.g. by a :class:`~custseg.report.drawing.Drawing`); by default they are drawn here.
    """
    from .html import render_html
    from .markdown import render_markdown

    if figures is None:
        from .figures import make_figures

        figures = make_figures(description)
    folder = pathlib.Path(folder)
    fig_dir = folder / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for name, rendered in figures.items():
        (fig_dir / f"{name}.png").write_bytes(rendered.png)
        (fig_dir / f"{name}.svg").write_bytes(rendered.svg)
    with open(folder / "report.html", "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render_html(description, {name: r.png for name, r in figures.items()}))
    with open(folder / "report.md", "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render_markdown(description, list(figures)))
