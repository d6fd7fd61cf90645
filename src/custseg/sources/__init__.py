"""Where customers come from: files, in-memory frames, and any other :class:`Source`."""

from __future__ import annotations

import os

import pandas as pd

from .base import BATCH_ROWS, Source
from .files import FileSource
from .frames import FrameSource

__all__ = ["BATCH_ROWS", "FileSource", "FrameSource", "Source", "open_source"]


def open_source(obj: Source | pd.DataFrame | str | os.PathLike, *, name: str | None = None) -> Source:
    """The :class:`Source` for what a caller hands over.

    Parameters
    ----------
    obj : Source, DataFrame, str or path
        A source passes through unchanged (it carries its own label); a DataFrame
        becomes a :class:`FrameSource`; a path a :class:`FileSource`.
    name : str, optional
        How messages call a frame or file (defaults: ``"<DataFrame>"``, the path).

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(obj, Source):
        return obj
    if isinstance(obj, pd.DataFrame):
        return FrameSource(obj, name=name)
    if isinstance(obj, (str, os.PathLike)):
        return FileSource(obj, name=name)
    raise TypeError(f"cannot read customers from a {type(obj).__name__}; give a path, a DataFrame or a Source")
