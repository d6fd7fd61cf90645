"""A whole segmentation run: load → validate → fit → stability → profile → name → describe → write.

:func:`segment` computes everything as plain data (a :class:`RunResult`);
:func:`write_outputs` renders it into a folder atomically. The CLI's ``run`` is the
two in sequence; a notebook can call them, or the stages, one by one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from . import large, schema
from .drift import training_bins
from .features import required_columns
from .atomic import replacing
from .description import Description, describe, exploration_of, to_dict
from .errors import CustsegError, DataError
from .exploration import Exploration
from .identity import DEFAULT_THRESHOLD, SegmentIdentity, identities_for_refit, initial_identities
from .jsonio import write_json
from .load import Portfolio, load
from .naming import SegmentName, name_segments
from .persist import fingerprint, load_model, save_model, segment_identities
from .profiles import Profiles, profile
from .progress import Progress, tick
from .progress import describe as describe_progress
from .quality import QualityReport, validate
from .score import Scoring, assignments, score_with_drift
from .selection import n_steps as selection_steps
from .segmenter import Segmenter
from .settings import COMPARE_BOOTSTRAP, Settings
from .sinks.base import Sink
from .sources import Source, open_source
from .sinks.folder import FolderSink, check_out_dir, check_output_file, write_failure
from .stability import Stability, bootstrap_stability
from .summary import Insights, insights

MODEL_FILE = "model.json"
#: With --reference: which segments kept their identity, which are new and which vanished.
REFERENCE_FILE = "reference.json"
SCATTER_POINTS = 3000
#: Bytes per customer of ``custseg sample``'s CSV files, rounded up (measured: 89 and 17; Parquet is smaller).
SAMPLE_ROW_BYTES = 100
TRUTH_ROW_BYTES = 20
#: Customers in the per-customer silhouette diagram's sample.
SILHOUETTE_POINTS = 3000


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
    """The computed results of a run, before anything is written.

    ``identities`` holds each segment's identity (number, name, colour index for the
    report palette, stable id) in model order; ``reference`` what matching to a
    reference model found (``None`` without one; written as ``reference.json``);
    ``training_distribution`` the drift bins stored in the model file; ``sample`` the
    positions of the customers a large run (:mod:`custseg.large`) measured what
    needs no more on (``None``: everyone was); ``exploration`` the data overview of
    those customers (``None``: :meth:`describe` computes it). ``drawing`` holds the
    report's figures :func:`run` started drawing from the data before the segments
    were computed (:class:`custseg.report.drawing.Drawing`; ``None`` when none were).
    """

    config: RunConfig
    portfolio: Portfolio
    quality: QualityReport
    model: Segmenter
    stability: Stability
    profiles: Profiles
    names: list[SegmentName]
    distances: np.ndarray
    insights: Insights
    projection: dict = field(default_factory=dict)
    identities: list[SegmentIdentity] = field(default_factory=list)
    reference: dict | None = None
    training_distribution: dict | None = None
    silhouettes: dict = field(default_factory=dict)
    neighbours: dict | None = None
    sample: np.ndarray | None = None
    exploration: Exploration | None = None
    drawing: object = field(default=None, repr=False, compare=False)

    @property
    def labels(self) -> np.ndarray:
        return self.model.labels_

    @property
    def numbers(self) -> np.ndarray:
        """Each segment's number in the outputs (its identity's), in model order."""
        if self.identities:
            return np.array([i.number for i in self.identities], dtype=np.int64)
        return np.arange(1, self.model.n_clusters_ + 1)

    def segments_table(self) -> pd.DataFrame:
        """One row per customer: id, segment (its identity number), segment name, distance to its centre."""
        return assignments(self.portfolio.frame[schema.ID], self.labels, self.distances,
                           [n.name for n in self.names], numbers=self.numbers)

    def training_info(self) -> dict:
        """Source, number and fingerprint of the training customers (hashed once: it reads every value)."""
        if "_training" not in self.__dict__:
            frame = self.portfolio.frame
            self._training = {"source": self.portfolio.source, "n_customers": len(frame),
                              "fingerprint": fingerprint(frame)}
        return dict(self._training)

    def describe(self) -> Description:
        """Every number the report shows, as typed data (description.json)."""
        return describe(self)


def segment(source, config: RunConfig | None = None, *, name: str | None = None,
            progress: Progress | None = None, explored: Callable[[Exploration], None] | None = None) -> RunResult:
    """Run every computing stage on a source (path or DataFrame) and return the results.

    ``name`` is how messages and the report call the source (default: the path).
    ``explored`` is called with the data overview (:func:`custseg.description.exploration_of`)
    as soon as the data are validated, before any model is fitted (:func:`run` starts
    drawing the data figures then).
    With ``config.reference``, the segments are matched to the reference model's
    (:mod:`custseg.identity`) and numbered and named by identity; otherwise numbered
    by size. Either way the result carries the identities and the training
    distribution for drift checks (:mod:`custseg.drift`).
    """
    config = config or RunConfig()
    if config.engine == "spark":  # the portfolio stays in Spark: read, checked and fitted there
        from .spark_run import segment_spark

        return segment_spark(source, config, name=name, progress=progress)
    reference = None if config.reference is None else load_model(config.reference)
    source = open_source(source, name=name)
    required = required_columns(config.features)
    n_customers = source.count()
    if large.is_large(n_customers, config):
        if reference is not None:
            required = tuple(dict.fromkeys(required + tuple(reference[0].required_columns_)))
        # read and validated in batches; everyone's values are kept as float32 columns
        sample = large.sample_rows(n_customers, config.sample_size, config.seed)
        portfolio, quality, exact = large.load_validated(source, required, keep=sample)
        # the overview describes the customers the large run measures on (its RunResult.sample)
        exploration = _explore(portfolio.frame.iloc[sample], explored)
        result = large.segment_large(portfolio, quality, config, progress=progress, reference=reference,
                                     sample=exact)
        return replace(result, exploration=exploration)
    portfolio = load(source)
    if reference is not None:
        _check_reference_columns(portfolio, reference[0], config.reference)
        required = tuple(dict.fromkeys(required + tuple(reference[0].required_columns_)))
    portfolio, quality = validate(portfolio, required=required,
                                  min_rows=2 * config.largest_k, min_distinct=config.largest_k)
    frame = portfolio.frame
    exploration = _explore(frame, explored)
    model = segmenter_for(config).fit(frame, progress=progress)
    identities = matched = None
    if reference is not None:
        identities, matched = match_reference(model, frame, *reference, config.reference)
    # 0-based labels whose number + 1 is the segment's number in every output
    numbers = segment_numbers(model.n_clusters_, identities)
    labels = numbers[model.labels_] - 1
    Z = model.embed(frame)
    _, distances = model.nearest(Z)
    # refits start from k-means++, not the fitted centres: a warm start makes arbitrary splits look stable
    stability = bootstrap_stability(Z, labels, n_boot=config.n_boot, random_state=config.seed,
                                    engine=config.engine, progress=progress)
    profiles = by_number(profile(frame, model.labels_, model.n_clusters_), numbers)
    names, identities = named_by_identity(name_segments(frame, model.labels_, model.n_clusters_),
                                          model.cluster_centers_, identities)
    # the insights count segments by model position: give them the names with positional numbers
    found = insights(frame, model.labels_, Z, model.cluster_centers_, model.inertia_, stability.segments,
                     names=[replace(n, segment=position + 1) for position, n in enumerate(names)],
                     random_state=config.seed, numbers=numbers)
    bins = training_bins(frame[list(model.required_columns_)],
                         pd.DataFrame(Z, columns=list(model.feature_names_out_), index=frame.index),
                         distances=distances)
    return RunResult(config, portfolio, quality, model, stability, profiles, names, distances, found,
                     projection(Z, labels, model.cluster_centers_, config.seed,
                                features=[str(f) for f in model.feature_names_out_]),
                     identities=identities, reference=matched, training_distribution=bins,
                     silhouettes=silhouettes(Z, labels, config.seed),
                     neighbours=neighbour_map(Z, labels, config.seed) if config.tsne else None,
                     exploration=exploration)


def _explore(frame: pd.DataFrame, explored: Callable[[Exploration], None] | None) -> Exploration:
    exploration = exploration_of(frame)
    if explored is not None:
        explored(exploration)
    return exploration


def _check_reference_columns(portfolio: Portfolio, reference: Segmenter, path) -> None:
    absent = [c for c in reference.required_columns_ if c not in portfolio.frame.columns]
    if absent:
        raise DataError(f"{portfolio.source}: the reference model {path} needs column(s) {', '.join(absent)}, "
                        "which these data lack, so the new segments cannot be matched to its segments. "
                        "Supply those columns, or segment without --reference.")


def match_reference(model: Segmenter, frame: pd.DataFrame, reference: Segmenter, state: dict,
                    path) -> tuple[list[SegmentIdentity], dict]:
    """Identities of the new segments matched to the reference model's, and a summary for reference.json.

    The fitted model is put in the order of its segments' numbers, so that model
    position, label and the number in every output go up together.
    """
    provisional = name_segments(frame, model.labels_, model.n_clusters_)
    ref_identities = segment_identities(state)
    identities, matching = identities_for_refit(reference, ref_identities, model, frame,
                                                [n.name for n in provisional], reference_label=str(path))
    identities = _distinct_new_names(identities, matching.new)
    summary = {
        "model": str(path), "model_id": state["model_id"], "threshold": DEFAULT_THRESHOLD,
        "matched": [{"segment": identities[i].number, "name": identities[i].name,
                     "distance": float(matching.distances[i, j]), "limit": float(matching.limits[j])}
                    for i, j in sorted(matching.pairs.items(), key=lambda p: identities[p[0]].number)],
        "new": sorted(({"segment": identities[i].number, "name": identities[i].name} for i in matching.new),
                      key=lambda d: d["segment"]),
        "vanished": [{"segment": ref_identities[j].number, "name": ref_identities[j].name}
                     for j in sorted(matching.vanished, key=lambda j: ref_identities[j].number)],
    }
    order = np.argsort([i.number for i in identities], kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    model.cluster_centers_ = model.cluster_centers_[order]
    model.labels_ = rank[model.labels_]
    if hasattr(model, "core_"):  # the fitted k-means core keeps the segments in the same order
        model.core_.cluster_centers_, model.core_.labels_ = model.cluster_centers_, model.labels_
    return [identities[i] for i in order], summary


def _distinct_new_names(identities: list[SegmentIdentity], new: tuple) -> list[SegmentIdentity]:
    """A new segment whose name a kept segment already carries is called "<name> (new)"."""
    taken = {ident.name for i, ident in enumerate(identities) if i not in new}
    out = list(identities)
    for i in new:
        name, n = identities[i].name, 1
        while name in taken:
            name = f"{identities[i].name} (new{'' if n == 1 else f' {n}'})"
            n += 1
        taken.add(name)
        out[i] = replace(identities[i], name=name)
    return out


def segment_numbers(n_clusters: int, identities: list[SegmentIdentity] | None) -> np.ndarray:
    """Each segment's number in the outputs, in model order: its identity's, else its position + 1."""
    if identities is None:
        return np.arange(1, n_clusters + 1)
    return np.array([i.number for i in identities], dtype=np.int64)


def named_by_identity(names: list[SegmentName], centres: np.ndarray,
                      identities: list[SegmentIdentity] | None) -> tuple[list[SegmentName], list[SegmentIdentity]]:
    """Names (computed by model position) carrying their segment's identity number and name.

    Without a reference the identities are created here (segment *i* is number *i + 1*
    and keeps its name); with one, matched segments carry the reference's names.
    """
    if identities is None:
        identities = initial_identities(centres, [n.name for n in names])
    return [replace(n, segment=i.number, name=i.name) for n, i in zip(names, identities)], identities


def by_number(found: Profiles, numbers: np.ndarray) -> Profiles:
    """Profiles computed by model position (segment = position + 1) indexed by segment number instead
    (numbers left free by vanished segments are skipped)."""
    if np.array_equal(numbers, np.arange(1, numbers.size + 1)):
        return found
    index = pd.Index(numbers, name="segment")
    return Profiles(found.sizes.set_axis(index), found.stats.set_axis(index), found.portfolio)


def _sample(n: int, size: int, seed: int, purpose: str) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, *purpose.encode()]))
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def projection(Z: np.ndarray, labels: np.ndarray, centers: np.ndarray, seed: int,
               features: list[str] | None = None) -> dict:
    """A 2-D principal-component view of a sample of customers and of the centres, for the scatter figure.

    ``loadings`` maps each feature to its weight on the two axes (what the axes capture).
    """
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(Z)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(Z), size=min(SCATTER_POINTS, len(Z)), replace=False))
    xy = pca.transform(Z[take])
    # a component's sign is arbitrary: fix it so its largest loading is positive (same picture every run)
    signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
    xy, comps = xy * signs, pca.components_ * signs[:, None]
    features = features or [f"feature {j + 1}" for j in range(Z.shape[1])]
    return {"explained_variance": pca.explained_variance_ratio_.tolist(),
            "loadings": {f: np.round(comps[:, j], 4).tolist() for j, f in enumerate(features)},
            "x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
            "segment": (labels[take] + 1).tolist(),
            "centres": np.round(pca.transform(centers) * signs, 4).tolist()}


def neighbour_map(Z: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """A t-SNE map of the scatter figure's sample of customers (the same customers as :func:`projection`).

    t-SNE keeps who is near whom, not distances or directions, so the figure shows no
    axes' meaning; it is an option (``--tsne``) because it costs tens of seconds.
    """
    from sklearn.manifold import TSNE

    from .seeds import as_int

    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(Z), size=min(SCATTER_POINTS, len(Z)), replace=False))
    perplexity = float(min(30.0, max(2.0, (len(take) - 1) / 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=as_int(seed)).fit_transform(Z[take])
    return {"sample_size": int(len(take)), "perplexity": perplexity,
            "x": np.round(xy[:, 0], 4).tolist(), "y": np.round(xy[:, 1], 4).tolist(),
            "segment": (labels[take] + 1).tolist()}


def silhouettes(Z: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """Per-customer silhouette widths on a sample of customers (silhouette diagram), 1-based segments."""
    from sklearn.metrics import silhouette_samples

    take = _sample(len(Z), SILHOUETTE_POINTS, seed, "silhouettes")
    if len(np.unique(labels[take])) < 2:
        return {}
    values = silhouette_samples(Z[take], labels[take])
    return {"sample_size": int(len(take)), "mean": float(values.mean()),
            "segment": (labels[take] + 1).tolist(), "value": np.round(values, 4).tolist()}


def write_run_files(result: RunResult, folder: Path) -> None:
    """Write every output file of a run into an existing (staging) folder.

    The report's figures are drawn in other processes (:mod:`custseg.report.drawing`)
    while the tables, JSON files and model are written here. Figures :func:`run`
    started from the data before the segments existed (``result.drawing``) are used
    where they were drawn from this description's data overview.
    """
    from .report import render_all
    from .report.catalogue import FIGURE_ORDER
    from .report.drawing import Drawing

    description = result.describe()
    early = _drawn_from(result.drawing, description)
    with Drawing() as late:
        late.start(description, [name for name in FIGURE_ORDER if name not in early])
        if large.is_large(len(result.labels), result.config):
            large.write_segments(result, folder / "segments.csv")
        else:
            result.segments_table().to_csv(folder / "segments.csv", index=False, lineterminator="\n")
        profiles_csv(result).to_csv(folder / "profiles.csv", float_format="%.6g", lineterminator="\n")
        write_description_tables(description, folder)
        if result.reference is not None:
            write_json(folder / REFERENCE_FILE, result.reference)
        save_model(folder / MODEL_FILE, result.model, segment_names=[n.name for n in result.names],
                   training=result.training_info(), identities=result.identities or None,
                   training_distribution=result.training_distribution)
        drawn = {**({name: figure for name, figure in result.drawing.result().items() if name in early}
                    if early else {}), **late.result()}
    render_all(description, folder, {name: drawn[name] for name in FIGURE_ORDER if name in drawn})


def _drawn_from(drawing, description: Description) -> list[str]:
    """The figures of ``drawing`` drawn from ``description``'s data overview (the data figures need nothing else)."""
    from .report.catalogue import SECTIONS

    if drawing is None:
        return []
    return [name for name in drawing.names if name in SECTIONS["data"]
            and getattr(drawing.sources[name], "exploration", None) == description.exploration]


def write_description_files(description: Description, folder: Path) -> None:
    """The files rendered from a run's description: segments_summary.csv, profiles.json, metrics.json,
    data_quality.json, description.json and the report (the same for a fresh run and a stored one)."""
    from .report import render_all

    write_description_tables(description, folder)
    render_all(description, folder)


def write_description_tables(description: Description, folder: Path) -> None:
    """segments_summary.csv, profiles.json, metrics.json, data_quality.json and description.json."""
    data = to_dict(description)
    pd.DataFrame(data["insights"]["table"]).to_csv(folder / "segments_summary.csv", index=False,
                                                   float_format="%.6g", lineterminator="\n")
    write_json(folder / "profiles.json", {"segments": data["segments"], "portfolio": data["portfolio"],
                                          "insights": data["insights"]})
    write_json(folder / "metrics.json", data["metrics"])
    write_json(folder / "data_quality.json", data["data_quality"])
    write_json(folder / "description.json", data)


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
    table = result.insights.table().set_index("segment")
    risks = pd.Series({r.segment: r.risk for r in result.insights.summary.rows})
    for col in ("value_share", "total_per_customer", "risk", "priority", "top_action", "rule", "rule_fidelity"):
        wide[col] = (table[col] if col != "risk" else risks).reindex(wide.index).to_numpy()
    return wide


# ------------------------------------------------------------------ what the commands do


def progress_total(settings: Settings) -> int:
    """Progress units :func:`run` reports: the evidence, the bootstrap refits and the writing."""
    return selection_steps(settings.k_values(), settings.fixed_k, evidence=settings.evidence) + settings.n_boot + 1


def run(source, sink: Sink, settings: Settings | None = None, *, name: str | None = None,
        progress: Progress | None = None) -> RunResult:
    """Segment ``source`` and write the run to ``sink``; the sink's refusals come before any computation.

    The data figures are drawn in another process from the moment the data are
    validated, while the segments are computed (:class:`custseg.report.drawing.Drawing`);
    a drawing process still running when the run fails is stopped.
    """
    from .report.catalogue import SECTIONS
    from .report.drawing import Drawing

    if isinstance(source, Source):
        source.columns()  # an unreachable database, a bad query or a missing table is refused before any write
    sink.check(_path_of(source))
    if settings is not None and settings.reference is not None:
        sink.check(Path(settings.reference))  # the reference model is an input too: never replaced
    with Drawing() as early:
        def draw_data_figures(exploration: Exploration) -> None:
            early.start(SimpleNamespace(exploration=exploration), SECTIONS["data"], processes=1)

        result = segment(source, settings, name=name, progress=progress, explored=draw_data_figures)
        result.drawing = early
        describe_progress(progress, "writing report")
        sink.write(result)
        result.drawing = None
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


def predict(model_path: str | Path, data, output: str | Path, *, force: bool = False, store=None):
    """Score ``data`` with a saved model and write the assignments (.csv or .parquet) atomically.

    With ``store`` (see :func:`recording_store`) the scoring is also recorded there, in
    the same all-or-nothing way as :func:`run_sink`'s runs. Returns the assignments, the
    data-quality report of ``data`` (validated as in training) and the stored run id
    (``None`` when not recording).
    """
    scoring = predict_with_drift(model_path, data, output, force=force, store=store)
    return scoring.table, scoring.quality, scoring.run_id


def predict_with_drift(model_path: str | Path, data, output: str | Path, *, force: bool = False,
                       drift_json: str | Path | None = None, store=None) -> Scoring:
    """Like :func:`predict`, and check the scored population for drift (:mod:`custseg.drift`).

    The drift report (or, for a model file without a training distribution, why
    there is none) is written to ``drift_json`` when given, after the scores; with a
    ``store`` both are written inside the store's transaction.
    """
    output = Path(output)
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise CustsegError(f"{output}: the output must end in .csv or .parquet.")
    source = _path_of(data)
    # the scores are a fraction of the input's size (four columns of the input's eighteen)
    size = source.stat().st_size if source is not None and source.is_file() else 0
    check_output_file(output, force=force, inputs=(model_path, source), what="scores", expected_bytes=size // 2)
    if drift_json is not None:
        if Path(drift_json).absolute() == output.absolute():
            raise CustsegError(f"--drift-json {drift_json} is the same file as the scores -o {output}; give two names.")
        check_output_file(drift_json, force=force, inputs=(model_path, source), what="drift report")
    recorder = recording_store(store)
    if recorder is not None:
        recorder.schema_version()
    scoring = score_with_drift(model_path, data)

    def write() -> None:
        write_table(scoring.table, output)
        if drift_json is not None:
            try:
                with replacing(drift_json) as tmp:
                    write_json(tmp, scoring.drift_dict())
            except OSError as exc:
                raise CustsegError(f"Could not write {drift_json}: {write_failure(exc)}.") from None

    if recorder is None:
        write()
        return scoring
    from .sinks.store import StoreSink

    run_id = StoreSink(recorder).write_predictions(scoring.table, source=getattr(data, "label", str(data)),
                                                   fingerprint=scoring.fingerprint, state=scoring.state,
                                                   write=write, metrics={"drift": scoring.drift_dict()})
    return replace(scoring, run_id=run_id)


def write_table(table: pd.DataFrame, output: Path) -> None:
    try:
        with replacing(output) as tmp:
            if output.suffix.lower() == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False, lineterminator="\n")
    except OSError as exc:
        raise CustsegError(f"Could not write {output}: {write_failure(exc)}. Nothing was written.") from None


def compare(source, settings: Settings | None = None, *, n_boot: int = COMPARE_BOOTSTRAP, out: str | Path | None = None,
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
    engine = settings.engine
    if engine == "spark":  # the k-means fits go to Spark at --spark-master; the data stay in memory here
        from .spark_run import spark_engine

        engine = spark_engine(settings)
    model = segmenter_for(settings).set_params(engine=engine).fit(portfolio.frame, progress=progress)
    Z = model.embed(portfolio.frame)
    table = compare_models(Z, model.n_clusters_, random_state=settings.seed, n_boot=n_boot, n_init=settings.n_init,
                           reference_labels=model.labels_, engine=engine, progress=progress)
    if out is not None:
        def fill(staging: Path) -> None:
            table.to_csv(staging / "comparison.csv", index=False, lineterminator="\n")
            write_json(staging / "comparison.json", {"k": model.n_clusters_, "rows": table.to_dict("records")})
        sink.write_files(fill, _path_of(source))
    return model.n_clusters_, table


def eda(source, out: str | Path, *, force: bool = False, name: str | None = None):
    """Validate ``source`` and write its data-and-quality view (figures, eda.html, eda.md, eda.json) into
    ``out``, all or nothing. Returns the :class:`custseg.exploration.Exploration` and the quality report."""
    from .exploration import explore
    from .jsonio import jsonable
    from .report.eda import write_eda

    sink = folder_sink(out, source, force=force)
    if isinstance(source, Source):
        source.columns()  # an unreachable database, a bad query or a missing table is refused before any write
    sink.check(_path_of(source))
    portfolio, quality = validate(load(source, name=name), required=required_columns(Settings().features))
    exploration = explore(portfolio.frame)
    sink.write_files(lambda staging: write_eda(exploration, jsonable(quality.to_dict()), staging),
                     _path_of(source))
    return exploration, quality


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

    if truth is not None and Path(truth).resolve() == Path(output).resolve():
        raise CustsegError(f"--truth {truth} is the same file as the portfolio -o {output}; give two names.")
    check_output_file(output, force=force, what="portfolio", expected_bytes=rows * SAMPLE_ROW_BYTES)
    if truth is not None:
        check_output_file(truth, force=force, what="truth file", expected_bytes=rows * TRUTH_ROW_BYTES)
    try:
        write_sample(output, rows, seed=seed, quirks=quirks, truth_path=truth, progress=progress)
    except OSError as exc:
        raise CustsegError(f"Could not write {output}: {write_failure(exc)}. Nothing was written.") from None


def compare_runs(before, after, out: str | Path, *, force: bool = False):
    """``custseg compare``: how customers moved between two assignments; write the comparison to ``out``.

    Each side is a ``segments.csv`` (from ``run`` or ``predict``), a run folder
    (:func:`custseg.migration.read_side`), or the id of a run in the store (when
    one is configured: ``CUSTSEG_STORE_URL`` or the default store file). Segments are matched by identity. The
    output folder follows the run folder's rules (:class:`FolderSink`); nothing is
    written when either side is refused. Returns the :class:`~custseg.migration.Migration`.
    """
    from .migration import compare_sides, write_migration_files

    sink = FolderSink(out, force=force)
    for side in (before, after):
        check_out_dir(Path(out), force, side)
    sink.check()
    migration = compare_sides(_comparison_side(before), _comparison_side(after))
    sink.write_files(lambda staging: write_migration_files(migration, staging))
    return migration


def _comparison_side(spec):
    """A side of ``custseg compare``: a file or folder, else (when a store is configured) a stored run id."""
    from .migration import read_side, side_from_stored

    path = Path(spec)
    if path.exists() or path.suffix or len(path.parts) > 1 or not _store_configured():
        return read_side(path)
    from .sinks.store import Store

    record = Store().get_run(str(spec))
    table = record.assignments[["customer_id", "segment", "segment_name"]]
    return side_from_stored(table, record.model, f"store run {record.run_id}")


def _store_configured() -> bool:
    import os

    from .credentials import STORE_URL_ENV
    from .sinks.store import DEFAULT_STORE

    return bool(os.environ.get(STORE_URL_ENV)) or DEFAULT_STORE.expanduser().is_file()


def make_months(folder: str | Path, rows: int, months: int, *, seed: int = 0, move_share: float = 0.05,
                join_share: float = 0.02, leave_share: float = 0.02, force: bool = False):
    """``custseg sample --months``: consecutive synthetic months with known moves, into ``folder``.

    Writes ``month_01.csv`` …, ``truth_archetypes.csv`` and ``truth_moves.csv``
    (:func:`custseg.datasets.write_months`), all or nothing, with the run folder's
    rules for ``folder``. Returns the :class:`~custseg.datasets.Months`.
    """
    from .datasets import write_months

    sink = FolderSink(folder, force=force, expected_bytes=months * rows * 400)  # about 250 bytes a CSV row
    sink.check()
    written = []

    def fill(staging: Path) -> None:
        written.append(write_months(staging, rows, months, seed=seed, move_share=move_share,
                                    join_share=join_share, leave_share=leave_share))

    sink.write_files(fill)
    return written[0]


# ------------------------------------------------------------------ databases and the segment store


def open_input(data=None, sql: str | None = None, table: str | None = None, db=None,
               params: Mapping[str, object] | Sequence[str] | None = None):
    """What a command reads customers from: the file ``data``, or ``sql`` / ``table`` in the database ``db``.

    Exactly one of ``data``, ``sql`` and ``table`` must be given. ``db`` defaults to
    ``CUSTSEG_DB_URL``; ``params`` fills the query's ``:name`` placeholders as bound
    parameters (a mapping, or ``name=value`` texts as on the command line, see
    :func:`query_params`). A file comes back as its path, a query or table as a
    :class:`~custseg.sources.sql.SQLSource` (its label masks any password).

    Raises
    ------
    CustsegError
        None or several of the three given, ``--db``/``--param`` with a file, ``--param`` with a table.
    """
    given = [flag for flag, value in (("DATA", data), ("--sql", sql), ("--table", table)) if value is not None]
    if len(given) != 1:
        said = "none was" if not given else " and ".join(given) + " were"
        raise CustsegError(f"Give the customers either as a file (DATA) or from a database (--sql QUERY or "
                           f"--table NAME, with --db URL): exactly one of the three; {said} given.")
    if data is not None:
        if db is not None or params:
            raise CustsegError("--db and --param go with --sql or --table; DATA is read as a file.")
        return data
    if params and table is not None:
        raise CustsegError("--param fills the :name placeholders of an --sql query; --table has none.")
    from .sources.sql import SQLSource

    values = query_params(params) if params is not None and not isinstance(params, Mapping) else params
    return SQLSource(db, query=sql, table=table, params=values)


_INTEGER = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def query_params(pairs: Sequence[str]) -> dict[str, object]:
    """``name=value`` texts as bound parameters: whole numbers become ``int``, decimals ``float``,
    everything else (``01234`` included) stays text.

    Raises
    ------
    CustsegError
        A text without ``=`` or a name that is not a placeholder name, or a name given twice.
    """
    values: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise CustsegError(f"--param '{pair}': write it as name=value, where :name is a placeholder "
                               "in the --sql query.")
        if name in values:
            raise CustsegError(f"--param {name} is given twice; give each placeholder one value.")
        values[name] = int(text) if _INTEGER.fullmatch(text) else float(text) if _DECIMAL.fullmatch(text) else text
    return values


def load_db(data, db=None, table: str = "customers", *, mode: str = "replace") -> tuple[int, str]:
    """Load the file ``data`` into ``table`` of ``db`` (``custseg load-db``); return the rows and how to name the table.

    See :func:`custseg.dbload.load_table` for the modes; one transaction, all or nothing.
    """
    from .credentials import mask_url, resolve_url
    from .dbload import load_table

    url = resolve_url(db)
    return load_table(data, url, table, mode=mode), f"{mask_url(url)} table {table}"


def recording_store(store=None):
    """The :class:`~custseg.sinks.store.Store` a run or scoring records into, or ``None``.

    Recording is opt-in: ``store`` is a URL, ``""`` (``--store`` without a value: the
    default store, ``CUSTSEG_STORE_URL`` or ``~/.local/share/custseg/store.duckdb``), or
    ``None``: then runs are recorded only when ``CUSTSEG_STORE_URL`` is set.
    """
    import os

    from .credentials import STORE_URL_ENV
    from .sinks.store import Store

    if store is None:
        return Store(os.environ[STORE_URL_ENV]) if os.environ.get(STORE_URL_ENV, "").strip() else None
    return Store(store or None)


def run_sink(out: str | Path, source=None, *, force: bool = False, store=None) -> Sink:
    """The sink of ``custseg run``: the folder ``out``, and the store when recording (:func:`recording_store`).

    When recording, the folder is written inside the store's transaction, after the
    run's rows are inserted and before they are committed, so both land or neither does
    (:class:`~custseg.sinks.store.StoreSink`).
    """
    folder = folder_sink(out, source, force=force)
    recorder = recording_store(store)
    if recorder is None:
        return folder
    from .sinks.store import StoreSink

    return StoreSink(recorder, alongside=folder)


def stored_store(store=None):
    """The store ``history``, ``show`` and ``report`` read: ``store``, else ``CUSTSEG_STORE_URL``, else the
    default file."""
    from .sinks.store import Store

    return Store(store or None)


def history(store=None) -> tuple[str, list]:
    """The store's label and its runs, oldest first (:class:`~custseg.sinks.store.RunSummary`)."""
    found = stored_store(store)
    return found.label, found.history()


def stored_run(run_id: str, store=None):
    """The run ``run_id`` (or a unique prefix of it) as a :class:`~custseg.sinks.store.RunRecord`."""
    return stored_store(store).get_run(run_id)


def report_run(run_id: str, out: str | Path, *, store=None, force: bool = False):
    """Render a stored run again into the folder ``out`` (all or nothing); return its record.

    Writes what the run wrote: segments.csv, profiles.csv/.json, metrics.json,
    data_quality.json, description.json, model.json, report.html, report.md, figures/.

    Raises
    ------
    CustsegError
        No such run, or it is a scoring (``custseg predict``), which has no report.
    """
    found = stored_store(store)
    record = found.get_run(run_id)
    if record.kind != "run" or not record.description:
        raise CustsegError(f"{found.label}: {record.run_id} is a scoring (custseg predict), not a run; only runs "
                           "have a report. custseg show prints what it recorded.")
    sink = FolderSink(out, force=force)
    sink.check()
    sink.write_files(lambda staging: write_stored_files(record, staging))
    return record


def write_stored_files(record, folder: Path) -> None:
    """Write a stored run's files into an existing (staging) folder, as :func:`write_run_files` wrote them."""
    import json

    from .description import from_dict

    description = from_dict(json.loads(record.description), source=f"the description of run {record.run_id}")
    record.assignments.to_csv(folder / "segments.csv", index=False, lineterminator="\n")
    record.profiles.to_csv(folder / "profiles.csv", float_format="%.6g", lineterminator="\n")
    (folder / MODEL_FILE).write_text(record.model, encoding="utf-8")
    write_description_files(description, folder)
