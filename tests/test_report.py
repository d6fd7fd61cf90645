"""The report renders the description faithfully, self-contained and byte-for-byte reproducibly."""

from __future__ import annotations

import copy
import re
from html import escape
from pathlib import Path

import pytest

from custseg.datasets import generate
from custseg.description import Description, PortfolioStatistic, Provenance, StabilityScore
from custseg.report import render_all
from custseg.report.figures import FIGURE_ORDER, OPTIONAL_FIGURES, make_figures, sizes_figure
from custseg.report.html import render_html
from custseg.report.markdown import render_markdown
from custseg.run import RunConfig, segment

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def description() -> Description:
    """The description of a small synthetic run (with the real file's quirks), built by the code itself."""
    frame, _ = generate(600, seed=5, quirks=True)
    config = RunConfig(k_max=6, n_init=2, n_boot=5, n_refs=2)
    return segment(frame, config, name="synthetic portfolio").describe()


@pytest.fixture(scope="module")
def rendered(description, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    render_all(description, folder)
    return folder


def read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


def outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_all_files_exist(rendered):
    assert (rendered / "report.html").is_file()
    assert (rendered / "report.md").is_file()
    pngs = sorted(p.stem for p in (rendered / "figures").glob("*.png"))
    assert pngs == sorted(set(FIGURE_ORDER) - set(OPTIONAL_FIGURES))  # the t-SNE map only with --tsne
    assert sorted(p.stem for p in (rendered / "figures").glob("*.svg")) == pngs


def test_pngs_are_valid_and_named_as_linked(rendered):
    md = read(rendered, "report.md")
    html = read(rendered, "report.html")
    for png in (rendered / "figures").glob("*.png"):
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        assert f"(figures/{png.name})" in md
        assert f'id="fig-{png.stem}"' in html
    linked = set(re.findall(r"\(figures/([^)]+)\.png\)", md))
    assert linked == {p.stem for p in (rendered / "figures").glob("*.png")}
    assert html.count("data:image/png;base64,") == len(linked)


def test_every_segment_name_and_size_appears(rendered, description):
    html, md = read(rendered, "report.html"), read(rendered, "report.md")
    for seg in description.segments:
        size = f"{seg.size:,}"
        assert seg.name in md
        assert size in md
        assert size in html
        assert escape(seg.name) in html


def test_every_section_appears(rendered, description):
    html, md = read(rendered, "report.html"), read(rendered, "report.md")
    for section in ("summary", "segments", "evidence", "data", "methods"):
        assert f'<section id="{section}">' in html
    assert html.index('<section id="summary">') < html.index('<section id="segments">') < \
        html.index('<section id="evidence">') < html.index('<section id="data">') < html.index('<section id="methods">')
    for heading in ("## Executive summary", "## Segments in detail", "## Choice of k and stability",
                    "### Choice of the number of segments", "### Stability of each segment", "## Data and quality",
                    "## Features and method"):
        assert f"\n{heading}\n" in md
    for seg in description.segments:
        assert f'id="segment-{seg.segment}"' in html
        assert f"### {seg.segment}. {seg.name}" in md


def test_selection_reason_appears(rendered, description):
    reason = description.metrics.selection.reason
    assert reason in read(rendered, "report.md")
    assert reason in read(rendered, "report.html")


def test_data_quality_findings_counts_appear(rendered, description):
    html, md = read(rendered, "report.html"), read(rendered, "report.md")
    assert description.data_quality.findings
    for finding in description.data_quality.findings:
        count = f"{finding.count:,}"
        row = re.compile(rf"<td class=\"num\">{re.escape(count)}</td><td>{re.escape(escape(finding.rule))}</td>")
        assert row.search(html), finding
        assert f"| {count} |" in md


def test_findings_ordered_by_severity(rendered):
    html = read(rendered, "report.html")
    order = ["fatal", "repaired", "imputed", "warning", "info"]
    seen = re.findall(r'<td><span class="badge (\w+)">\1</span></td><td><code>', html)
    assert seen, "findings table not found"
    ranks = [order.index(s) for s in seen]
    assert ranks == sorted(ranks)
    assert len(set(seen)) > 1, "the fixture should have findings of several severities"


def test_html_is_self_contained(rendered):
    html = read(rendered, "report.html")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert "@import" not in html
    assert "<script" not in html.lower()
    assert not re.search(r"https?://", html)


def test_rendering_twice_is_byte_identical(description, rendered, tmp_path):
    render_all(description, tmp_path)
    assert outputs(tmp_path) == outputs(rendered)


def test_no_timestamps(rendered):
    text = read(rendered, "report.html") + read(rendered, "report.md")
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text)
    for png in (rendered / "figures").glob("*.png"):
        data = png.read_bytes()
        assert b"Software" not in data and b"tIME" not in data


def test_renders_without_projection(description):
    d = copy.deepcopy(description)
    d.projection = None
    assert make_figures(d, ("projection", "sizes")).keys() == {"sizes"}
    md = render_markdown(d, ["sizes"])
    assert "projection.png" not in md
    assert d.segments[0].name in md
    assert 'id="fig-projection"' not in render_html(d, {"sizes": b"png"})


def test_tolerates_missing_optional_parts_and_nulls(description, tmp_path):
    d = copy.deepcopy(description)
    d.projection = None
    d.custseg = Provenance(versions={}, config={})
    d.portfolio = {"BALANCE": PortfolioStatistic(mean=None, median=None)}
    d.data_quality.findings = []
    d.metrics.stability.mean_ari = None
    d.metrics.selection.table[0].silhouette = None
    d.metrics.selection.silhouette_sample_size = None
    d.segments[0].variables["BALANCE"].ratio = None
    d.segments[0].variables["BALANCE"].median = None
    d.segments[1].stability = StabilityScore(jaccard_mean=None, jaccard_sd=None, status="")
    render_all(d, tmp_path)
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", read(tmp_path, "report.html"))
    md = read(tmp_path, "report.md")
    for text in (html, md):
        assert "–" in text
        assert not re.search(r"\b(None|nan|NaN|null)\b", text)


def test_script_in_segment_name_is_escaped(description):
    d = copy.deepcopy(description)
    d.segments[0].name = "<script>alert('x')</script> & co"
    d.segments[0].traits = ["<b>bold</b>"]
    assert sizes_figure(d) is not None  # names in figure labels are plain text to matplotlib
    html = render_html(d, {})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
    assert "<b>bold</b>" not in html
    md = render_markdown(d, ["sizes"])
    assert "<script>" not in md
    assert "&lt;script&gt;" in md


def test_markdown_table_cells_cannot_break_rows(description):
    d = copy.deepcopy(description)
    d.segments[0].name = "A | B\nC"
    md = render_markdown(d, [])
    rows = [line for line in md.splitlines() if line.startswith("| 1 |")]
    assert "### 1. A \\| B C" in md
    assert rows and all("A \\| B C" in r for r in rows)


def test_ten_segments_render(description, tmp_path):
    d = copy.deepcopy(description)
    n = len(d.segments)
    extra = [copy.deepcopy(d.segments[i % n]) for i in range(10 - n)]
    for i, seg in enumerate(extra, start=n + 1):
        seg.segment = i
        seg.name = f"Extra segment {i}"
        seg.colour = i - 1
    d.segments += extra
    d.projection.centres += [d.projection.centres[i % n] for i in range(10 - n)]
    d.centre_distances = [[float(abs(i - j)) for j in range(10)] for i in range(10)]
    render_all(d, tmp_path)
    md = read(tmp_path, "report.md")
    for seg in d.segments:
        assert seg.name in md
    assert len(list((tmp_path / "figures").glob("*.png"))) == len(FIGURE_ORDER) - len(OPTIONAL_FIGURES)
