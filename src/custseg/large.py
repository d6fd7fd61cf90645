"""Runs on portfolios larger than ``Settings.sample_size``: choose on a sample, fit and assign everyone.

A run on millions of customers cannot afford the evidence for every k (ten restarts
each, gap references, silhouettes) and fifty bootstrap refits on everyone, and gains
little from it: the choice of k and the stability of the segments are properties of
the population that a uniform sample of 100,000 customers estimates well. So a large
run

1. validates everyone with the same rules as a small run (:func:`custseg.quality.validate`);
2. draws a uniform sample of ``sample_size`` customers without replacement (seeded by
   ``seeds.derive(seed, "large-sample")``) and fits the :class:`~custseg.segmenter.Segmenter`
   on it: features, evidence, choice of k and the k-means restarts;
3. embeds everyone in blocks as float32 (k-means on standardised features needs no
   more precision; the chunked engine accumulates in float64) and refits k-means on
   everyone from the sample's centres with the chunked engine (one run, no restarts);
4. renumbers segments by their size among everyone (with a reference model, matches them to
   its segments and numbers them by identity, as a small run does), assigns everyone (labels and
   distances), and tests stability on the sample against the final segments;
5. profiles every customer (exact means and medians, :func:`profile_all`: the figures
   of :func:`custseg.profiles.profile` within a few columns' memory) and projects the
   sample for the scatter figure;
6. writes ``segments.csv`` with pyarrow's CSV writer (pandas' ``to_csv`` takes minutes
   for ten million rows); the columns and values are those of a small run.

Every k-means fit of a large run uses the chunked engine unless another engine than
the in-memory default ``sklearn`` was chosen (``Settings.engine``), which the run's
settings then record.

The selection's reason and the data-quality notes say that a sample was used and how
large it was, so the report and ``metrics.json`` state it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema, seeds
from .load import Portfolio
from .naming import name_segments
from .progress import Progress
from .quality import QualityReport
from .segmenter import Segmenter
from .settings import Settings
from .stability import bootstrap_stability

#: Rows embedded at a time: bounds the pandas intermediates of the feature pipeline.
EMBED_ROWS = 500_000


def is_large(n_customers: int, settings: Settings) -> bool:
    """Whether a run on ``n_customers`` takes the sampled path of this module."""
    return n_customers > settings.sample_size


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample of ``min(size, n)`` of ``n`` rows, without replacement."""
    rng = np.random.default_rng(seeds.derive(seed, "large-sample"))
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def embed_all(model: Segmenter, frame: pd.DataFrame, rows: int = EMBED_ROWS) -> np.ndarray:
    """Scaled features of every row of ``frame`` as a C-contiguous float32 matrix, computed in blocks."""
    Z = np.empty((len(frame), len(model.feature_names_out_)), dtype=np.float32)
    for start in range(0, len(frame), rows):
        Z[start:start + rows] = model.embed(frame.iloc[start:start + rows])
    return Z


def write_segments(result, path: Path) -> None:
    """``segments.csv`` of a large run: the columns of :meth:`custseg.run.RunResult.segments_table`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = pa.array([n.name for n in result.names], type=pa.string())
    table = pa.table({
        "customer_id": pa.array(result.portfolio.frame["CUST_ID"].to_numpy(), type=pa.string()),
        "segment": pa.array(result.numbers[result.labels]),
        "segment_name": names.take(pa.array(result.labels)),
        "distance_to_centre": pa.array(np.round(result.distances, 6)),
    })
    try:  # byte for byte what pandas writes, unless an id or name holds a comma or quote: then text is quoted
        _write_csv(table, path, "none")
    except pa.ArrowInvalid:
        _write_csv(table, path, "needed")


def _write_csv(table, path: Path, quoting: str) -> None:
    import pyarrow.csv as pacsv

    with open(path, "wb") as f:
        f.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style=quoting))


def segment_large(portfolio: Portfolio, quality: QualityReport, config: Settings, *,
                  progress: Progress | None = None, reference: tuple[Segmenter, dict] | None = None):
    """The computing stages of :func:`custseg.run.segment` for a validated portfolio above ``sample_size``.

    With ``reference`` (a loaded model and its state, ``run --reference``) the final
    segments are matched to the reference's as in a small run and numbered by identity.
    Returns a :class:`custseg.run.RunResult` whose model holds every customer's segment.
    """
    from .drift import training_bins
    from .run import (RunResult, by_number, match_reference, named_by_identity, projection, segment_numbers,
                      segmenter_for, silhouettes)
    from .summary import insights

    from .engine.chunked import ChunkedEngine

    frame = portfolio.frame
    take = sample_rows(len(frame), config.sample_size, config.seed)
    # the in-memory default gains nothing on a sample of 100,000 and its k-means++ seeding dominates there
    config = config.with_(engine="chunked") if config.engine == "sklearn" else config
    model = segmenter_for(config).fit(frame.iloc[take].reset_index(drop=True), progress=progress)
    Z = embed_all(model, frame)
    engine = ChunkedEngine()
    fit = engine.fit(Z, model.n_clusters_, n_init=1, seed=config.seed, init=model.cluster_centers_)
    order = np.argsort(-np.bincount(fit.labels, minlength=model.n_clusters_), kind="stable")
    centres = np.ascontiguousarray(fit.centres[order])
    labels, distances = engine.assign(Z, centres)
    model.core_.cluster_centers_ = model.cluster_centers_ = centres
    model.core_.labels_ = model.labels_ = labels
    model.core_.inertia_ = model.inertia_ = float(np.dot(distances, distances))
    model.core_.n_iter_ = int(fit.n_iter)
    identities = matched = None
    if reference is not None:  # puts the model's segments in the order of their identity numbers
        identities, matched = match_reference(model, frame, *reference, config.reference)
        labels, centres = model.labels_, model.cluster_centers_
    numbers = segment_numbers(model.n_clusters_, identities)
    numbered = numbers[labels] - 1  # 0-based labels whose number + 1 is the segment's number in every output
    note = (f"k chosen and stability tested on a uniform sample of {len(take):,} of the {len(frame):,} "
            f"customers; the segments were then fitted on all {len(frame):,} from the sample's centres.")
    model.selection_ = replace(model.selection_, reason=f"{model.selection_.reason} {note}")
    quality = replace(quality, notes=[*quality.notes, note])
    Zs = Z[take].astype(np.float64)
    stability = bootstrap_stability(Zs, numbered[take], n_boot=config.n_boot, random_state=config.seed,
                                    engine=config.engine, progress=progress)
    profiles = by_number(profile_all(frame, labels, model.n_clusters_), numbers)
    names, identities = named_by_identity(name_segments(frame, labels, model.n_clusters_), centres, identities)
    # names, value, risk and rules describe everyone (counted by model position); drift bins come from the sample
    found = insights(frame, labels, Z, centres, model.inertia_, stability.segments,
                     names=[replace(n, segment=position + 1) for position, n in enumerate(names)],
                     random_state=config.seed, numbers=numbers)
    features = pd.DataFrame(Zs, columns=list(model.feature_names_out_))
    bins = training_bins(frame.iloc[take][list(model.required_columns_)].reset_index(drop=True), features,
                         distances=distances[take])
    return RunResult(config, portfolio, quality, model, stability, profiles, names, distances, found,
                     projection(Zs, numbered[take], centres, config.seed,
                                features=[str(f) for f in model.feature_names_out_]),
                     identities=identities, reference=matched, training_distribution=bins,
                     silhouettes=silhouettes(Zs, numbered[take], config.seed))


def profile_all(frame: pd.DataFrame, labels: np.ndarray, n_segments: int, rows: int = EMBED_ROWS):
    """:func:`custseg.profiles.profile` of every customer, within a few columns' memory.

    The same statistics (means skip missing values, exact medians, ratios to the
    portfolio mean) in the same layout; the derived measures are computed in row
    blocks, and each variable is summarised column by column from one sort of the labels.
    """
    from .profiles import STATISTICS, Profiles, _variables

    raw = [c for c in schema.BEHAVIOUR if c in frame.columns]
    head = _variables(frame.iloc[:1])
    derived = [c for c in head.columns if c not in raw]
    measures = np.empty((len(frame), len(derived)))
    for start in range(0, len(frame), rows):
        measures[start:start + rows] = _variables(frame.iloc[start:start + rows])[derived].to_numpy()
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_segments + 1))
    index = pd.RangeIndex(1, n_segments + 1, name="segment")
    stats, overall = {}, {}
    for j, var in enumerate(head.columns):
        values = frame[var].to_numpy(dtype=np.float64) if var in raw else measures[:, j - len(raw)]
        grouped = values[order]
        seg = [grouped[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        mean = np.array([_nanmean(v) for v in seg])
        overall_mean = _nanmean(values)
        ratio = mean / overall_mean if overall_mean != 0 and not np.isnan(overall_mean) else np.full(n_segments, np.nan)
        stats[(var, "mean")], stats[(var, "median")], stats[(var, "ratio")] = \
            mean, np.array([_nanmedian(v) for v in seg]), ratio
        overall[var] = (overall_mean, _nanmedian(values))
    columns = pd.MultiIndex.from_tuples([(v, s) for v in head.columns for s in STATISTICS])
    table = pd.DataFrame({key: stats[key] for key in columns}, index=index)
    table.columns = columns
    size = np.diff(bounds)
    sizes = pd.DataFrame({"size": size.astype(int), "share": size / max(len(frame), 1)}, index=index)
    portfolio = pd.DataFrame(overall, index=["mean", "median"]).T
    return Profiles(sizes, table, portfolio)


def _nanmean(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if len(kept) else np.nan


def _nanmedian(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(np.median(kept)) if len(kept) else np.nan
