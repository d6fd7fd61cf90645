"""Figures drawn in other processes while this one goes on (a run writes its files meanwhile).

Each group of figures is drawn in a forked process (matplotlib is not thread-safe)
that leaves the PNG and SVG bytes in an in-memory file for this one; which process draws a figure
does not change its bytes. A fork starts in milliseconds and needs no pickling of
the description, and unlike a spawned or fork-server process it never imports the
caller's main module again, so a script that calls :func:`custseg.run.run` needs no
``if __name__ == "__main__"`` guard.

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
import signal
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from ..engine.base import available_cores

#: Signals held back while a drawing process is forked (and set to their default in it).
HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
#: At most this many processes draw one run's figures (each costs a little; fourteen figures share well in four).
MAX_PROCESSES = 4


@dataclass(frozen=True)
class Rendered:
    """One figure as PNG and SVG bytes (what a drawing process sends back)."""

    png: bytes
    svg: bytes


def forking() -> bool:
    """Whether figures may be drawn in other processes here (Linux only)."""
    return sys.platform.startswith("linux")


def processes_for(requested: int | None, n_figures: int) -> int:
    """How many processes share ``n_figures`` figures: ``requested``, else the cores this process may use,
    at most :data:`MAX_PROCESSES`; 1 where forking is not used."""
    if not forking():
        return 1
    if requested is None:
        requested = min(available_cores(), MAX_PROCESSES)
    return max(1, min(requested, n_figures))


class _Job:
    """One forked process drawing some figures into a memory file it leaves for this process to read.

    The figures go through an anonymous in-memory file (``memfd_create``), not a pipe,
    so a process that has drawn its figures ends at once instead of waiting for this
    one to read them.
    """

    def __init__(self, description, names: Sequence[str]):
        self.names = list(names)
        self._file = open(os.memfd_create("custseg-figures"), "w+b")
        self._process = multiprocessing.get_context("fork").Process(
            target=_draw_into, args=(self._file, description, self.names), name="custseg-figures", daemon=True)
        try:
            self._process.start()
        except BaseException:
            self._file.close()
            raise
        self._done = False

    def result(self) -> dict:
        self._process.join()
        try:
            if self._process.exitcode != 0:
                raise EOFError
            self._file.seek(0)
            ok, value = pickle.load(self._file)
        except (EOFError, pickle.UnpicklingError):
            raise BrokenProcessPool(f"a process drawing the figures {', '.join(self.names)} ended without them "
                                    f"(exit code {self._process.exitcode}); no figure was written") from None
        finally:
            self.close()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._file.close()


def _draw_into(file, description, names: list[str]) -> None:
    """In a drawing process: draw ``names`` and write them (or the error) into ``file``."""
    for sig in HELD_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)  # stopped by its drawing (or Ctrl-C), quietly: the run reports
    from .figures import _render_figures

    try:
        message = (True, _render_figures(description, names))
    except BaseException as exc:
        exc.add_note(f"(raised while drawing the figures {', '.join(names)} in process {os.getpid()}:\n"
                     f"{''.join(traceback.format_exception(exc))})")
        message = (False, exc if _picklable(exc) else RuntimeError(str(exc) + "\n" + "\n".join(exc.__notes__)))
    pickle.dump(message, file, protocol=pickle.HIGHEST_PROTOCOL)
    file.flush()


@contextmanager
def _signals_held():
    """Hold SIGINT, SIGTERM and SIGHUP back, and raise them again on leaving.

    A handler that runs during a fork runs inside an at-fork hook, which ignores its
    exception: a Ctrl-C or kill would be lost. Meanwhile the signals are only recorded
    (blocking them would not do: another thread may take a signal for the process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can be set from the main thread only; handlers run there too
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


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
        for share in catalogue.shares(wanted, processes_for(processes, len(wanted))):
            self.names += share
            self.sources.update(dict.fromkeys(share, description))
            if not forking():
                self._here.append((description, share))
                continue
            with _signals_held():
                try:
                    self._jobs.append(_Job(description, share))
                except (OSError, AssertionError):  # no process could be started (a process or memory limit,
                    self._here.append((description, share))  # or this is a daemonic process): drawn here
        return self

    def result(self) -> dict:
        """Every started figure that had data (name -> :class:`Rendered`), in report
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
