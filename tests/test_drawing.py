"""Figures drawn in other processes come back as drawn here, errors come back as raised here, and no
drawing process outlives its drawing."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace

import pytest

from custseg.datasets import generate
from custseg.description import exploration_of
from custseg.report import drawing as D
from custseg.report.catalogue import SECTIONS
from custseg.report.figures import _render_figures

pytestmark = pytest.mark.skipif(not D.forking(), reason="figures are drawn in other processes on Linux only")

DATA = SECTIONS["data"]


@pytest.fixture(scope="module")
def explored() -> SimpleNamespace:
    frame, _ = generate(400, seed=3, quirks=True)
    return SimpleNamespace(exploration=exploration_of(frame))


def _drawing_processes() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "custseg-figures"]


def test_figures_drawn_elsewhere_are_the_bytes_drawn_here(explored):
    here = _render_figures(explored, list(DATA))
    with D.Drawing() as drawing:
        drawing.start(explored, DATA, processes=2)
        assert drawing.names and sorted(drawing.names) == sorted(DATA) and len(_drawing_processes()) == 2
        drawn = drawing.result()
    assert list(drawn) == list(DATA)
    assert all(drawn[n].png == here[n].png and drawn[n].svg == here[n].svg for n in DATA)
    assert _drawing_processes() == []


def test_a_figure_started_twice_is_drawn_once(explored):
    with D.Drawing() as drawing:
        drawing.start(explored, ["missing"], processes=1).start(explored, ["missing", "correlation"], processes=1)
        assert drawing.names == ["missing", "correlation"]
        assert list(drawing.result()) == ["missing", "correlation"]


def test_an_error_while_drawing_is_raised_as_when_drawn_here():
    column = SimpleNamespace(column="BALANCE", missing="some")  # not a count: cannot be drawn
    broken = SimpleNamespace(exploration=SimpleNamespace(n_rows=3, columns=[column]))
    with pytest.raises(ValueError) as here:
        _render_figures(broken, ["missing"])
    with D.Drawing() as drawing, pytest.raises(type(here.value)) as there:
        drawing.start(broken, ["missing"], processes=1).result()
    assert str(there.value) == str(here.value)
    assert any("while drawing the figures missing" in note for note in there.value.__notes__)
    assert _drawing_processes() == []


def test_leaving_a_drawing_stops_its_processes(explored):
    with pytest.raises(KeyError):
        with D.Drawing() as drawing:
            drawing.start(explored, DATA, processes=3)
            started = _drawing_processes()
            assert len(started) == 3
            raise KeyError("the run failed while the figures were drawn")
    assert _drawing_processes() == [] and all(p.exitcode is not None for p in started)


def test_a_killed_drawing_process_fails_the_drawing(explored):
    with D.Drawing() as drawing:
        drawing.start(explored, ["distributions"], processes=1)
        (process,) = _drawing_processes()
        os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool, match="distributions"):
            drawing.result()
    assert _drawing_processes() == []


def test_without_processes_the_figures_are_drawn_when_collected(explored, monkeypatch):
    monkeypatch.setattr(D, "forking", lambda: False)
    drawing = D.Drawing().start(explored, DATA)
    assert _drawing_processes() == []
    assert list(drawing.result()) == list(DATA)


class _Interrupted(Exception):
    pass


def test_a_signal_during_the_fork_is_raised_not_lost(explored):
    armed = [True]

    def interrupt_once():
        if armed:
            armed.clear()
            os.kill(os.getpid(), signal.SIGINT)

    def raised(signum, frame):
        raise _Interrupted(signum)

    os.register_at_fork(after_in_parent=interrupt_once)  # lands right after the fork, as a Ctrl-C could
    previous = signal.signal(signal.SIGINT, raised)
    try:
        with pytest.raises(_Interrupted):
            with D.Drawing() as drawing:
                drawing.start(explored, ["missing"], processes=1)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not armed and _drawing_processes() == []
