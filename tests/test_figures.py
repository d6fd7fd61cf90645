"""The figures show what the description says, without the old defects (whiskers past 1, cut axes,
hidden centre labels, colours by size rank), and render to the same bytes every time."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from matplotlib.text import Annotation

from custseg.datasets import generate
from custseg.description import Description
from custseg.report import figures as F
from custseg.report.palette import PALETTE, colour_for
from custseg.run import RunConfig, segment


@pytest.fixture(scope="module")
def description() -> Description:
    frame, _ = generate(600, seed=5, quirks=True)
    return segment(frame, RunConfig(k_max=6, n_init=2, n_boot=8, n_refs=2), name="synthetic").describe()


def _srgb_to_lab(hex_colour: str, matrix=np.eye(3)) -> np.ndarray:
    c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    lin = np.clip(matrix @ np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    f = np.where((t := xyz / np.array([0.95047, 1, 1.08883])) > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado, Oliveira & Fernandes (2009), severity 1
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])
PROTANOPIA = np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                       [-0.003882, -0.048116, 1.051998]])


@pytest.mark.parametrize("vision", [np.eye(3), DEUTERANOPIA, PROTANOPIA], ids=["normal", "deuteranopia", "protanopia"])
def test_twelve_colours_stay_distinct(vision):
    assert len(set(PALETTE)) == 12
    lab = [_srgb_to_lab(c, vision) for c in PALETTE]
    closest = min(np.linalg.norm(lab[i] - lab[j]) for i in range(12) for j in range(i + 1, 12))
    assert closest >= 15


def test_colour_follows_the_segments_identity_not_its_rank(description):
    d = copy.deepcopy(description)
    d.segments[0].colour, d.segments[1].colour = d.segments[1].colour, d.segments[0].colour
    assert F.colours_of(d.segments)[:2] == [colour_for(description.segments[1].colour),
                                             colour_for(description.segments[0].colour)]
    fig = F.sizes_figure(d)
    bars = fig.axes[0].patches
    assert bars[0].get_facecolor()[:3] == pytest.approx(np.array(F.matplotlib.colors.to_rgb(F.colours_of(d.segments)[0])))


def test_stability_shows_every_resample_inside_0_1(description):
    fig = F.stability_figure(description)
    ax = fig.axes[0]
    ys = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets())])
    reps = [v for r in description.metrics.stability.segments for v in r.replicates if v is not None]
    assert len(ys) == len(reps) == description.metrics.stability.n_boot * len(description.segments)
    assert sorted(ys) == pytest.approx(sorted(reps))
    assert 0 <= ys.min() and ys.max() <= 1
    assert ax.get_ylim() == (0, 1)
    for line in ax.get_lines():
        assert all(0 <= y <= 1 for y in line.get_ydata())


def test_evidence_axes_start_at_zero_and_show_silhouette_readings(description):
    fig = F.evidence_figure(description)
    by_title = {ax.get_title(loc="left"): ax for ax in fig.axes}
    sil = by_title["Silhouette"]
    assert sil.get_ylim()[0] == 0 and sil.get_ylim()[1] >= 0.7
    for title in ("Inertia (within-segment spread)", "Calinski–Harabasz", "Davies–Bouldin"):
        assert by_title[title].get_ylim()[0] == 0


def test_centre_labels_do_not_overlap_even_when_centres_coincide(description):
    d = copy.deepcopy(description)
    d.projection.centres[1] = list(d.projection.centres[0])  # two centres on top of each other
    fig = F.projection_figure(d)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if isinstance(t, Annotation)]
    assert sorted(t.get_text() for t in labels) == sorted(str(s.segment) for s in d.segments)
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def test_projection_axes_say_what_they_capture(description):
    fig = F.projection_figure(description)
    xlabel = fig.axes[0].get_xlabel()
    share = description.projection.explained_variance[0]
    assert f"{share:.0%} of the spread" in xlabel
    top = max(description.projection.loadings, key=lambda f: abs(description.projection.loadings[f][0]))
    assert F.label(top) in xlabel


def test_silhouette_diagram_has_every_sampled_customer(description):
    fig = F.silhouette_figure(description)
    polys = fig.axes[0].collections
    assert len(polys) == len(description.segments)
    assert description.silhouettes.sample_size == len(description.silhouettes.value)


def test_figures_are_byte_identical_png_and_svg_whichever_process_draws_them(description):
    names = ("stability", "projection", "correlation")
    first, second = F.make_figures(description, names, processes=1), F.make_figures(description, names, processes=3)
    assert list(first) == list(second) == [n for n in F.FIGURE_ORDER if n in names]
    for name in names:
        assert first[name].png == second[name].png
        assert first[name].svg == second[name].svg
        assert b"<dc:date>" not in first[name].svg and first[name].svg.startswith(b"<?xml")


def test_figures_are_shared_out_once_each_and_evenly():
    shares = F.shares(F.FIGURE_ORDER, 2)
    assert sorted(n for share in shares for n in share) == sorted(F.FIGURE_ORDER)
    loads = [sum(F.COST[n] for n in share) for share in shares]
    assert max(loads) - min(loads) <= max(F.COST.values())
    assert F.shares(["sizes"], 4) == [["sizes"]]


def test_figures_are_drawn_here_when_no_process_can_be_forked(description, monkeypatch):
    def refused():
        raise OSError(12, "Cannot allocate memory")

    names = ("sizes", "stability")
    expected = F.make_figures(description, names, processes=1)
    monkeypatch.setattr(os, "fork", refused)
    drawn = F.make_figures(description, names, processes=2)
    assert list(drawn) == list(names) and all(drawn[n].png == expected[n].png for n in names)
