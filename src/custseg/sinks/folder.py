"""The folder sink: a run's files (CSV, JSON, model, report) written all or nothing.

Files are written into a temporary sibling folder which replaces the target only
when every file is complete, so a failure or an interruption leaves the target as
it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..atomic import temp_dir_beside
from ..errors import CustsegError
from .base import Sink


class FolderSink(Sink):
    """Write a run's outputs into a folder.

    Parameters
    ----------
    out : path
        The folder. It must be absent or empty unless ``force``.
    force : bool
        Replace the contents of a non-empty folder.
    extra_tables : dict of str to DataFrame, optional
        More CSV files to write beside the outputs (the demo's portfolio and truth).
    """

    def __init__(self, out: str | Path, *, force: bool = False, extra_tables: dict[str, pd.DataFrame] | None = None):
        self.out = Path(out)
        self.force = force
        self.extra_tables = extra_tables or {}

    def check(self, source_path=None) -> None:
        check_out_dir(self.out, self.force, source_path)

    def write(self, result) -> Path:
        from ..run import write_run_files

        self.check(result.portfolio.path)
        return write_folder(self.out, lambda staging: self._fill(staging, result, write_run_files))

    def _fill(self, staging: Path, result, write_run_files) -> None:
        write_run_files(result, staging)
        for name, table in self.extra_tables.items():
            table.to_csv(staging / name, index=False, lineterminator="\n")


def write_folder(out: Path, fill: Callable[[Path], None]) -> Path:
    """Let ``fill`` write into a staging folder beside ``out``, then swap it in; on failure remove it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir_beside(out)
    try:
        fill(staging)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def check_out_dir(out: Path, force: bool, source=None) -> None:
    """Refuse an output folder that is a file, is not empty (unless ``force``), or holds the input."""
    out = Path(out)
    if isinstance(source, (str, Path)) and out.resolve() in Path(source).resolve().parents:
        raise CustsegError(f"{source} is inside the output folder {out}, which the run replaces; "
                           "write the outputs to another folder.")
    if out.exists() and not out.is_dir():
        raise CustsegError(f"{out} exists and is a file; give a folder for the outputs.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CustsegError(f"{out} is not empty; choose another folder or pass --force to replace its contents.")


def _swap_in(staging: Path, out: Path) -> None:
    if out.exists():
        old = temp_dir_beside(out)
        os.replace(out, old / "previous")
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)
