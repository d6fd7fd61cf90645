"""The Markdown report (GitHub-flavoured), figures linked as ``figures/<name>.png``.

It is rendered by the template ``templates/report.md.j2`` from the same view model as the HTML report (:func:`custseg.report.html.build_context`),
so both say the same thing. Text from the description is escaped so that names or
rules containing ``|``, ``*``, ``<`` and the like cannot break tables or inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from custseg.description import Description

from .html import TEMPLATES, build_context

_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md(value) -> str:
    """Escape text for Markdown: HTML-significant characters as entities, Markdown syntax with backslashes."""
    s = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = " ".join(s.split())  # newlines would end a table row
    return _SPECIAL.sub(r"\\\1", s)


def code(value) -> str:
    s = " ".join(str(value).split()).replace("|", "\\|")
    return f"`` {s} ``" if "`" in s else f"`{s}`"


def render_markdown(description: Description, figure_names: Iterable[str]) -> str:
    """The report as Markdown (template ``report.md.j2``); each name in ``figure_names`` is linked as
    ``figures/<name>.png``."""
    c = build_context(description, dict.fromkeys(figure_names, b""))
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = md
    env.filters["code"] = code
    text = env.get_template("report.md.j2").render(**c)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"
