"""custseg: segment a bank's credit-card customers by how they use their cards.

The stages, each usable on its own::

    portfolio = custseg.load("cards.csv")                    # load.py
    portfolio, quality = custseg.validate(portfolio)         # quality.py
    model = custseg.Segmenter().fit(portfolio.frame)         # features.py + selection.py + segmenter.py
    profiles = custseg.profile(portfolio.frame, model.labels_, model.n_clusters_)   # profiles.py
    names = custseg.name_segments(portfolio.frame, model.labels_)  # naming.py

or all at once: ``custseg.segment("cards.csv")`` then ``custseg.write_outputs(result, "out")``.
"""

from importlib import import_module
from importlib.util import find_spec

from .errors import CustsegError, DataError, ModelError
from .load import Portfolio, load
from .persist import load_model, save_model
from .quality import QualityReport, validate
from .score import score
from .sources import FileSource, FrameSource, Source, open_source

#: Names imported on first use (PEP 562): scikit-learn and SciPy load only when a stage needs them,
#: so ``custseg predict`` starts without them.
_LAZY = {
    "KMeansCore": "core", "name_segments": "naming", "Profiles": "profiles", "profile": "profiles",
    "RunConfig": "run", "RunResult": "run", "segment": "run", "write_outputs": "run", "Segmenter": "segmenter",
    "Settings": "settings",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    elif not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        value = import_module(f".{name}", __name__)  # ``custseg.run`` after ``import custseg``, as before
    else:
        raise AttributeError(f"module 'custseg' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CustsegError", "DataError", "FileSource", "FrameSource", "KMeansCore", "ModelError", "Portfolio", "Profiles",
    "QualityReport", "RunConfig", "RunResult", "Segmenter", "Settings", "Source", "load", "load_model",
    "name_segments", "open_source", "profile", "save_model", "score", "segment", "validate", "write_outputs",
]
