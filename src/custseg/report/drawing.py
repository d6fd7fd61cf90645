"""Figures drawn in other processes while this one goes on (a run writes its files meanwhile).

The drawing processes start from a fork server (:mod:`multiprocessing`'s
``forkserver``): a fresh interpreter that imports matplotlib, seaborn and the figure
code once, and forks one process per group of figures. So a drawing process starts
in milliseconds, never inherits the run's threads (BLAS, OpenMP, Arrow pools), and
the run itself never imports matplotlib. :func:`warm_up` starts the server early (the
command line does it first thing, so its imports use the second core while the
run imports scikit-learn and reads the data).

A :class:`Drawing` is closed on every way out (use it as a context manager): figures
not collected by then are stopped, so no drawing process outlives the run that
started it. An error raised while drawing is raised again by
:meth:`Drawing.result`, the same exception as when the figures are drawn here.

Forking is used on Linux only (macOS frameworks abort in forked children; Windows
has none); elsewhere, or when no process can be started (a process or memory
limit), the figures are drawn in this process when their result is asked for.
This module imports no plotting library itself.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import traceback
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool

#: Imported once by the fork server, so that no drawing process imports them again.
PRELOAD = ["custseg.report.figures", "seaborn"]
#: At most this many processes draw one run's figures (each costs a little; fourteen figures share well in four).
MAX_PROCESSES = 4


def forking() -> bool:
    """Whether figures may be drawn in other processes here (Linux only)."""
    return sys.platform.startswith("linux")


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # before the server starts; a running server keeps its modules
    return context


def warm_up() -> None:
    """Start the fork server now, if it is not running, and return at once (it imports in the background)."""
    if not forking():
        return
    from multiprocessing import forkserver

    _context()
    try:
        forkserver.ensure_running()
    except OSError:  # no process could be started: figures will be drawn in this process
        pass


def processes_for(requested: int | None, n_figures: int) -> int:
    """How many processes share ``n_figures`` figures: ``requested``, else the cores this process may use,
    at most :data:`MAX_PROCESSES`; 1 where forking is not used."""
    if not forking():
        return 1
    if requested is None:
        requested = min(len(os.sched_getaffinity(0)), MAX_PROCESSES)
    return max(1, min(requested, n_figures))


class _Job:
    """One process drawing some figures and sending them back through a pipe."""

    def __init__(self, description, names: Sequence[str]):
        context = _context()
        self.names = list(names)
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_draw_into, args=(send, description, self.names, warnings.filters),
                                        name="custseg-figures", daemon=True)
        try:
            self._process.start()
        except BaseException:
            self._receive.close()
            raise
        finally:
            send.close()
        self._done = False

    def result(self) -> dict:
        try:
            ok, value = self._receive.recv()
        except EOFError:
            self.close()
            raise BrokenProcessPool(f"a process drawing the figures {', '.join(self.names)} ended without them "
                                    f"(exit code {self._process.exitcode}); no figure was written") from None
        self.close()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        self._receive.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _draw_into(send, description, names: list[str], filters) -> None:
    """In a drawing process: draw ``names`` with the parent's warning filters and send them (or the error) back."""
    from .figures import _render_figures

    warnings.filters[:] = filters
    try:
        message = (True, _render_figures(description, names))
    except BaseException as exc:
        exc.add_note(f"(raised while drawing the figures {', '.join(names)} in process {os.getpid()}:\n"
                     f"{''.join(traceback.format_exception(exc))})")
        message = (False, exc if _picklable(exc) else RuntimeError(str(exc) + "\n" + "\n".join(exc.__notes__)))
    send.send(message)
    send.close()


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


class Drawing:
    """Figures being drawn in other processes: :meth:`start` some, :meth:`result` collects them all.

    ``names`` lists the figures started, in the order started; ``sources`` maps each to
    the description (or object with an ``exploration``) it is drawn from.
    """

    def __init__(self):
        self._jobs: list[_Job] = []
        self._here: list[tuple[object, list[str]]] = []
        self.names: list[str] = []
        self.sources: dict[str, object] = {}

    def start(self, description, names: Iterable[str], *, processes: int | None = None) -> Drawing:
        """Start drawing the figures ``names`` of ``description`` (unknown names and figures already
        started are skipped), shared among ``processes`` processes (see :func:`processes_for`)."""
        from . import catalogue

        wanted = [n for n in catalogue.FIGURE_ORDER if n in set(names) and n not in self.sources]
        for share in catalogue.shares(wanted, processes_for(processes, len(wanted)) if forking() else 1):
            self.names += share
            self.sources.update(dict.fromkeys(share, description))
            if not forking():
                self._here.append((description, share))
                continue
            try:
                self._jobs.append(_Job(description, share))
            except OSError:  # no process could be started (a process or memory limit): drawn here instead
                self._here.append((description, share))
        return self

    def result(self) -> dict:
        """Every started figure that had data (name -> :class:`~custseg.report.figures.Rendered`), in report
        order; waits for the drawing processes. Raises what drawing raised (after stopping the others)."""
        from . import catalogue

        out: dict = {}
        try:
            for description, share in self._here:
                from .figures import _render_figures

                out.update(_render_figures(description, share))
            for job in self._jobs:
                out.update(job.result())
        finally:
            self.close()
        self._here, self._jobs = [], []
        return {name: out[name] for name in catalogue.FIGURE_ORDER if name in out}

    def close(self) -> None:
        """Stop every drawing process not collected yet (and wait for it to end)."""
        for job in self._jobs:
            job.close()

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
