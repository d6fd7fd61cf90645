"""Runs on portfolios larger than ``Settings.sample_size``: choose on a sample, fit and assign everyone.

A run on millions of customers cannot afford the evidence for every k (ten restarts
each, gap references, silhouettes) and fifty bootstrap refits on everyone, and gains
little from it: the choice of k and the stability of the segments are properties of
the population that a uniform sample of 50,000 customers estimates well (checked across
seeds on the 2-million synthetic portfolio, ``docs/scale.md``). So a large
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
from .errors import DataError
from .load import Portfolio
from .naming import name_segments
from .progress import Progress
from .quality import QualityReport
from .segmenter import Segmenter
from .settings import Settings
from .stability import bootstrap_stability

#: Rows embedded at a time: bounds the float64 intermediates of the feature pipeline.
EMBED_ROWS = 500_000
#: Rows read and validated at a time by :func:`load_validated` (at 1,000,000 the batches in flight took 200 MB more on 2M customers, for no gain in time).
VALIDATE_ROWS = 250_000
#: Batches checked at the same time (the machines this runs on have two cores).
CHECK_THREADS = 2


def is_large(n_customers: int, settings: Settings) -> bool:
    """Whether a run on ``n_customers`` takes the sampled path of this module."""
    return n_customers > settings.sample_size


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample of ``min(size, n)`` of ``n`` rows, without replacement."""
    rng = np.random.default_rng(seeds.derive(seed, "large-sample"))
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def load_validated(source, required: tuple[str, ...], *, rows: int = VALIDATE_ROWS,
                   keep: np.ndarray | None = None) -> tuple[Portfolio, QualityReport, pd.DataFrame | None]:
    """Read and validate a large source batch by batch, keeping everyone's values as float32 columns.

    Each batch of ``rows`` rows goes from the source to NumPy columns
    (:func:`custseg.sources.columns.column_batches`) and through
    :class:`custseg.quality.BatchValidator`: the rules, counts, messages and exit codes
    of :func:`custseg.quality.validate` on the whole table, rows counted from the
    start of the source. Two batches are checked at once while the next is read.
    What needs every row is decided on every row: whether a share is on a 0–100 scale
    (when one is, the source is read again with it divided by 100 everywhere),
    repeated ids, columns without a usable value, constant columns, the distribution
    and the shape facts.

    Parameters
    ----------
    source : Source
        The customers (:func:`custseg.sources.open_source`).
    required : tuple of str
        Canonical behaviour columns the run needs.
    rows : int
        Rows per batch.
    keep : ndarray of int, optional
        Sorted positions of rows (the run's sample) also kept at full precision.

    Returns
    -------
    portfolio : Portfolio
        ``frame`` holds ``CUST_ID`` (text) and the repaired numeric columns as float32
        (missing values left for the feature pipeline, as after ``validate``).
    report : QualityReport
    kept : DataFrame or None
        The rows at ``keep``, as ``frame`` holds them but with float64 values (what
        ``custseg predict`` computes with), in the order of ``keep``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .load import _match_headers
    from .quality import _require_columns

    label, n = source.label, source.count()
    chosen, renamed, ignored = _match_headers(source.columns(), label)
    ordered = [c.name for c in schema.COLUMNS if c.name in chosen]
    head = Portfolio(pd.DataFrame(columns=ordered), label, renamed, ignored, [], list(source.notes), source.path)
    _require_columns(head, required)
    numeric = [c for c in ordered if c != schema.ID]
    values = {c: np.empty(n, dtype=np.float32) for c in numeric}
    keep = np.empty(0, dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    kept = {c: np.empty(len(keep)) for c in numeric}
    read = _Reading(source, ordered, [chosen[c] for c in ordered], numeric, required, rows, keep, kept)
    validator, ids, integer_ids, batches = read.into(values, frozenset())
    percent = validator.percent_scale()
    if percent != validator.percent:  # a share on a 0–100 scale: read again, divided by 100 everywhere
        validator, ids, integer_ids, batches = read.into(values, percent)
    frame = pd.DataFrame({schema.ID: pd.Series(pd.arrays.ArrowStringArray(ids)), **values}, copy=False)
    _release_arrow_memory()
    notes = [*head.notes, f"customer ids are {'integers' if integer_ids else 'text'}"]
    head = replace(head, frame=frame, empty_ignored=source.empty_columns(ignored), notes=notes)
    with ThreadPoolExecutor(1) as pool:  # the id check (in Arrow, without the GIL) beside the distribution
        repeated = pool.submit(_repeated_ids, ids, frame, label)
        distribution = _distribution(frame.drop(columns=schema.ID))
        report = validator.report(head, duplicates=repeated.result)
    report = replace(report, distribution=distribution, notes=[
        *report.notes, f"validated in {batches} batch{'es' if batches > 1 else ''} of up to {rows:,} rows"])
    exact = None
    if len(keep):
        exact = pd.DataFrame({schema.ID: frame[schema.ID].iloc[keep].reset_index(drop=True), **kept}, copy=False)
    return replace(head, notes=report.notes), report, exact


class _Reading:
    """One pass of :func:`load_validated` over the source: validated batches written into float32 columns."""

    def __init__(self, source, canonical, names, numeric, required, rows, keep, kept):
        self.source, self.canonical, self.names = source, canonical, names
        self.numeric, self.required, self.rows = numeric, required, rows
        self.keep, self.kept = keep, kept

    def into(self, values: dict[str, np.ndarray], percent: frozenset):
        """Validate every batch with the shares in ``percent`` divided by 100, storing the repaired values
        in ``values``; returns the validator, the ids, whether they are integers and the number of batches."""
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow as pa

        from .quality import BatchValidator
        from .sources.columns import column_batches

        validator = BatchValidator(self.source.label, self.numeric, required=self.required, percent_scale=percent)

        def check(ids, columns, offset):
            gathered, repaired = validator.check(ids, columns, offset)
            lo, hi = np.searchsorted(self.keep, [offset, offset + len(ids)])
            for c, v in repaired.items():
                values[c][offset:offset + len(ids)] = v
                self.kept[c][lo:hi] = v[self.keep[lo:hi] - offset]
            return gathered

        ids, running, offset, integer = [], [], 0, True
        # NumPy and pyarrow release the GIL: two batches are checked while the next is read
        with ThreadPoolExecutor(CHECK_THREADS) as pool:
            for batch_ids, columns, integer in column_batches(self.source, self.canonical, self.names, self.rows):
                running.append(pool.submit(check, batch_ids, columns, offset))
                ids.append(batch_ids)
                offset += len(batch_ids)
                while len(running) > CHECK_THREADS:
                    validator.merge(running.pop(0).result())  # in source order: examples are the first rows
            for future in running:
                validator.merge(future.result())
        return validator, pa.chunked_array(ids, type=pa.large_string()), integer, len(ids)


def _distribution(numbers: pd.DataFrame) -> dict:
    """:func:`custseg.quality._distribution`, two columns at a time (its medians sort each column)."""
    from concurrent.futures import ThreadPoolExecutor

    from .quality import _distribution as describe

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        parts = pool.map(lambda c: describe(numbers[[c]]), numbers.columns)
        return {c: d for part in parts for c, d in part.items()}


def _release_arrow_memory() -> None:
    """Hand the batches' freed Arrow buffers back to the system (the pool keeps them for reuse otherwise)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _repeated_ids(ids, frame: pd.DataFrame, label: str) -> str | None:
    """:func:`custseg.quality.validate`'s message about repeated ids (``ids`` holds ``frame``'s, as Arrow
    text without nulls), or ``None`` when every id is unique."""
    import pyarrow.compute as pc

    from .quality import _check_ids

    if len(pc.unique(ids)) == len(ids):
        return None
    try:
        _check_ids(frame[[schema.ID]], label)
    except DataError as exc:
        return str(exc)
    return None


def embed_all(model: Segmenter, frame: pd.DataFrame, rows: int = EMBED_ROWS) -> np.ndarray:
    """Scaled features of every row of ``frame`` as a C-contiguous float32 matrix, computed in blocks.

    Each block goes through the model's compiled feature program
    (:func:`custseg.scoring.feature_program`: :meth:`Segmenter.embed`'s values bit for
    bit, the program ``custseg predict`` scores with), two blocks at a time.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .persist import scoring_model
    from .scoring import feature_program

    program = feature_program(scoring_model(model))
    Z = np.empty((len(frame), len(model.feature_names_out_)), dtype=np.float32)
    columns = [frame[c].to_numpy() for c in program.columns]

    def embed(start: int) -> None:
        block = np.stack([v[start:start + rows] for v in columns]).astype(np.float64)
        Z[start:start + rows] = program.embed(block).T

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        list(pool.map(embed, range(0, len(frame), rows)))
    return Z


def write_segments(result, path: Path) -> None:
    """``segments.csv`` of a large run: the columns of :meth:`custseg.run.RunResult.segments_table`."""
    import pyarrow as pa

    names = pa.array([n.name for n in result.names], type=pa.string())
    table = pa.table({
        "customer_id": pa.array(result.portfolio.frame[schema.ID], type=pa.string()),
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
                  progress: Progress | None = None, reference: tuple[Segmenter, dict] | None = None,
                  sample: pd.DataFrame | None = None):
    """The computing stages of :func:`custseg.run.segment` for a validated portfolio above ``sample_size``.

    With ``reference`` (a loaded model and its state, ``run --reference``) the final
    segments are matched to the reference's as in a small run and numbered by identity.
    ``sample`` holds the rows at :func:`sample_rows` at full precision
    (:func:`load_validated`'s ``kept``); without it they are taken from the float32 frame.
    Returns a :class:`custseg.run.RunResult` whose model holds every customer's segment.
    """
    from .drift import training_bins
    from .features import required_columns
    from .quality import _check_distinct
    from .run import (RunResult, by_number, match_reference, named_by_identity, projection, segment_numbers,
                      segmenter_for, silhouettes)
    from .summary import insights

    from .engine.chunked import ChunkedEngine

    frame = portfolio.frame
    take = sample_rows(len(frame), config.sample_size, config.seed)
    sample = frame.iloc[take].reset_index(drop=True) if sample is None else sample
    _check_distinct(sample.drop(columns=schema.ID), required_columns(config.features), config.largest_k,
                    portfolio.source)
    # the in-memory default gains nothing on a sample of 50,000 and its k-means++ seeding dominates there
    config = config.with_(engine="chunked") if config.engine == "sklearn" else config
    model = segmenter_for(config).fit(sample, progress=progress)
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
            f"customers; the segments were then fitted on all {len(frame):,} from the sample's centres. "
            "Sizes, profiles and the segment of every customer cover everyone; names, value and risk, actions, "
            "rules, the data overview and the figures are computed on the sample.")
    model.selection_ = replace(model.selection_, reason=f"{model.selection_.reason} {note}")
    quality = replace(quality, notes=[*quality.notes, note])
    Zs = model.embed(sample)  # the sample's features at full precision: what predict computes
    del Z  # everyone's features are no longer needed: the profiles below use their memory
    stability = bootstrap_stability(Zs, numbered[take], n_boot=config.n_boot, random_state=config.seed,
                                    engine=config.engine, progress=progress)
    profiles = by_number(profile_all(frame, labels, model.n_clusters_), numbers)
    names, identities = named_by_identity(name_segments(sample, labels[take], model.n_clusters_), centres,
                                          identities)
    # names, value, risk and rules describe the sample (counted by model position)
    found = insights(sample, labels[take], Zs, centres, float(np.dot(distances[take], distances[take])),
                     stability.segments, names=[replace(n, segment=position + 1) for position, n in enumerate(names)],
                     random_state=config.seed, numbers=numbers)
    # binned on the sample's full-precision values and features: what predict bins, to the last bit
    features = pd.DataFrame(Zs, columns=list(model.feature_names_out_))
    bins = training_bins(sample[list(model.required_columns_)], features, distances=distances[take])
    return RunResult(config, portfolio, quality, model, stability, profiles, names, distances, found,
                     projection(Zs, numbered[take], centres, config.seed,
                                features=[str(f) for f in model.feature_names_out_]),
                     identities=identities, reference=matched, training_distribution=bins,
                     silhouettes=silhouettes(Zs, numbered[take], config.seed), sample=take)


def profile_all(frame: pd.DataFrame, labels: np.ndarray, n_segments: int, rows: int = EMBED_ROWS):
    """:func:`custseg.profiles.profile` of every customer, within a few columns' memory.

    The same statistics (means skip missing values, exact medians, ratios to the
    portfolio mean) in the same layout. Each variable is summarised on its own, two at
    a time: a derived measure is computed from its source columns when its turn comes
    (the operations of :func:`custseg.profiles.profile`), and its values are grouped
    by one sort of the labels.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .features import FEATURES, _compute
    from .profiles import MEASURES, STATISTICS, Profiles, _has_sources

    raw = [c for c in schema.BEHAVIOUR if c in frame.columns]
    variables = raw + [m for m in MEASURES if _has_sources(m, raw)]
    # a stable sort of small integers is a radix sort: the same order, a fraction of the time
    order = np.argsort(labels.astype(np.int16 if n_segments < 2**15 else np.int64), kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_segments + 1))

    def values_of(var: str) -> np.ndarray:
        if var in raw:  # as read (float32): grouped and partitioned at half the memory of float64
            return frame[var].to_numpy()
        values = np.empty(len(frame))
        for start in range(0, len(frame), rows):  # in row blocks: the float64 intermediates stay small
            sources = {c: frame[c].to_numpy()[start:start + rows].astype(np.float64) for c in FEATURES[var].sources}
            missing = np.logical_or.reduce([np.isnan(v) for v in sources.values()])  # a missing input
            values[start:start + rows] = np.where(missing, np.nan, _compute(var, pd.DataFrame(sources)).to_numpy())
        return values

    def summary(var: str):
        values = values_of(var)
        grouped = values[order]
        seg = [_mean_median(grouped[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]
        mean, median = np.array([m for m, _ in seg]), np.array([m for _, m in seg])
        overall_mean, overall_median = _mean_median(values)
        ratio = mean / overall_mean if overall_mean != 0 and not np.isnan(overall_mean) else np.full(n_segments, np.nan)
        return (mean, median, ratio), (overall_mean, overall_median)

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        found = dict(zip(variables, pool.map(summary, variables)))
    index = pd.RangeIndex(1, n_segments + 1, name="segment")
    columns = pd.MultiIndex.from_tuples([(v, s) for v in variables for s in STATISTICS])
    table = pd.DataFrame({(v, s): found[v][0][j] for v in variables for j, s in enumerate(STATISTICS)}, index=index)
    table.columns = columns
    size = np.diff(bounds)
    sizes = pd.DataFrame({"size": size.astype(int), "share": size / max(len(frame), 1)}, index=index)
    portfolio = pd.DataFrame({v: found[v][1] for v in variables}, index=["mean", "median"]).T
    return Profiles(sizes, table, portfolio)


def _mean_median(values: np.ndarray) -> tuple[float, float]:
    """Mean and exact median of the values that are not missing, as float64 ``mean`` and ``median`` give them."""
    kept = values[~np.isnan(values)]  # a copy, so the median may reorder it
    n = len(kept)
    if not n:
        return np.nan, np.nan
    mean = float(kept.astype(np.float64, copy=False).mean())
    middle = n // 2
    if n % 2:
        kept.partition(middle)
        return mean, float(kept[middle])
    kept.partition((middle - 1, middle))
    return mean, (float(kept[middle - 1]) + float(kept[middle])) / 2
