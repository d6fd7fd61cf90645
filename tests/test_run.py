"""A run draws its figures while it computes and writes, with the outputs of drawing them at the end, and
leaves no drawing process and no folder behind when it fails."""

from __future__ import annotations

import errno
import multiprocessing

import pytest

import custseg.run as runs
from custseg.errors import CustsegError
from custseg.report.catalogue import FIGURE_ORDER, SECTIONS
from custseg.report.drawing import Drawing, forking
from custseg.settings import Settings
from custseg.sinks.folder import FolderSink

from helpers import tiny_portfolio

FAST = Settings(k=3, k_max=3, n_init=2, n_boot=3, n_refs=2)


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_run_draws_the_data_figures_early_and_writes_what_drawing_at_the_end_writes(tmp_path, monkeypatch):
    frame = tiny_portfolio(90)
    started = []
    start = Drawing.start

    def recorded(self, description, names, **kwargs):
        started.append((description, list(names)))
        return start(self, description, names, **kwargs)

    monkeypatch.setattr(Drawing, "start", recorded)
    result = runs.run(frame, FolderSink(tmp_path / "run"), FAST)
    (early, early_names), (late, late_names) = started
    assert early_names == list(SECTIONS["data"]) and early.exploration is result.exploration
    assert set(late_names) == set(FIGURE_ORDER) - set(SECTIONS["data"])
    monkeypatch.setattr(Drawing, "start", start)
    runs.write_outputs(runs.segment(frame, FAST), tmp_path / "at_the_end")
    assert _files(tmp_path / "run") == _files(tmp_path / "at_the_end")
    assert {f"figures/{n}.png" for n in SECTIONS["data"]} <= set(_files(tmp_path / "run"))
    assert result.drawing is None


def test_figures_drawn_from_other_data_are_drawn_again(tmp_path):
    frame = tiny_portfolio(90)
    result = runs.segment(frame, FAST)
    other = runs.segment(tiny_portfolio(90, seed=1), FAST)
    with Drawing() as stale:
        result.drawing = stale.start(other, SECTIONS["data"], processes=1)
        runs.write_outputs(result, tmp_path / "stale")
    result.drawing = None
    runs.write_outputs(result, tmp_path / "fresh")
    assert _files(tmp_path / "stale") == _files(tmp_path / "fresh")


@pytest.mark.skipif(not forking(), reason="figures are drawn in other processes on Linux only")
def test_a_run_failing_while_figures_are_drawn_leaves_no_process_and_no_folder(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        assert [p for p in multiprocessing.active_children() if p.name == "custseg-figures"]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "save_model", disk_full)
    with pytest.raises(CustsegError, match="the disk is full"):
        runs.run(tiny_portfolio(60), FolderSink(tmp_path / "out"), FAST)
    assert [p for p in multiprocessing.active_children() if p.name == "custseg-figures"] == []
    assert list(tmp_path.iterdir()) == []


def test_a_run_draws_its_figures_without_importing_matplotlib_here(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, custseg.run as r\n"
            "from helpers import tiny_portfolio\n"
            "from custseg.settings import Settings\n"
            "from custseg.sinks.folder import FolderSink\n"
            f"r.run(tiny_portfolio(60), FolderSink({str(tmp_path / 'out')!r}), "
            "Settings(k=3, k_max=3, n_init=2, n_boot=3, n_refs=2))\n"
            "print(sorted(m for m in ('matplotlib', 'seaborn') if m in sys.modules))\n")
    src = Path(__file__).resolve().parents[1] / "src"
    env = {"PYTHONPATH": f"{src}:{Path(__file__).parent}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    expected = "[]" if forking() else "['matplotlib', 'seaborn']"
    assert out.stdout.strip() == expected
    assert (tmp_path / "out" / "figures" / "distributions.png").is_file()
