"""A whole segmentation run: load → validate → fit → stability → profile → name → describe → write.

:func:`segment` computes everything as plain data (a :class:`RunResult`);
:func:`write_outputs` renders it into a folder atomically. The CLI's ``run`` is the
two in sequence; a notebook can call them, or the stages, one by one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .atomic import temp_dir_beside
from .errors import CustsegError
from .features import required_columns
from .jsonio import jsonable, write_json
from .load import Portfolio, load
from .naming import SegmentName, name_segments
from .persist import fingerprint, save_model, versions
from .profiles import Profiles, profile
from .progress import Progress
from .quality import QualityReport, validate
from .score import assignments
from .segmenter import Segmenter, needed_rows, single_threaded_kmeans
from .stability import Stability, bootstrap_stability

MODEL_FILE = "model.json"
SCATTER_POINTS = 3000


@dataclass
class RunConfig:
    """Everything that decides a run's result (the CLI's flags map onto these)."""

    k: int | str = "auto"
    k_min: int = 2
    k_max: int = 10
    features: str | list[str] = "behaviour"
    seed: int = 0
    n_init: int = 10
    n_boot: int = 50
    silhouette_max_n: int = 20_000
    n_refs: int = 10

    def segmenter(self) -> Segmenter:
        return Segmenter(n_clusters=self.k, k_min=self.k_min, k_max=self.k_max, features=self.features,
                         n_init=self.n_init, random_state=self.seed, silhouette_max_n=self.silhouette_max_n,
                         n_refs=self.n_refs)


@dataclass
class RunResult:
    """The computed results of a run, before anything is written."""

    config: RunConfig
    portfolio: Portfolio
    quality: QualityReport
    model: Segmenter
    stability: Stability
    profiles: Profiles
    names: list[SegmentName]
    distances: np.ndarray
    projection: dict = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.model.labels_

    def segments_table(self) -> pd.DataFrame:
        """One row per customer: id, segment (1-based), segment name, distance to its centre."""
        return assignments(self.portfolio.frame[schema.ID], self.labels, self.distances,
                           [n.name for n in self.names])

    def training_info(self) -> dict:
        frame = self.portfolio.frame
        return {"source": self.portfolio.source, "n_customers": len(frame), "fingerprint": fingerprint(frame)}

    def metrics(self) -> dict:
        """Evidence per k, the choice, and stability (metrics.json)."""
        return {"chosen_k": self.model.n_clusters_, "selection": self.model.selection_.to_dict(),
                "stability": self.stability.to_dict(), "inertia": self.model.inertia_}

    def describe(self) -> dict:
        """Every number the report shows, as plain data (description.json)."""
        stab = self.stability.segments
        segments = []
        for n, prof in zip(self.names, self.profiles.to_dict()["segments"]):
            s = n.segment - 1
            segments.append({**prof, "name": n.name, "description": n.description, "traits": list(n.traits),
                             "stability": {"jaccard_mean": stab.at[s, "jaccard_mean"],
                                           "jaccard_sd": stab.at[s, "jaccard_sd"],
                                           "status": stab.at[s, "status"]},
                             "centre": dict(zip(self.model.feature_names_out_,
                                                self.model.cluster_centers_[s].tolist()))})
        return jsonable({
            "custseg": {"versions": versions(), "config": asdict(self.config)},
            "training": self.training_info(),
            "data_quality": self.quality.to_dict(),
            "features": list(self.model.feature_names_out_),
            "metrics": self.metrics(),
            "segments": segments,
            "portfolio": self.profiles.to_dict()["portfolio"],
            "projection": self.projection,
        })


def segment(source, config: RunConfig | None = None, *, name: str | None = None,
            progress: Progress | None = None) -> RunResult:
    """Run every computing stage on a source (path or DataFrame) and return the results.

    ``name`` is how messages and the report call the source (default: the path).
    """
    config = config or RunConfig()
    portfolio = load(source, name=name)
    portfolio, quality = validate(portfolio, required=required_columns(config.features),
                                  min_rows=needed_rows(config.k, config.k_max))
    model = config.segmenter().fit(portfolio.frame, progress=progress)
    Z = model.embed(portfolio.frame)
    _, distances = model.nearest(Z)
    # refits start from k-means++, not the fitted centres: a warm start makes arbitrary splits look stable
    with single_threaded_kmeans():
        stability = bootstrap_stability(Z, model.labels_, n_boot=config.n_boot, random_state=config.seed,
                                        progress=progress)
    profiles = profile(portfolio.frame, model.labels_, model.n_clusters_)
    names = name_segments(portfolio.frame, model.labels_, model.n_clusters_)
    return RunResult(config, portfolio, quality, model, stability, profiles, names, distances,
                     projection(Z, model.labels_, model.cluster_centers_, config.seed))


def projection(Z: np.ndarray, labels: np.ndarray, centers: np.ndarray, seed: int) -> dict:
    """A 2-D principal-component view of a sample of customers and of the centres, for the scatter figure."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(Z)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(Z), size=min(SCATTER_POINTS, len(Z)), replace=False))
    xy = pca.transform(Z[take])
    return {"explained_variance": pca.explained_variance_ratio_.tolist(),
            "x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
            "segment": (labels[take] + 1).tolist(),
            "centres": np.round(pca.transform(centers), 4).tolist()}


def needed_outputs() -> tuple[str, ...]:
    return ("segments.csv", "profiles.csv", "profiles.json", "metrics.json", "data_quality.json",
            "description.json", MODEL_FILE, "report.html", "report.md")


def write_outputs(result: RunResult, out: str | Path, *, force: bool = False,
                  extra_tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write every output of a run into ``out``, all or nothing.

    Files are written into a temporary sibling folder which replaces ``out`` only
    when everything succeeded. ``out`` must be absent or empty unless ``force``.
    """
    from .report import render_all

    out = Path(out)
    check_out_dir(out, force, result.portfolio.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir_beside(out)
    try:
        result.segments_table().to_csv(staging / "segments.csv", index=False, lineterminator="\n")
        profiles_csv(result).to_csv(staging / "profiles.csv", float_format="%.6g", lineterminator="\n")
        description = result.describe()
        write_json(staging / "profiles.json", {"segments": description["segments"],
                                               "portfolio": description["portfolio"]})
        write_json(staging / "metrics.json", description["metrics"])
        write_json(staging / "data_quality.json", description["data_quality"])
        write_json(staging / "description.json", description)
        save_model(staging / MODEL_FILE, result.model, segment_names=[n.name for n in result.names],
                   training=result.training_info())
        render_all(description, staging)
        for name, table in (extra_tables or {}).items():
            table.to_csv(staging / name, index=False, lineterminator="\n")
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def profiles_csv(result: RunResult) -> pd.DataFrame:
    wide = result.profiles.wide()
    wide.insert(0, "segment_name", [n.name for n in result.names])
    stab = result.stability.segments
    wide.insert(3, "stability", stab["jaccard_mean"].to_numpy())
    wide.insert(4, "stability_status", stab["status"].to_numpy())
    return wide


def check_out_dir(out: Path, force: bool, source=None) -> None:
    """Refuse an output folder that is a file, is not empty (unless ``force``), or holds the input."""
    if isinstance(source, (str, Path)) and Path(out).resolve() in Path(source).resolve().parents:
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
