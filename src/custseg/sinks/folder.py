"""The folder sink: a run's files (CSV, JSON, model, report) written all or nothing.

Files are written into a temporary sibling folder which replaces the target only
when every file is complete, so a failure or an interruption leaves the target as
it was. What the sink refuses, and why:

- a folder that is not empty and was not written by custseg (it holds no
  :data:`MARKER` file), even with ``force``: ``--force`` replaces earlier outputs,
  never a user's files; nor an earlier run's folder that holds files the marker
  does not list (added by hand since);
- the current folder or one that holds it (``--out .``, ``--out ..``);
- a folder that holds the input, a path that is a file, a symbolic link (stated:
  links are refused, not followed, so a run never replaces a folder elsewhere);
- a target that changed while the run computed: another run wrote it first, so
  this one refuses instead of silently replacing the other's results.

Staging folders left by killed runs (their process is gone) are swept before a run
writes beside them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..atomic import temp_dir_beside
from ..errors import CustsegError
from .base import Sink

#: Written into every output folder; ``--force`` replaces only folders that hold it.
MARKER = ".custseg-output"
#: Written into a staging folder with the writing process's id, so a sweep knows it is abandoned.
STAGING = ".custseg-staging"
#: Signals held back while an earlier run's folder is swapped for the new one.
HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class FolderSink(Sink):
    """Write a run's outputs into a folder.

    Parameters
    ----------
    out : path
        The folder. It must be absent or empty, or (with ``force``) a folder an earlier
        custseg run wrote.
    force : bool
        Replace an earlier run's outputs.
    extra_tables : dict of str to DataFrame, optional
        More CSV files to write beside the outputs (the demo's portfolio and truth).
    expected_bytes : int
        Free space the outputs need, checked before the run computes anything.
    """

    def __init__(self, out: str | Path, *, force: bool = False, extra_tables: dict[str, pd.DataFrame] | None = None,
                 expected_bytes: int = 0):
        self.out = Path(out)
        self.force = force
        self.extra_tables = extra_tables or {}
        self.expected_bytes = expected_bytes
        self._checked = False
        self._state: tuple | None = None  # the target as check() found it (None: absent)

    def check(self, source_path=None) -> None:
        check_out_dir(self.out, self.force, source_path)
        check_writable(self.out.absolute().parent, self.expected_bytes, what=f"the output folder {self.out}")
        self._state = folder_state(self.out)
        self._checked = True

    def write(self, result) -> Path:
        from ..run import write_run_files

        def fill(staging: Path) -> None:
            write_run_files(result, staging)
            for name, table in self.extra_tables.items():
                table.to_csv(staging / name, index=False, lineterminator="\n")

        return self.write_files(fill, result.portfolio.path)

    def write_files(self, fill: Callable[[Path], None], source_path=None) -> Path:
        """Write whatever ``fill`` puts into a staging folder, with this sink's checks and swap."""
        if not self._checked:
            self.check(source_path)
        return write_folder(self.out, fill, expected_state=self._state)


def write_folder(out: Path, fill: Callable[[Path], None], *, expected_state: tuple | None | str = "unchecked") -> Path:
    """Let ``fill`` write into a staging folder beside ``out``, then swap it in; on failure remove it.

    ``expected_state`` is :func:`folder_state` of ``out`` when the run started; if the
    folder changed since (another run finished first), nothing is swapped in.
    """
    out = Path(os.path.abspath(out))
    if expected_state == "unchecked":
        expected_state = folder_state(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sweep_abandoned(out)
        staging = temp_dir_beside(out)
    except OSError as exc:
        raise _write_error(out, exc) from None
    try:
        (staging / STAGING).write_text(str(os.getpid()))
        fill(staging)
        (staging / STAGING).unlink()
        written = sorted(p.name for p in staging.iterdir())
        (staging / MARKER).write_text(json.dumps({"written_by": "custseg", "files": written}) + "\n")
        with _locked(out.parent):
            if folder_state(out) != expected_state:
                raise CustsegError(
                    f"{out} changed while this run was computing (another custseg run wrote it first); "
                    "its contents were left as they are and this run's outputs were not written. "
                    "Run again, into another folder or with --force.")
            _swap_in(staging, out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _write_error(out, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def check_out_dir(out: Path, force: bool, source=None) -> None:
    """Refuse an output folder that is a link or a file, holds the input, or holds files custseg did not write."""
    out = Path(out)
    if out.is_symlink():
        raise CustsegError(f"{out} is a symbolic link; custseg does not write through links (it would replace "
                           f"the folder it points to). Give the real folder, {os.path.realpath(out)}, or another path.")
    resolved = out.resolve()
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was removed; nothing to protect
        cwd = None
    if cwd is not None and (resolved == cwd or resolved in cwd.parents):
        raise CustsegError(f"{out} is the current folder or holds it; a run replaces its output folder whole, "
                           "which would pull the folder you are working in from under you. Give a new folder "
                           f"for the outputs, such as {os.path.join(out, 'custseg-out')}.")
    if isinstance(source, (str, Path)):
        src = Path(source).resolve()
        if resolved == src or resolved in src.parents:
            raise CustsegError(f"{source} is inside the output folder {out}, which the run replaces; "
                               "write the outputs to another folder.")
    if out.exists() and not out.is_dir():
        raise CustsegError(f"{out} exists and is a file; give a folder for the outputs.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise CustsegError(
                f"{out} is not empty and was not written by custseg, so it is left alone even with --force "
                "(--force only replaces an earlier custseg run's outputs); choose an empty or new folder.")
        if not force:
            raise CustsegError(f"{out} is not empty; choose another folder or pass --force to replace "
                               "the earlier run's outputs.")
        foreign = _not_written_by_custseg(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise CustsegError(f"{out} holds an earlier custseg run's outputs but also {shown}, which that run "
                               "did not write; --force would delete them, so nothing was replaced. Move them "
                               "out of the folder, or choose another folder.")


def _not_written_by_custseg(out: Path) -> list[str]:
    """Entries of an earlier run's folder that its marker does not list (added by hand since)."""
    try:
        listed = json.loads((out / MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        listed = None
    if not isinstance(listed, list):
        return []  # a marker from before markers listed files: the folder is custseg's as a whole
    return sorted(p.name for p in out.iterdir() if p.name not in listed and p.name != MARKER)


def check_writable(folder: Path, expected_bytes: int = 0, *, what: str) -> None:
    """Refuse before computing when ``folder`` (or its nearest existing parent) is not writable or too full."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CustsegError(f"{what} cannot be created: {existing} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CustsegError(f"{what} cannot be written: {existing} is not writable by this user. "
                           "Choose a folder you can write to.")
    free = shutil.disk_usage(existing).free
    if expected_bytes and free < expected_bytes:
        raise CustsegError(f"{what} needs about {expected_bytes / 2**20:,.0f} MB but {existing} has only "
                           f"{free / 2**20:,.0f} MB free. Free some space or write elsewhere.")


def folder_state(out: Path) -> tuple | None:
    """What the target looks like now: ``None`` when absent, else its identity and its marker's."""
    try:
        st = os.stat(out)
    except FileNotFoundError:
        return None
    try:
        marker = os.stat(Path(out) / MARKER)
        return st.st_ino, marker.st_ino, marker.st_mtime_ns, tuple(sorted(os.listdir(out)))
    except (FileNotFoundError, NotADirectoryError):
        return st.st_ino, None, None, None


def sweep_abandoned(out: Path) -> list[Path]:
    """Remove staging folders beside ``out`` whose writing process no longer exists."""
    removed = []
    for candidate in out.parent.glob(f".{out.name}.*"):
        pid_file = candidate / STAGING
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _locked(folder: Path):
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_failure(exc: OSError) -> str:
    """Why writing failed, in words a user acts on."""
    return {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.EDQUOT: "the disk quota is exceeded"}.get(exc.errno, exc.strerror or str(exc))


def _write_error(out: Path, exc: OSError) -> CustsegError:
    return CustsegError(f"Could not write the outputs to {out}: {write_failure(exc)} ({exc.filename or out}). "
                        "Nothing was written; free space or choose another folder.")


def _swap_in(staging: Path, out: Path) -> None:
    if out.exists():
        old = temp_dir_beside(out)
        # a signal between the two renames would leave no folder at ``out``: hold signals until both are done
        held = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        try:
            os.replace(out, old / "previous")
            os.replace(staging, out)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


def check_output_file(output: str | Path, *, force: bool, inputs=(), what: str = "output",
                      expected_bytes: int = 0) -> Path:
    """Refuse an output file that would overwrite an input, exists (unless ``force``), is a link, or cannot
    be written (or not in ``expected_bytes`` of free space)."""
    output = Path(output)
    for given in inputs:
        if given is not None and Path(given).exists() and output.exists() and output.resolve() == Path(given).resolve():
            raise CustsegError(f"{output} is also an input of this command; write the {what} to another file "
                               "(inputs are never overwritten).")
    if output.is_symlink():
        raise CustsegError(f"{output} is a symbolic link; custseg does not write through links (it would replace "
                           f"the link, not {os.path.realpath(output)}). Give the real path or another name.")
    if output.is_dir():
        raise CustsegError(f"{output} is a folder; give a file name for the {what}.")
    if output.exists() and not force:
        raise CustsegError(f"{output} exists; pass --force to overwrite it.")
    parent = output.absolute().parent
    if not parent.is_dir():
        raise CustsegError(f"The folder {parent} for the {what} {output} does not exist; create it first "
                           "or write elsewhere.")
    check_writable(parent, expected_bytes, what=f"the {what} {output}")
    return output
