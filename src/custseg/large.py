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

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema, seeds
from .errors import DataError
from .load import Portfolio
from .naming import name_segments
from .progress import Progress
from .quality import Finding, QualityReport
from .segmenter import Segmenter
from .settings import Settings
from .stability import bootstrap_stability

#: Rows embedded at a time: bounds the pandas intermediates of the feature pipeline.
EMBED_ROWS = 500_000
#: Rows read and validated at a time by :func:`load_validated`.
VALIDATE_ROWS = 1_000_000
#: Findings whose rule quotes an extreme value: the merged rule is the batch's with the most extreme one.
_EXTREME = {"above_one": max, "negative": min, "purchase_sum_mismatch": max}
_QUOTED = re.compile(r"\((?:max|min|largest gap) ([^)]+)\)")
_ROWS = re.compile(r"\b(rows?) (\d+(?:, \d+)*)")


def is_large(n_customers: int, settings: Settings) -> bool:
    """Whether a run on ``n_customers`` takes the sampled path of this module."""
    return n_customers > settings.sample_size


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample of ``min(size, n)`` of ``n`` rows, without replacement."""
    rng = np.random.default_rng(seeds.derive(seed, "large-sample"))
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def load_validated(source, required: tuple[str, ...], *, rows: int = VALIDATE_ROWS) -> tuple[Portfolio, QualityReport]:
    """Read and validate a large source batch by batch, keeping everyone's values as float32 columns.

    Each batch of ``rows`` rows is checked and repaired by :func:`custseg.quality.validate`
    (the rules, messages and exit codes of a small run; rows in messages count from the
    start of the source). What needs every row is decided on every row: whether a
    share is on a 0–100 scale (before any batch is repaired), repeated ids, required
    columns without a usable value, constant columns, the distribution and the shape
    facts. Findings counted per batch are summed.

    Parameters
    ----------
    source : Source
        The customers (:func:`custseg.sources.open_source`).
    required : tuple of str
        Canonical behaviour columns the run needs.
    rows : int
        Rows per batch.

    Returns
    -------
    portfolio : Portfolio
        ``frame`` holds ``CUST_ID`` (text) and the repaired numeric columns as float32
        (missing values left for the feature pipeline, as after ``validate``).
    report : QualityReport
    """
    from .load import _ids_as_text, _match_headers
    from .quality import _require_columns

    label, n = source.label, source.count()
    chosen, renamed, ignored = _match_headers(source.columns(), label)
    ordered = [c.name for c in schema.COLUMNS if c.name in chosen]
    head = Portfolio(pd.DataFrame(columns=ordered), label, renamed, ignored, [], list(source.notes), source.path)
    _require_columns(head, required)
    percent = _percent_scale(source, chosen, ordered)
    numeric = [c for c in ordered if c != schema.ID]
    values = {c: np.empty(n, dtype=np.float32) for c in numeric}
    ids, reports, integer_ids, start = [], [], True, 0
    for raw in source.batches([chosen[c] for c in ordered], rows=rows):
        raw.columns = ordered
        for f in percent:
            raw[f.column] = _divided(raw[f.column])
        integer_ids = integer_ids and _integer_ids(raw[schema.ID])
        raw[schema.ID] = _ids_as_text(raw[schema.ID])
        part, report = _validated(Portfolio(raw, label), start)
        for c in numeric:
            values[c][start:start + len(part)] = part.frame[c].to_numpy()
        ids.append(part.frame[schema.ID])
        reports.append(report)
        start += len(part)
    frame = pd.DataFrame({schema.ID: pd.concat(ids, ignore_index=True), **values}, copy=False)
    del ids
    _release_arrow_memory()
    _check_whole(frame, required, reports, label)
    notes = [*head.notes, f"customer ids are {'integers' if integer_ids else 'text'}"]
    head = replace(head, frame=frame, empty_ignored=source.empty_columns(ignored), notes=notes)
    report = _merged_run(reports, head, percent, rows)
    return replace(head, notes=report.notes), report


def _release_arrow_memory() -> None:
    """Hand the batches' freed Arrow buffers back to the system (the pool keeps them for reuse otherwise)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _percent_scale(source, chosen: dict[str, str], ordered: list[str]) -> list[Finding]:
    """The shares on a 0–100 scale, decided on every row by the rule of :mod:`custseg.quality`."""
    from .quality import SHARE_OVERSHOOT, _percent_scale as decide

    shares = [c for c in ordered if schema.BY_NAME[c].kind in ("frequency", "share")]
    if not shares:
        return []
    tops = dict.fromkeys(shares, -np.inf)
    for batch in source.batches([chosen[c] for c in shares], rows=VALIDATE_ROWS):
        for c, name in zip(shares, batch.columns):
            tops[c] = max(tops[c], float(np.nan_to_num(pd.to_numeric(batch[name], errors="coerce").max(),
                                                       nan=-np.inf)))
    high = [c for c in shares if tops[c] > SHARE_OVERSHOOT]
    if not high:
        return []
    whole = source.read([chosen[c] for c in (schema.ID, *high)])
    whole.columns = [schema.ID, *high]
    found = [decide(pd.to_numeric(whole[c], errors="coerce").astype("float64"), c, whole[schema.ID], source.label)
             for c in high]
    return [f for f in found if f is not None]


def _divided(column: pd.Series) -> pd.Series:
    """A 0–100 share divided by 100; left as read when it holds text, which validation then refuses."""
    number = pd.to_numeric(column, errors="coerce")
    text = column.astype("string").str.strip()
    if (number.isna() & text.notna() & text.ne("")).any():
        return column
    return number / 100.0


def _validated(part: Portfolio, start: int) -> tuple[Portfolio, QualityReport]:
    """:func:`custseg.quality.validate` of one batch, with rows counted from the start of the source."""
    from .quality import validate

    try:
        part, report = validate(part, required=(), whole=False)
    except DataError as exc:
        raise DataError(_offset(str(exc), start)) from None
    findings = [replace(f, examples=[_offset(e, start) for e in f.examples]) for f in report.findings]
    return part, replace(report, findings=findings)


def _offset(text: str, start: int) -> str:
    """``text`` with every "row N" / "rows N, M" moved on by ``start`` rows."""
    if not start:
        return text
    return _ROWS.sub(lambda m: f"{m.group(1)} " + ", ".join(str(int(r) + start) for r in m.group(2).split(", ")),
                     text)


def _check_whole(frame: pd.DataFrame, required, reports: list[QualityReport], label: str) -> None:
    """The checks of :func:`custseg.quality.validate` that need every row: repeated ids, empty columns."""
    from .quality import _check_empty_columns, _check_ids, _check_unusable_columns

    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pa.array(frame[schema.ID], type=pa.string())
    if ids.null_count or pc.count_distinct(ids).as_py() < len(ids):
        _check_ids(frame[[schema.ID]], label)
    for c in required:
        if np.isnan(frame[c].to_numpy()).all():
            empty = pd.DataFrame({c: [np.nan]})
            if sum(r.missing.get(c, 0) for r in reports) == len(frame):
                _check_empty_columns(empty, [c], label)
            _check_unusable_columns(empty, [c], [f for r in reports for f in r.findings], label)


def _merged_run(reports: list[QualityReport], portfolio: Portfolio, percent: list[Finding],
                rows: int) -> QualityReport:
    """One report for every batch: counts summed, extremes kept, whole-portfolio findings recomputed."""
    from .quality import MAX_EXAMPLES, _constant_findings, _distribution, _shape_findings

    merged: dict[tuple, Finding] = {}
    for report in reports:
        for f in report.findings:
            key = (f.check, f.column, f.severity)
            kept = merged.get(key)
            if kept is None:
                merged[key] = f
                continue
            rule = kept.rule
            if f.check in _EXTREME and _EXTREME[f.check](_quoted(f.rule), _quoted(kept.rule)) != _quoted(kept.rule):
                rule = f.rule
            merged[key] = replace(kept, count=kept.count + f.count, rule=rule,
                                  examples=(kept.examples + f.examples)[:MAX_EXAMPLES])
    frame = portfolio.frame
    numbers = frame.drop(columns=schema.ID)
    constant = [c for c in numbers.columns if np.nanmin(numbers[c].to_numpy(), initial=np.inf) ==
                np.nanmax(numbers[c].to_numpy(), initial=-np.inf)]
    findings = [*percent, *merged.values(), *_constant_findings(numbers[constant]),
                *_shape_findings(numbers, frame[schema.ID])]
    first = reports[0]
    return QualityReport(
        source=first.source, n_rows=len(frame), columns_used=list(frame.columns), renamed=dict(portfolio.renamed),
        ignored=list(portfolio.ignored), empty_ignored=list(portfolio.empty_ignored),
        missing={c: sum(r.missing[c] for r in reports) for c in first.missing},
        notes=[*portfolio.notes, f"validated in {len(reports)} batch{'es' if len(reports) > 1 else ''} of up to {rows:,} rows"],
        findings=findings, distribution=_distribution(numbers))


def _quoted(rule: str) -> float:
    return float(_QUOTED.search(rule).group(1))


def _integer_ids(ids: pd.Series) -> bool:
    """Whether ids are whole numbers, as :mod:`custseg.load` notes it (matched by Arrow, not row by row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_numeric_dtype(ids):
        return True
    text = pa.array(ids.dropna().astype("str"), type=pa.string())
    return pc.all(pc.match_substring_regex(text, r"^\s*\d+\s*$")).as_py() is not False


def embed_all(model: Segmenter, frame: pd.DataFrame, rows: int = EMBED_ROWS) -> np.ndarray:
    """Scaled features of every row of ``frame`` as a C-contiguous float32 matrix, computed in blocks."""
    Z = np.empty((len(frame), len(model.feature_names_out_)), dtype=np.float32)
    for start in range(0, len(frame), rows):
        Z[start:start + rows] = model.embed(frame.iloc[start:start + rows])
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
                  progress: Progress | None = None, reference: tuple[Segmenter, dict] | None = None):
    """The computing stages of :func:`custseg.run.segment` for a validated portfolio above ``sample_size``.

    With ``reference`` (a loaded model and its state, ``run --reference``) the final
    segments are matched to the reference's as in a small run and numbered by identity.
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
    sample = frame.iloc[take].reset_index(drop=True)
    _check_distinct(sample.drop(columns=schema.ID), required_columns(config.features), config.largest_k,
                    portfolio.source)
    # the in-memory default gains nothing on a sample of 100,000 and its k-means++ seeding dominates there
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
    Zs = Z[take].astype(np.float64)
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
    kept = values[~np.isnan(values)]  # a copy, so the median may reorder it
    return float(np.median(kept, overwrite_input=True)) if len(kept) else np.nan

