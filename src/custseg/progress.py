"""Progress reporting: a bar on a terminal, silence otherwise.

Stages accept ``progress=None`` or any object with ``update(n)``; the CLI passes a
bar made here, the library stays silent by default.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, Protocol


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        return None

    def set_description(self, desc: str) -> None:
        return None


def tick(progress: Progress | None, n: int = 1) -> None:
    """Advance ``progress`` by ``n`` when there is one."""
    if progress is not None:
        progress.update(n)


def describe(progress: Progress | None, text: str) -> None:
    """Change the label of ``progress`` when it supports labels."""
    set_description = getattr(progress, "set_description", None)
    if set_description is not None:
        set_description(text)


@contextmanager
def bar(total: int, desc: str, *, quiet: bool = False, stream=None) -> Iterator[Progress]:
    """A tqdm bar on a TTY (stderr); a silent object when quiet or not a terminal."""
    stream = stream if stream is not None else sys.stderr
    if quiet or not getattr(stream, "isatty", lambda: False)():
        yield _Silent()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, file=stream, leave=False, dynamic_ncols=True) as t:
        yield t
