"""Write files all or nothing: into a temporary file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_beside(path: str | Path, suffix: str = ".part") -> Path:
    """An empty temporary file in ``path``'s folder, with the permissions a new file would get."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def temp_dir_beside(path: str | Path) -> Path:
    """A temporary folder beside ``path``, with the permissions a new folder would get."""
    path = Path(path)
    name = tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(name, 0o777 & ~_umask())
    return Path(name)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``path``, on failure it is removed."""
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
