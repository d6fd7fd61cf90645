"""Clustering engines by name: ``get_engine("sklearn")``; see :mod:`custseg.engine.base`.

An engine registers here under the name ``--engine`` spells; a stage receives an
:class:`Engine` (or its name) and never constructs a clustering algorithm itself.
"""

from __future__ import annotations

from collections.abc import Callable

from custseg.errors import CustsegError

from .base import Engine, Fit, Seed

#: Names of :mod:`custseg.engine.sklearn`, imported on first use (scoring starts without scikit-learn).
_SKLEARN_NAMES = ("ALTERNATIVES", "SklearnEngine", "alternative", "gaussian_mixture", "single_threaded_kmeans")


def _sklearn() -> Engine:
    from .sklearn import SklearnEngine

    return SklearnEngine()


def _chunked() -> Engine:
    # imported on use: numba's import costs the command line a noticeable share of its start-up
    from .chunked import ChunkedEngine

    return ChunkedEngine()


def _spark() -> Engine:
    # imported on use; the module itself imports PySpark only when a session starts
    from .spark import SparkEngine

    return SparkEngine()


#: Engine factories by name.
ENGINES: dict[str, Callable[[], Engine]] = {"sklearn": _sklearn, "chunked": _chunked, "spark": _spark}
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
    check_engine(name)
    return ENGINES[name]()


def check_engine(name: str | Engine) -> None:
    """Refuse (``CustsegError``) a name no engine has, without constructing the engine."""
    if isinstance(name, Engine):
        return
    try:
        ENGINES[name]
    except (KeyError, TypeError):
        raise CustsegError(f"unknown engine {name!r}; choose one of {', '.join(sorted(ENGINES))}.") from None


def __getattr__(name: str):
    if name == "ChunkedEngine":
        from .chunked import ChunkedEngine

        return ChunkedEngine
    if name in _SKLEARN_NAMES:
        from . import sklearn

        return getattr(sklearn, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_engine() -> Engine:
    """The in-memory scikit-learn engine."""
    return get_engine(DEFAULT)


__all__ = [
    "ALTERNATIVES", "ChunkedEngine", "DEFAULT", "ENGINES", "Engine", "Fit", "Seed", "SklearnEngine", "alternative",
    "check_engine", "default_engine", "gaussian_mixture", "get_engine", "single_threaded_kmeans",
]
