"""A whole segmentation run: load → validate → fit → stability → profile → name → describe → write.

:func:`segment` computes everything as plain data (a :class:`RunResult`);
:func:`write_outputs` renders it into a folder atomically. The CLI's ``run`` is the
two in sequence; a notebook can call them, or the stages, one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .features import required_columns
from .atomic import replacing
from .description import Description, describe, to_dict
from .errors import CustsegError
from .jsonio import write_json
from .load import Portfolio, load
from .naming import SegmentName, name_segments
from .persist import fingerprint, save_model
from .profiles import Profiles, profile
from .progress import Progress, tick
from .progress import describe as describe_progress
from .quality import QualityReport, validate
from .score import assignments, score
from .selection import n_steps as selection_steps
from .segmenter import Segmenter
from .settings import Settings
from .sinks.base import Sink
from .sinks.folder import FolderSink, check_writable
from .stability import Stability, bootstrap_stability

MODEL_FILE = "model.json"
SCATTER_POINTS = 3000


#: The library's earlier name for :class:`~custseg.settings.Settings`.
RunConfig = Settings


def segmenter_for(settings: Settings) -> Segmenter:
    """The unfitted estimator a run with these settings uses."""
    return Segmenter(n_clusters=settings.k, k_min=settings.k_min, k_max=settings.k_max, features=settings.features,
                     n_init=settings.n_init, random_state=settings.seed, silhouette_max_n=settings.silhouette_max_n,
                     n_refs=settings.n_refs, evidence=settings.evidence, engine=settings.engine,
                     choice_boot=settings.choice_boot, choice_max_n=settings.choice_max_n)


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

    def describe(self) -> Description:
        """Every number the report shows, as typed data (description.json)."""
        return describe(self)


def segment(source, config: RunConfig | None = None, *, name: str | None = None,
            progress: Progress | None = None) -> RunResult:
    """Run every computing stage on a source (path or DataFrame) and return the results.

    ``name`` is how messages and the report call the source (default: the path).
    """
    config = config or RunConfig()
    portfolio = load(source, name=name)
    portfolio, quality = validate(portfolio, required=required_columns(config.features),
                                  min_rows=2 * config.largest_k, min_distinct=config.largest_k)
    model = segmenter_for(config).fit(portfolio.frame, progress=progress)
    Z = model.embed(portfolio.frame)
    _, distances = model.nearest(Z)
    # refits start from k-means++, not the fitted centres: a warm start makes arbitrary splits look stable
    stability = bootstrap_stability(Z, model.labels_, n_boot=config.n_boot, random_state=config.seed,
                                    engine=config.engine, progress=progress)
    profiles = profile(portfolio.frame, model.labels_, model.n_clusters_)
    names = name_segments(profiles)
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


def write_run_files(result: RunResult, folder: Path) -> None:
    """Write every output file of a run into an existing (staging) folder."""
    from .report import render_all

    result.segments_table().to_csv(folder / "segments.csv", index=False, lineterminator="\n")
    profiles_csv(result).to_csv(folder / "profiles.csv", float_format="%.6g", lineterminator="\n")
    description = result.describe()
    data = to_dict(description)
    write_json(folder / "profiles.json", {"segments": data["segments"], "portfolio": data["portfolio"]})
    write_json(folder / "metrics.json", data["metrics"])
    write_json(folder / "data_quality.json", data["data_quality"])
    write_json(folder / "description.json", data)
    save_model(folder / MODEL_FILE, result.model, segment_names=[n.name for n in result.names],
               training=result.training_info())
    render_all(description, folder)


def write_outputs(result: RunResult, out: str | Path, *, force: bool = False,
                  extra_tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write every output of a run into the folder ``out``, all or nothing (see :class:`FolderSink`)."""
    return FolderSink(out, force=force, extra_tables=extra_tables).write(result)


def profiles_csv(result: RunResult) -> pd.DataFrame:
    wide = result.profiles.wide()
    wide.insert(0, "segment_name", [n.name for n in result.names])
    stab = result.stability.segments
    wide.insert(3, "stability", stab["jaccard_mean"].to_numpy())
    wide.insert(4, "stability_status", stab["status"].to_numpy())
    return wide


# ------------------------------------------------------------------ what the commands do


def progress_total(settings: Settings) -> int:
    """Progress units :func:`run` reports: the evidence, the bootstrap refits and the writing."""
    return selection_steps(settings.k_values(), settings.fixed_k, evidence=settings.evidence) + settings.n_boot + 1


def run(source, sink: Sink, settings: Settings | None = None, *, name: str | None = None,
        progress: Progress | None = None) -> RunResult:
    """Segment ``source`` and write the run to ``sink``; the sink's refusals come before any computation."""
    sink.check(_path_of(source))
    result = segment(source, settings, name=name, progress=progress)
    describe_progress(progress, "writing report")
    sink.write(result)
    tick(progress)
    return result


def folder_sink(out: str | Path, source=None, *, force: bool = False,
                extra_tables: dict[str, pd.DataFrame] | None = None) -> FolderSink:
    """The folder sink for a run of ``source``, with the space its outputs will need."""
    path = _path_of(source)
    size = path.stat().st_size if path is not None and path.is_file() else 0
    # segments.csv and the report grow with the customers; the rest is small
    return FolderSink(out, force=force, extra_tables=extra_tables, expected_bytes=2 * size + 20 * 2**20)


def _path_of(source) -> Path | None:
    path = getattr(source, "path", None) or (source if isinstance(source, (str, Path)) else None)
    return None if path is None else Path(path)


def check_output_file(output: str | Path, *, force: bool, inputs=(), what: str = "output") -> Path:
    """Refuse an output file that would overwrite an input, exists (unless ``force``), or cannot be written."""
    output = Path(output)
    for given in inputs:
        if given is not None and Path(given).exists() and output.exists() and output.resolve() == Path(given).resolve():
            raise CustsegError(f"{output} is also an input of this command; write the {what} to another file "
                               "(inputs are never overwritten).")
    if output.is_dir():
        raise CustsegError(f"{output} is a folder; give a file name for the {what}.")
    if output.exists() and not force:
        raise CustsegError(f"{output} exists; pass --force to overwrite it.")
    parent = output.absolute().parent
    if not parent.is_dir():
        raise CustsegError(f"The folder {parent} for the {what} {output} does not exist; create it first "
                           "or write elsewhere.")
    check_writable(parent, what=f"the {what} {output}")
    return output


def predict(model_path: str | Path, data, output: str | Path, *, force: bool = False):
    """Score ``data`` with a saved model and write the assignments (.csv or .parquet) atomically.

    Returns the assignments and the data-quality report of ``data`` (validated as in training).
    """
    output = Path(output)
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise CustsegError(f"{output}: the output must end in .csv or .parquet.")
    check_output_file(output, force=force, inputs=(model_path, _path_of(data)), what="scores")
    table, quality = score(model_path, data, with_report=True)
    write_table(table, output)
    return table, quality


def write_table(table: pd.DataFrame, output: Path) -> None:
    try:
        with replacing(output) as tmp:
            if output.suffix.lower() == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False, lineterminator="\n")
    except OSError as exc:
        raise CustsegError(f"Could not write {output}: {exc.strerror or exc}. Nothing was written.") from None


def compare(source, settings: Settings | None = None, *, n_boot: int = 20, out: str | Path | None = None,
            force: bool = False, progress: Progress | None = None) -> tuple[int, pd.DataFrame]:
    """Fit six clustering algorithms on the run's features; write comparison.csv/.json into ``out``.

    The k is the one :func:`segment` would use with ``settings`` (its k range included).
    Returns the k and the comparison table.
    """
    from .compare import compare_models

    settings = settings or Settings()
    sink = None if out is None else folder_sink(out, source, force=force)
    if sink is not None:
        sink.check(_path_of(source))
    portfolio, _ = validate(load(source), required=required_columns(settings.features),
                            min_rows=2 * settings.largest_k, min_distinct=settings.largest_k)
    model = segmenter_for(settings).fit(portfolio.frame, progress=progress)
    Z = model.embed(portfolio.frame)
    table = compare_models(Z, model.n_clusters_, random_state=settings.seed, n_boot=n_boot,
                           reference_labels=model.labels_, progress=progress)
    if out is not None:
        def fill(staging: Path) -> None:
            table.to_csv(staging / "comparison.csv", index=False, lineterminator="\n")
            write_json(staging / "comparison.json", {"k": model.n_clusters_, "rows": table.to_dict("records")})
        sink.write_files(fill, _path_of(source))
    return model.n_clusters_, table


def compare_total(settings: Settings, n_boot: int) -> int:
    from .compare import n_steps

    return selection_steps(settings.k_values(), settings.fixed_k, evidence=settings.evidence) + n_steps(n_boot)


def demo(out: str | Path, *, rows: int, seed: int, force: bool = False,
         progress: Progress | None = None) -> tuple[RunResult, float, float]:
    """Generate a synthetic portfolio, segment it and write the report.

    Returns the run, the ARI of its segments against the true archetypes, and the
    supervised ceiling (:func:`supervised_ceiling`) that ARI is measured against.
    """
    from sklearn.metrics import adjusted_rand_score

    from .datasets import generate

    frame, truth = generate(rows, seed=seed)
    truth_table = truth.to_frame().assign(customer_id=frame[schema.ID])[["customer_id", "archetype"]]
    sink = folder_sink(out, force=force, extra_tables={"portfolio.csv": frame, "truth.csv": truth_table})
    result = run(frame, sink, Settings(seed=seed), progress=progress,
                 name=f"synthetic portfolio (custseg demo, seed {seed}; saved as portfolio.csv)")
    ceiling = supervised_ceiling(result.model.embed(result.portfolio.frame), np.asarray(truth), seed=seed)
    return result, float(adjusted_rand_score(np.asarray(truth), result.labels)), ceiling


def supervised_ceiling(Z: np.ndarray, truth: np.ndarray, *, seed: int, folds: int = 5) -> float:
    """ARI against ``truth`` of a classifier that was told the truth: the most the features allow.

    A gradient-boosted tree classifier (scikit-learn's ``HistGradientBoostingClassifier``)
    is trained on the true archetypes with the same scaled features k-means sees;
    each customer is predicted by the model of the fold that did not train on it
    (stratified ``folds``-fold, shuffled with ``seed``), and the ARI of those
    predictions against the truth is returned. Unsupervised segments can approach
    it but not beat it except by luck: archetypes that overlap in these features
    cannot be separated by any method.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(HistGradientBoostingClassifier(random_state=seed), Z, truth, cv=splits)
    return float(adjusted_rand_score(truth, predicted))


def make_sample(output: str | Path, rows: int, *, seed: int = 0, quirks: bool = False,
                truth: str | Path | None = None, force: bool = False, progress: Progress | None = None) -> None:
    """Write a synthetic portfolio (and optionally its true archetypes) for ``custseg sample``."""
    from .datasets import write_sample

    if truth is not None and Path(truth).absolute() == Path(output).absolute():
        raise CustsegError(f"--truth {truth} is the same file as the portfolio -o {output}; give two names.")
    check_output_file(output, force=force, what="portfolio")
    if truth is not None:
        check_output_file(truth, force=force, what="truth file")
    try:
        write_sample(output, rows, seed=seed, quirks=quirks, truth_path=truth, progress=progress)
    except OSError as exc:
        raise CustsegError(f"Could not write {output}: {exc.strerror or exc}. Nothing was written.") from None
