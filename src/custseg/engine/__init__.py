"""Clustering engines by name: ``get_engine("sklearn")``; see :mod:`custseg.engine.base`.

An engine registers here under the name ``--engine`` spells; a stage receives an
:class:`Engine` (or its name) and never constructs a clustering algorithm itself.
"""

from __future__ import annotations

from collections.abc import Callable

from custseg.errors import CustsegError

from .base import Engine, Fit, Seed
from .sklearn import ALTERNATIVES, SklearnEngine, alternative, gaussian_mixture, single_threaded_kmeans


def _chunked() -> Engine:
    # imported on use: numba's import costs the command line a noticeable share of its start-up
    from .chunked import ChunkedEngine

    return ChunkedEngine()


def _spark() -> Engine:
    # imported on use; the module itself imports PySpark only when a session starts
    from .spark import SparkEngine

    return SparkEngine()


#: Engine factories by name.
ENGINES: dict[str, Callable[[], Engine]] = {"sklearn": SklearnEngine, "chunked": _chunked, "spark": _spark}
DEFAULT = "sklearn"


def get_engine(name: str | Engine = DEFAULT) -> Engine:
    """The engine called ``name`` (an :class:`Engine` is returned as it is).

    Raises
    ------
    CustsegError
        When no engine has that name.
    """
    if isinstance(name, Engine):
        return name
    try:
        factory = ENGINES[name]
    except (KeyError, TypeError):
        raise CustsegError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}.") from None
    return factory()


def __getattr__(name: str):
    if name == "ChunkedEngine":
        from .chunked import ChunkedEngine

        return ChunkedEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_engine() -> Engine:
    """The in-memory scikit-learn engine."""
    return get_engine(DEFAULT)


__all__ = [
    "ALTERNATIVES", "ChunkedEngine", "DEFAULT", "ENGINES", "Engine", "Fit", "Seed", "SklearnEngine", "alternative",
    "default_engine", "gaussian_mixture", "get_engine", "single_threaded_kmeans",
]
