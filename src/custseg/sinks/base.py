"""Where a finished run goes: a folder of files today, a store of runs next.

A :class:`Sink` writes a whole :class:`~custseg.run.RunResult` or nothing: a failure
or an interruption part-way leaves no partial run behind.
"""

from __future__ import annotations

import abc


class Sink(abc.ABC):
    """Write one run, all or nothing."""

    def check(self, result_source=None) -> None:
        """Refuse early (before any computation) what :meth:`write` would refuse; default: nothing."""

    @abc.abstractmethod
    def write(self, result) -> object:
        """Write ``result`` (a :class:`~custseg.run.RunResult`); return where it went."""
