"""custseg: segment a bank's credit-card customers by how they use their cards.

The stages, each usable on its own::

    portfolio = custseg.load("cards.csv")                    # load.py
    portfolio, quality = custseg.validate(portfolio)         # quality.py
    model = custseg.Segmenter().fit(portfolio.frame)         # features.py + selection.py + segmenter.py
    profiles = custseg.profile(portfolio.frame, model.labels_, model.n_clusters_)   # profiles.py
    names = custseg.name_segments(portfolio.frame, model.labels_)  # naming.py

or all at once: ``custseg.segment("cards.csv")`` then ``custseg.write_outputs(result, "out")``.
"""

from .core import KMeansCore
from .errors import CustsegError, DataError, ModelError
from .load import Portfolio, load
from .naming import name_segments
from .persist import load_model, save_model
from .profiles import Profiles, profile
from .quality import QualityReport, validate
from .run import RunConfig, RunResult, segment, write_outputs
from .score import score
from .segmenter import Segmenter
from .settings import Settings
from .sources import FileSource, FrameSource, Source, open_source

__all__ = [
    "CustsegError", "DataError", "FileSource", "FrameSource", "KMeansCore", "ModelError", "Portfolio", "Profiles",
    "QualityReport", "RunConfig", "RunResult", "Segmenter", "Settings", "Source", "load", "load_model",
    "name_segments", "open_source", "profile", "save_model", "score", "segment", "validate", "write_outputs",
]
