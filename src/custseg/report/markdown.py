"""The Markdown report (GitHub-flavoured), figures linked as ``figures/<name>.png``.

It reads the same view model as the HTML report (:func:`custseg.report.html.build_context`),
so both say the same thing. Text from the description is escaped so that names or
rules containing ``|``, ``*``, ``<`` and the like cannot break tables or inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from custseg.description import Description

from .html import build_context

_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md(value) -> str:
    """Escape text for Markdown: HTML-significant characters as entities, Markdown syntax with backslashes."""
    s = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = " ".join(s.split())  # newlines would end a table row
    return _SPECIAL.sub(r"\\\1", s)


def code(value) -> str:
    s = " ".join(str(value).split()).replace("|", "\\|")
    return f"`` {s} ``" if "`" in s else f"`{s}`"


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["l"] * len(header)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def render_markdown(description: Description, figure_names: Iterable[str]) -> str:
    """The report as Markdown; each name in ``figure_names`` is linked as ``figures/<name>.png``."""
    names = list(figure_names)
    c = build_context(description, dict.fromkeys(names, b""))
    figs = c["figures"]
    out: list[str] = []
    add = out.append

    def figure(name: str) -> None:
        if name in figs:
            add(f"![{md(figs[name]['title'])}](figures/{name}.png)")
            add("")
            add(f"*{md(figs[name]['caption'])}*" if figs[name]["caption"] else "")
            add("")

    add(f"# {md(c['title'])}")
    add("")
    add(f"**Source:** {md(c['source'])} · **Customers:** {c['n_customers']} · **Segments:** {c['n_segments']}")
    add("")

    # ---------------------------------------------------------------- summary
    add("## Summary")
    add("")
    sel = c["selection"]
    verdict = ("The number of segments was fixed; the evidence for other k was not computed."
               if sel["clear_structure"] is None else "The data show clear structure." if sel["clear_structure"] else
               "The data show no clear structure: read the segments as a convenient partition, "
               "not as distinct groups.")
    add(f"> **{verdict}** {md(sel['reason'])}")
    add("")
    add(f"The portfolio of {c['n_customers']} customers was divided into **{c['n_segments']} segments**:")
    add("")
    for s in c["segments"]:
        add(f"{s['number']}. **{md(s['name'])}** — {s['share']} ({s['size']} customers), "
            f"stability: {s['stability']['status']}")
    add("")
    figure("sizes")

    # ---------------------------------------------------------------- segments
    add("## Segments")
    add("")
    add_rows = [[s["number"], f"**{md(s['name'])}**", s["size"], s["share"],
                 f"{s['stability']['status']} ({s['stability']['jaccard']})", md(s["description"])]
                for s in c["segments"]]
    out.extend(_table(["#", "Name", "Customers", "Share", "Stability (Jaccard)", "Description"], add_rows,
                      ["r", "l", "r", "r", "l", "l"]))
    add(f"Stability: *stable* = recovered in resamples (Jaccard ≥ {c['stable_at']}); *weak* = partly "
        f"recovered ({c['weak_at']} ≤ Jaccard < {c['stable_at']}); *unstable* = not reliably recovered "
        f"(Jaccard < {c['weak_at']}).".replace("<", "&lt;"))
    add("")
    for name in ("ratios", "profile", "projection"):
        figure(name)
    add("### Segment profiles")
    add("")
    add("Ratio = segment average ÷ portfolio average.")
    add("")
    for s in c["segments"]:
        add(f"#### {s['number']}. {md(s['name'])}")
        add("")
        facts = f"{s['size']} customers · {s['share']} of the portfolio · stability **{s['stability']['status']}**"
        if s["stability"]["jaccard"] != "–":
            facts += f" (Jaccard {s['stability']['jaccard']})"
        add(facts)
        add("")
        if s["description"]:
            add(md(s["description"]))
            add("")
        if s["measures"]:
            out.extend(_table(["Measure", "Mean", "Median", "Portfolio mean", "Ratio"],
                              [[m["label"], m["mean"], m["median"], m["portfolio_mean"], m["ratio"]]
                               for m in s["measures"]], ["l", "r", "r", "r", "r"]))
        if s["traits"]:
            add("Traits: " + "; ".join(md(t) for t in s["traits"]))
            add("")

    # ---------------------------------------------------------------- evidence
    add("## Are the segments real?")
    add("")
    add("### Choice of the number of segments")
    add("")
    add(f"**Chosen: k = {md(sel['chosen_k'])}.** {md(sel['reason'])}")
    add("")
    if sel["table"]:
        out.extend(_table(
            ["k", "Inertia", "Silhouette", "Calinski–Harabasz", "Davies–Bouldin", "Gap ± se", "Mixture BIC",
             "Preferred by"],
            [[f"**{r['k']}** ✓" if r["chosen"] else r["k"], r["inertia"], r["silhouette"],
              r["calinski_harabasz"], r["davies_bouldin"], r["gap"], r["gmm_bic"], r["votes"]]
             for r in sel["table"]], ["r", "r", "r", "r", "r", "r", "r", "l"]))
    figure("evidence")
    add("### Stability of each segment")
    add("")
    add(f"Refitted on **{md(c['stability']['n_boot'])}** bootstrap resamples; mean adjusted Rand index "
        f"**{c['stability']['mean_ari']}** (1 = identical).")
    add("")
    figure("stability")
    for name in c["figure_order"]:
        if name not in ("sizes", "ratios", "profile", "projection", "evidence", "stability"):
            figure(name)
    out.extend(_table(["#", "Segment", "Jaccard mean", "sd", "Status"],
                      [[s["number"], md(s["name"]), s["stability"]["jaccard"], s["stability"]["jaccard_sd"],
                        s["stability"]["status"]] for s in c["segments"]], ["r", "l", "r", "r", "l"]))

    # ---------------------------------------------------------------- data quality
    dq = c["data_quality"]
    add("## Data quality")
    add("")
    add(f"- Rows read: {dq['n_rows']}")
    renamed = ", ".join(f"{code(r['from'])} → {code(r['to'])}" for r in dq["renamed"])
    add(f"- Columns renamed: {dq['n_renamed']}" + (f" ({renamed})" if renamed else ""))
    add(f"- Columns ignored: {', '.join(code(x) for x in dq['ignored']) or 'none'}")
    add(f"- Columns ignored as empty: {', '.join(code(x) for x in dq['empty_ignored']) or 'none'}")
    add(f"- Empty values: {', '.join(code(m['column']) + ' ' + m['count'] for m in dq['missing']) or 'none'}")
    for n in dq["notes"]:
        add(f"- Note: {md(n)}")
    if dq["severity_counts"]:
        add("- Findings: " + "; ".join(f"{x['n']} {x['severity']} ({x['meaning']})" for x in dq["severity_counts"]))
    add("")
    if dq["findings"]:
        out.extend(_table(["Severity", "Column", "Rows", "Rule", "Examples"],
                          [[f["severity"], code(f["column"]), f["count"], md(f["rule"]),
                            md(", ".join(f["examples"])) if f["examples"] else "–"] for f in dq["findings"]],
                          ["l", "l", "r", "l", "l"]))

    # ---------------------------------------------------------------- methods
    add("## Methods")
    add("")
    add("Customers were described by the model features below (“log” marks a feature taken on a log scale), "
        "standardised, and grouped with k-means. Segment names, descriptions and traits "
        "are generated from each segment's averages relative to the portfolio. Everything in this report is "
        "read from the run's `description.json`.")
    add("")
    if c["features"]:
        add(f"**Model features ({len(c['features'])}):** "
            + ", ".join(f"{md(f['label'])} ({code(f['name'])})" for f in c["features"]))
        add("")
    if c["config"]:
        add("**Configuration:** " + ", ".join(f"{code(x['key'])} = {md(x['value'])}" for x in c["config"]))
        add("")
    if c["versions"]:
        add("**Software versions:** " + ", ".join(f"{md(x['key'])} {md(x['value'])}" for x in c["versions"]))
        add("")
    add(f"**Training data:** {md(c['source'])}, {c['n_customers']} customers, fingerprint {code(c['fingerprint'])}")
    add("")
    return "\n".join(out).rstrip("\n") + "\n"
