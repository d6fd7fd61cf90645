"""Every option of a run, with its default, in one place.

:class:`Settings` is what decides a run's result. The command line builds its flags
from these fields (:func:`cli_options`), the library's estimators take their defaults
from :data:`DEFAULTS`, and the report's method section lists :meth:`Settings.to_dict`.
A new option is one new field here; nothing else repeats its default.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from .errors import CustsegError


#: Bootstrap refits per algorithm in ``custseg compare-models`` (its ``--bootstrap``).
COMPARE_BOOTSTRAP = 20


def _option(flag: str, help: str, **click_kwargs) -> dict:
    return {"flag": flag, "help": help, "click": click_kwargs}


@dataclass(frozen=True)
class Settings:
    """The options that decide a segmentation run.

    Parameters
    ----------
    k : int or "auto"
        Number of segments, or ``"auto"`` to choose it from the evidence.
    k_min, k_max : int
        The range of k evaluated for the evidence.
    features : str or list of str
        ``"behaviour"``, ``"notebook"`` or a list of feature names (:mod:`custseg.features`).
    seed : int
        Seed for every random step; derived seeds come from ``numpy.random.SeedSequence``.
    n_init : int
        k-means++ restarts per fit; the lowest inertia is kept.
    n_boot : int
        Bootstrap refits for each segment's stability.
    silhouette_max_n : int
        Above this many customers, silhouettes are estimated on a sample of this size.
    n_refs : int
        Reference data sets for the gap statistic.
    tsne : bool
        Also compute a t-SNE map of the scatter sample (:func:`custseg.run.neighbour_map`).
    evidence : bool or None
        Compute the evidence for every k; ``None``: for ``k="auto"`` only.
    engine : str
        The clustering engine (:func:`custseg.engine.get_engine`). ``"spark"`` runs the
        whole job on a Spark DataFrame (:mod:`custseg.spark_run`).
    spark_master : str
        The Spark master URL of a ``"spark"`` run (``local[*]``, ``spark://host:7077``,
        ``yarn``, ``k8s://...``); a Spark session already running in the process is used as it is.
    reference : str or None
        A model file (``model.json``) of an earlier run: the new segments are matched
        to its segments (:mod:`custseg.identity`) and keep their numbers, names and
        colours. ``None``: segments are numbered by size.
    sample_size : int
        Above this many customers a run is a large run (:mod:`custseg.large`): k is
        chosen and stability tested on a uniform sample of this many customers, then
        the segments are fitted on everyone from the sample's centres.
    choice_boot : int
        Bootstrap refits per candidate k for the stability the choice of k rests on.
    choice_max_n : int
        Customers drawn in each of those refits, at most (all of them below this).
    """

    k: int | str = field(default="auto", metadata=_option(
        "--k", "Number of segments, or 'auto' to choose it from the evidence."))
    k_min: int = field(default=2, metadata=_option("--k-min", "Smallest k evaluated.", min=2))
    k_max: int = field(default=10, metadata=_option("--k-max", "Largest k evaluated.", min=2))
    features: str | list[str] = field(default="behaviour", metadata=_option(
        "--features", "Feature set ('behaviour' or 'notebook') or a comma-separated list of feature names."))
    seed: int = field(default=0, metadata=_option("--seed", "Seed for every random step.", min=0, max=2**32 - 1))
    n_init: int = field(default=10, metadata=_option("--n-init", "k-means++ restarts per k.", min=1))
    n_boot: int = field(default=50, metadata=_option(
        "--bootstrap", "Bootstrap refits for the stability of each segment.", min=2))
    silhouette_max_n: int = field(default=10_000, metadata=_option(
        "--silhouette-sample", "Above this many customers, silhouettes are computed on a sample of this size.",
        min=100))
    n_refs: int = field(default=10, metadata=_option(
        "--gap-refs", "Reference data sets for the gap statistic.", min=2))
    tsne: bool = field(default=False, metadata=_option(
        "--tsne/--no-tsne", "Also draw a t-SNE map of a sample of customers (neighbourhoods, not distances; "
        "adds tens of seconds)."))
    evidence: bool | None = field(default=None, metadata=_option(
        "--evidence/--no-evidence", "Compute the evidence for every k in the range (default: only when k is "
        "'auto'; with a fixed k the range is skipped unless asked for)."))
    engine: str = field(default="sklearn", metadata=_option(
        "--engine", "Clustering engine: 'sklearn' (in memory), 'chunked' (multi-threaded, for millions "
        "of customers) or 'spark' (DATA is Parquet or --table a table in Spark's catalog; see docs/spark.md)."))
    spark_master: str = field(default="local[*]", metadata=_option(
        "--spark-master", "Spark master URL for --engine spark: local[*] (every core here), spark://HOST:7077, "
        "yarn or k8s://URL."))
    reference: str | None = field(default=None, metadata=_option(
        "--reference", "Model file (model.json) of an earlier run: matched segments keep its numbers, names and "
        "colours; new and vanished segments are reported.", path=True))
    sample_size: int = field(default=50_000, metadata=_option(
        "--sample-size", "Above this many customers, k is chosen and stability tested on a uniform sample of "
        "this size; the segments are then fitted on everyone.", min=1000))
    choice_boot: int = field(default=20, metadata=_option(
        "--choice-bootstrap", "Bootstrap refits per candidate k for the stability the choice of k rests on.", min=2))
    choice_max_n: int = field(default=10_000, metadata=_option(
        "--choice-sample", "Customers drawn in each of those refits, at most.", min=100))

    def __post_init__(self):
        if isinstance(self.reference, os.PathLike):
            object.__setattr__(self, "reference", os.fspath(self.reference))
        check(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, in field order (the report's method section and ``description.json``).

        ``reference`` is left out when unset and ``spark_master`` unless the engine is
        Spark, so other runs describe themselves as before.
        """
        return {k: v for k, v in asdict(self).items()
                if not (k == "reference" and v is None) and not (k == "spark_master" and self.engine != "spark")}

    def k_values(self) -> range:
        return range(self.k_min, self.k_max + 1)

    @property
    def fixed_k(self) -> int | None:
        return None if self.k == "auto" else int(self.k)

    @property
    def largest_k(self) -> int:
        """The largest k any fit of this run uses (the range only when the evidence is computed)."""
        if self.fixed_k is not None and not self.evidence:
            return self.fixed_k
        return max(self.k_max, self.fixed_k or 0)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def check(s: Settings) -> None:
    """Refuse settings no run can honour, naming the option."""
    if s.k != "auto" and not (isinstance(s.k, int) and not isinstance(s.k, bool) and s.k >= 2):
        raise CustsegError(f"k must be 'auto' or a whole number of segments, 2 or more (got {s.k!r}).")
    for name in ("k_min", "k_max", "n_init", "n_boot", "silhouette_max_n", "n_refs", "seed",
                 "sample_size", "choice_boot", "choice_max_n"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise CustsegError(f"{name} must be a whole number (got {value!r}).")
    if s.k_min < 2 or s.k_min > s.k_max:
        raise CustsegError(f"The k range must satisfy 2 <= k_min <= k_max (got {s.k_min}..{s.k_max}).")
    if s.k == "auto" and s.evidence is False:
        raise CustsegError("k = 'auto' chooses k from the evidence, so the evidence cannot be switched off; "
                           "give a fixed --k or drop --no-evidence.")
    if s.n_init < 1 or s.n_boot < 2 or s.n_refs < 2 or s.choice_boot < 2:
        raise CustsegError("n_init must be at least 1, and the bootstraps and gap references at least 2.")
    if s.sample_size < 1000:
        raise CustsegError(f"sample_size must be at least 1000 customers (got {s.sample_size}); choosing k "
                           "and testing stability on fewer is not worth reporting.")
    _check_features(s.features)
    from .engine import check_engine

    check_engine(s.engine)
    if not (isinstance(s.spark_master, str) and s.spark_master.strip()):
        raise CustsegError(f"spark_master must be a Spark master URL such as local[*] (got {s.spark_master!r}).")
    if s.reference is not None and not (isinstance(s.reference, str) and s.reference):
        raise CustsegError(f"reference must be the path of a model file (got {s.reference!r}).")
    if not 0 <= s.seed < 2**32:
        raise CustsegError(f"The seed must be a whole number from 0 to {2**32 - 1} (got {s.seed}).")


def default(name: str):
    """The default of one setting (for estimator and function signatures)."""
    for f in fields(Settings):
        if f.name == name:
            return f.default if f.default is not MISSING else f.default_factory()
    raise KeyError(name)


def _check_features(features) -> None:
    from .feature_catalog import resolve_features

    if isinstance(features, (list, tuple)):
        names = [str(f).strip() for f in features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise CustsegError(f"The feature list names {', '.join(repeated)} more than once; give each feature once.")
        if len(names) < 2:
            raise CustsegError(f"The feature list has {len(names)} feature{'' if len(names) == 1 else 's'} "
                               f"({', '.join(names) or 'none'}); "
                               "segmenting needs at least two (see custseg run --help for the names).")
    resolve_features(features)


def option_fields():
    """The settings the command line exposes, with their flag, help and bounds."""
    return [f for f in fields(Settings) if "flag" in f.metadata]


DEFAULTS = Settings()
