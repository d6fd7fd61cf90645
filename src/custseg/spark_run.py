"""``custseg run --engine spark``: a whole run on a portfolio that lives in Spark.

It mirrors a large run (:mod:`custseg.large`), with Spark doing what must see every
customer and the product's ordinary code doing the rest on a driver sample:

1. read Parquet or a table into Spark, headers matched to the schema
   (:meth:`SparkEngine.read <custseg.engine.spark.SparkEngine.read>`);
2. check every customer in Spark for the refusals of :func:`custseg.quality.validate`
   and count the values its repairs and imputations change (:func:`check_frame`: one
   aggregation pass);
3. bring a deterministic sample of ``sample_size`` customers to the driver
   (:func:`custseg.engine.spark.sample_frame`) and validate it with the local rules: the
   0-100 scale decisions and the quality report come from the sample, with the counts of
   missing and repaired values of everyone (:func:`counted_on_everyone`);
4. fit the :class:`~custseg.segmenter.Segmenter` on the sample (features, evidence, choice
   of k, restarts) with the engine a local run would use on that many customers;
5. in Spark: repair every row (:func:`~custseg.engine.spark.repaired_frame`), compute the
   features from the sample's pipeline state and move the sample's centres to the whole
   portfolio's fixed point (:meth:`~custseg.engine.spark.SparkEngine.refine`); segments
   are renumbered by their size among everyone, or, with a reference model (``--reference``),
   matched to its segments on the driver (:func:`custseg.run.match_reference`: the new
   segments' centres in the reference's feature space are the means of the sample's
   customers) and numbered by identity;
6. in Spark: every customer's segment and distance (brought to the driver for
   ``segments.csv``) and the profiles (:meth:`~custseg.engine.spark.SparkEngine.profile_frame`);
7. on the driver sample, against the final centres: stability, names, value, risk,
   actions, rules, drift bins, the projection and the silhouettes.

The result is a :class:`custseg.run.RunResult`, so the folder and store sinks write
the same files as for a local run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import schema, seeds
from .errors import CustsegError, DataError
from .features import required_columns
from .load import Portfolio
from .progress import Progress
from .progress import describe as describe_progress
from .quality import FOOTER_IDS, MAX_EXAMPLES, MAX_MAGNITUDE, NEGATIVE_CONVENTION_ROWS, PERCENT_SCALE_SHARE, \
    SHARE_OVERSHOOT, Finding, QualityReport, validate
from .persist import load_model
from .run import (RunResult, _check_reference_columns, by_number, match_reference, named_by_identity, neighbour_map,
                  projection, segment_numbers, segmenter_for, silhouettes)
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import DataFrame

    from .engine.spark import SparkEngine


@dataclass
class SampledPortfolio(Portfolio):
    """A portfolio known on the driver by a sample: ``frame`` holds the sample, ``len`` counts everyone.

    Attributes
    ----------
    population : int
        Customers in the whole portfolio (in Spark).
    """

    population: int = 0

    def __len__(self) -> int:
        return self.population


@dataclass
class SparkRunResult(RunResult):
    """A :class:`~custseg.run.RunResult` whose model, labels and distances are the driver sample's.

    ``assignments`` is every customer's row of ``segments.csv`` (computed in Spark);
    ``fingerprint`` identifies the whole portfolio (computed in Spark, see :func:`check_frame`).
    """

    assignments: pd.DataFrame | None = None
    fingerprint: str = ""

    def segments_table(self) -> pd.DataFrame:
        return self.assignments

    def training_info(self) -> dict:
        return {"source": self.portfolio.source, "n_customers": len(self.portfolio), "fingerprint": self.fingerprint}


def open_spark_input(data=None, sql: str | None = None, table: str | None = None, db=None, params=None) -> str:
    """What ``custseg run --engine spark`` reads: the Parquet path ``data`` or the Spark catalog's ``table``.

    Raises
    ------
    CustsegError
        Database flags (``--sql``, ``--db``, ``--param``), or not exactly one of ``data`` and ``table``.
    """
    if sql is not None or db is not None or params:
        raise CustsegError("--engine spark reads Parquet data (DATA: a file, a folder or a URL such as "
                           "s3a://bucket/path) or a table of Spark's catalog (--table NAME); --sql, --db and "
                           "--param are for databases read without Spark.")
    if (data is None) == (table is None):
        raise CustsegError("Give the customers either as Parquet data (DATA) or as a table of Spark's catalog "
                           "(--table NAME): exactly one of the two.")
    return str(data if data is not None else table)


def spark_engine(settings: Settings) -> SparkEngine:
    """The Spark engine of a run: ``settings.spark_master``, driver samples of ``settings.sample_size``."""
    from .engine.spark import SparkEngine

    return SparkEngine(settings.spark_master, sample_rows=settings.sample_size)


def segment_spark(source, config: Settings, *, name: str | None = None,
                  progress: Progress | None = None, engine: SparkEngine | None = None) -> SparkRunResult:
    """The computing stages of :func:`custseg.run.segment` with ``config.engine == "spark"``.

    Parameters
    ----------
    source : str, Path, pandas or Spark DataFrame
        Parquet data (a file, a folder or any URL Spark reads) or a table or view name
        of Spark's catalog; a DataFrame is handed to Spark as it is.
    config : Settings
    name : str, optional
        How messages and the report call the source (default: the path or table name).
    engine : SparkEngine, optional
        Default: :func:`spark_engine` of ``config``.

    With ``config.reference`` the segments are matched to the reference model's and
    numbered and named by identity, as in a local run.

    Raises
    ------
    DataError
        What :func:`custseg.quality.validate` refuses (:func:`check_frame`), or data
        without a column the reference model needs.
    """
    reference = None if config.reference is None else load_model(config.reference)
    engine = engine or spark_engine(config)
    required = tuple(required_columns(config.features))
    describe_progress(progress, "reading with Spark")
    label, table = _read(engine, source, name, required)
    config = config.with_(spark_master=engine.running_master)  # the master in use is what the run records
    if reference is not None:
        _check_reference_columns(Portfolio(pd.DataFrame(columns=table.columns), label), reference[0],
                                 config.reference)
        required = tuple(dict.fromkeys(required + tuple(reference[0].required_columns_)))
    checked = check_frame(table, label, required=required, min_rows=2 * config.largest_k)
    n, fingerprint = checked.n_rows, checked.fingerprint

    describe_progress(progress, "validating a driver sample")
    from .engine.spark import repaired_frame, sample_frame

    raw = sample_frame(table, config.sample_size, seeds.derive(config.seed, "spark-sample"))
    sample, quality = validate(SampledPortfolio(raw, label, population=n, path=_local_path(source)),
                               required=required, min_rows=min(2 * config.largest_k, len(raw)),
                               min_distinct=config.largest_k)
    note = _sample_note(len(raw), n, config)
    percent = [f.column for f in quality.findings if f.check == "percent_scale"]
    quality = replace(counted_on_everyone(quality, checked, percent), notes=[*quality.notes, note])

    # on the sample, the engine a local run would choose for that many customers
    local = "chunked" if n > config.sample_size else "sklearn"
    model = segmenter_for(config.with_(engine=local)).fit(sample.frame, progress=progress)
    model.selection_ = replace(model.selection_, reason=f"{model.selection_.reason} {note}")

    describe_progress(progress, "fitting everyone in Spark")
    full = repaired_frame(table, percent_scaled=percent)
    fit, _ = engine.refine(full, model.pipeline_, model.cluster_centers_)
    Z = model.embed(sample.frame)
    model.core_.cluster_centers_ = model.cluster_centers_ = np.ascontiguousarray(fit.centres)
    model.core_.labels_ = model.labels_ = model.nearest(Z)[0]
    model.core_.inertia_ = model.inertia_ = float(fit.inertia)
    model.core_.n_iter_ = int(fit.n_iter)
    identities = matched = None
    if reference is not None:  # matched on the driver sample; puts the segments in the order of their numbers
        identities, matched = match_reference(model, sample.frame, *reference, config.reference)
    centres = model.cluster_centers_
    segmented = engine.segment_frame(full, model.pipeline_, centres)
    everyone = segmented.select(schema.ID, "segment", "distance").toPandas()
    numbers = segment_numbers(model.n_clusters_, identities)
    profiles = by_number(engine.profile_frame(segmented, "segment", len(centres)), numbers)
    labels, distances = model.nearest(Z)
    return _describe_sample(config, sample, quality, model, Z, labels, distances, profiles, everyone, fingerprint,
                            progress, identities=identities, reference=matched)


def _describe_sample(config, sample, quality, model, Z, labels, distances, profiles, everyone, fingerprint,
                     progress, *, identities=None, reference=None) -> SparkRunResult:
    """Stability, names, insights and the report's views, on the driver sample against the final centres.

    ``identities`` (with ``reference``, the matching's summary) number the segments as a run with
    ``--reference`` does; without them, segment *i* is number *i + 1*.
    """
    from .drift import training_bins
    from .naming import name_segments
    from .score import assignments
    from .stability import bootstrap_stability
    from .summary import insights

    frame, centres, k = sample.frame, model.cluster_centers_, model.n_clusters_
    numbers = segment_numbers(k, identities)
    numbered = numbers[labels] - 1  # 0-based labels whose number + 1 is the segment's number in every output
    stability = bootstrap_stability(Z, numbered, n_boot=config.n_boot, random_state=config.seed,
                                    engine=model.engine, progress=progress)
    names, identities = named_by_identity(name_segments(frame, labels, k), centres, identities)
    # the rules' fidelity is measured against the sample's own inertia, on the sample's features
    found = insights(frame, labels, Z, centres, float(np.dot(distances, distances)), stability.segments,
                     names=[replace(n, segment=position + 1) for position, n in enumerate(names)],
                     random_state=config.seed, numbers=numbers)
    features = [str(f) for f in model.feature_names_out_]
    bins = training_bins(frame[list(model.required_columns_)], pd.DataFrame(Z, columns=features, index=frame.index),
                         distances=distances)
    table = assignments(everyone[schema.ID], everyone["segment"].to_numpy(dtype=np.int64),
                        everyone["distance"].to_numpy(dtype=np.float64), [n.name for n in names], numbers=numbers)
    return SparkRunResult(config, sample, quality, model, stability, profiles, names, distances, found,
                          projection(Z, numbered, centres, config.seed, features=features),
                          identities=identities, reference=reference, training_distribution=bins,
                          silhouettes=silhouettes(Z, numbered, config.seed),
                          neighbours=neighbour_map(Z, numbered, config.seed) if config.tsne else None,
                          assignments=table, fingerprint=fingerprint)


#: The findings of :func:`custseg.quality.validate` that :func:`counted_on_everyone` counts on every customer.
EVERYONE_CHECKS = ("percent_scale", "above_one", "negative", "out_of_range", "missing")
_ROW_EXAMPLE = re.compile(r"^row \d+ \((.*)\)$")


def counted_on_everyone(report: QualityReport, checked: Checked, percent: list[str]) -> QualityReport:
    """The driver sample's quality ``report`` with every repair and imputation counted on every customer.

    The findings :data:`EVERYONE_CHECKS` (shares on a 0-100 scale, above 1 or negative
    values, out-of-range limits and tenures, missing values) and the missing counts come
    from :func:`check_frame`'s pass over everyone, worded as :func:`custseg.quality.validate`
    words them, with the 0-100 decisions ``percent`` taken on the sample. Their examples,
    and the other findings (consistency, facts, shape) and the distribution, are the
    sample's; examples name customers by id (a table has no row order). When the sample
    is everyone the report is ``validate``'s, examples aside.
    """
    sample = {(f.check, f.column): f for f in report.findings}
    n = checked.n_rows

    def finding(check: str, severity: str, count: int, rule: str, column: str) -> Finding:
        kept = sample.get((check, column))
        return Finding(check, severity, int(count), rule, column, kept.examples if kept else [])

    counted = []
    for c, s in checked.columns.items():
        scale = 100.0 if c in percent else 1.0
        if c in percent:
            counted.append(finding("percent_scale", "repaired", s.values,
                                   f"{c} is on a 0–100 scale ({s.above_one} of {s.positive} non-zero values above 1, "
                                   f"max {s.maximum:g}); divided by 100", c))
        high = s.above_100 if c in percent else s.above_one
        if high:
            counted.append(finding("above_one", "repaired", high,
                                   f"{c} above 1 (max {s.maximum / scale:g}) clipped to 1", c))
        if s.negative:
            counted.append(finding("negative", "repaired", s.negative,
                                   f"negative {c} (min {s.minimum / scale:g}) set to 0", c))
    for c, rule in (("CREDIT_LIMIT", "CREDIT_LIMIT of 0 treated as missing"),
                    ("TENURE", "TENURE below 1 month treated as missing")):
        if c in checked.columns and checked.columns[c].values > checked.columns[c].usable:
            counted.append(finding("out_of_range", "repaired", checked.columns[c].values - checked.columns[c].usable,
                                   rule, c))
    missing = {c: n - s.values for c, s in checked.columns.items()}
    counted += [finding("missing", "imputed", count, f"{c} empty; imputed by the feature pipeline", c)
                for c, count in missing.items() if count]
    findings = [*counted, *(f for f in report.findings if f.check not in EVERYONE_CHECKS)]
    findings = [replace(f, examples=[_ROW_EXAMPLE.sub(r"customer \1", e) for e in f.examples]) for f in findings]
    return replace(report, n_rows=n, missing=missing, findings=findings)


def _sample_note(rows: int, n: int, config: Settings) -> str:
    where = f"Spark ({config.spark_master})"
    if rows >= n:
        return (f"Computed with {where}: all {n:,} customers were brought to the driver to choose k and "
                "test stability; the segments were then refined on all of them in Spark.")
    return (f"Computed with {where}: every customer was checked for the refusals in Spark; k was chosen, "
            f"stability tested on a driver sample of {rows:,} of the {n:,} customers; the segments were then "
            f"fitted on all {n:,} in Spark from the sample's centres. Sizes, profiles, the segment of every "
            "customer and the data-quality counts of missing and repaired values cover everyone; the other "
            "data-quality facts (inconsistent values, shape, distribution), the examples, names, value and risk, "
            "actions, rules and the figures of the data are computed on the sample.")


def _local_path(source) -> Path | None:
    if isinstance(source, (str, Path)) and Path(source).exists():
        return Path(source)
    return None


def _read(engine: SparkEngine, source, name: str | None, required) -> tuple[str, DataFrame]:
    """The canonical Spark frame of ``source`` and how messages call it; the id as text, as :func:`load` reads it."""
    session = engine.session  # first: a missing PySpark or Java is explained here
    from pyspark.sql import DataFrame as SparkFrame

    from .engine.spark import canonical_frame

    needed = (schema.ID, *required)
    if isinstance(source, (str, Path)):
        label = name or str(source)
        frame = engine.read(str(source), required=needed)
    elif isinstance(source, (pd.DataFrame, SparkFrame)):
        label = name or "<DataFrame>"
        given = session.createDataFrame(source) if isinstance(source, pd.DataFrame) else source
        frame = canonical_frame(given, label, required=needed)
    else:
        raise CustsegError(f"--engine spark reads Parquet data, a Spark table or a DataFrame, not "
                           f"{type(source).__name__}; for a database, read it without Spark or load it into "
                           "Spark's catalog.")
    from pyspark.sql import functions as F

    return label, frame.withColumn(schema.ID, F.col(schema.ID).cast("string"))


# ---------------------------------------------------------------- validation in Spark

@dataclass(frozen=True)
class ColumnCounts:
    """One numeric column over every customer, as read (before any repair): what the repairs count.

    ``usable`` (values above 0 for ``CREDIT_LIMIT``, of 1 or more for ``TENURE``) is ``None``
    for other columns; ``positive``, ``above_one``, ``above_100`` and ``maximum`` are ``None``
    for columns that are no share.
    """

    values: int
    negative: int
    minimum: float | None
    usable: int | None
    positive: int | None
    above_one: int | None
    above_100: int | None
    maximum: float | None


@dataclass(frozen=True)
class Checked:
    """What :func:`check_frame` learnt of every customer.

    Attributes
    ----------
    n_rows : int
    fingerprint : str
        SHA-256 of the columns and the order-independent sum of every row's 64-bit hash.
    columns : dict of str to ColumnCounts
        Every numeric column, in the frame's order.
    """

    n_rows: int
    fingerprint: str
    columns: dict


def check_frame(frame: DataFrame, label: str, *, required=schema.BEHAVIOUR, min_rows: int = 1) -> Checked:
    """Refuse in Spark what :func:`custseg.quality.validate` refuses, over every customer.

    One aggregation pass checks: no rows; text in a numeric column; footer or summary
    rows; empty or repeated customer ids; infinite or implausible magnitudes; a required
    column without any value, or whose every value is invalid (``CREDIT_LIMIT`` 0,
    ``TENURE`` below 1); fewer rows than ``min_rows``; a column negative in most rows
    (another sign convention); a share far above 1 that is not on a 0-100 scale. The
    thresholds are :mod:`custseg.quality`'s. Tables have no row order, so messages name
    customers by id where a local run names rows. Fewer distinct customers than k is
    checked on the driver sample (:func:`custseg.quality.validate`).

    The same pass counts what the repairs and imputations of :func:`custseg.quality.validate`
    change (:class:`ColumnCounts`; see :func:`counted_on_everyone`).

    Returns
    -------
    Checked

    Raises
    ------
    DataError
        For the first refusal found, naming ``label``, the column and example customers.
    """
    from pyspark.sql import functions as F

    from .engine.spark import _column

    ids = _column(schema.ID)
    numeric = [c for c in frame.columns if c != schema.ID]
    types = dict(frame.dtypes)
    texts = [c for c in numeric if types[c] == "string"]
    value = {c: _number(c) for c in numeric}
    # ANSI casts refuse bad text: a text column is read with try_cast (text that is no number becomes missing)
    bad_text = {c: (F.trim(_column(c)) != "") & _number(c).isNull() & _column(c).isNotNull() for c in texts}
    footer = F.regexp_replace(F.lower(F.trim(ids)), ":+$", "").isin(*FOOTER_IDS)
    blank = F.lit(True)
    for c in numeric:
        blank = blank & value[c].isNull()
    magnitude = {c: F.abs(value[c]) > F.lit(MAX_MAGNITUDE.get(schema.BY_NAME[c].kind, float("inf")))
                 for c in numeric}
    usable = {"CREDIT_LIMIT": lambda v: v > 0, "TENURE": lambda v: v >= 1}
    shares = [c for c in numeric if schema.BY_NAME[c].kind in ("frequency", "share")]

    def count(condition) -> object:
        return F.sum(F.when(condition, 1).otherwise(0))

    aggs = [F.count(F.lit(1)).alias("n"), count(ids.isNull()).alias("null_id"),
            count(footer & ids.isNotNull()).alias("footer_id"), count(blank).alias("blank"),
            F.sum(F.xxhash64(*[_column(c) for c in frame.columns]).cast("decimal(38,0)")).alias("hash")]
    for i, c in enumerate(numeric):
        v = value[c]
        aggs += [count(magnitude[c]).alias(f"big{i}"), F.count(v).alias(f"values{i}"),
                 count(v < 0).alias(f"neg{i}"), count(v != 0).alias(f"nonzero{i}"), F.min(v).alias(f"min{i}")]
        if c in texts:
            aggs.append(count(bad_text[c]).alias(f"text{i}"))
        if c in shares:
            aggs += [count(v > 0).alias(f"pos{i}"), count(v > 1).alias(f"above{i}"), F.max(v).alias(f"max{i}"),
                     count(v > SHARE_OVERSHOOT).alias(f"far{i}"), count(v > 100).alias(f"hundred{i}")]
        if c in usable:
            aggs.append(count(usable[c](F.greatest(v, F.lit(0.0)))).alias(f"usable{i}"))
    row = frame.agg(*aggs).collect()[0].asDict()
    n = int(row["n"])

    def examples(condition, column: str | None = None) -> str:
        shown = [ids] + ([_column(column)] if column else [])
        found = frame.filter(condition).select(*shown).limit(MAX_EXAMPLES).collect()
        return ", ".join(f"customer {_quote(r[0])}" + (f" ({_quote(r[1])})" if column else "") for r in found)

    if n == 0:
        raise DataError(f"{label} has a header but no customer rows; there is nothing to segment.")
    problems = [f"column {c} holds text where a number is expected in {row[f'text{i}']:,} row(s): "
                f"{examples(bad_text[c], c)}" for i, c in enumerate(numeric) if row.get(f"text{i}")]
    if problems:
        raise DataError(f"{label}: " + "; ".join(problems[:3]) + ". Fix or remove these values and run again.")
    if row["blank"] == n:
        raise DataError(f"{label}: every numeric value is empty; there is nothing to segment. "
                        "Check that the export holds the data and not only the customer ids.")
    if row["footer_id"] or row["blank"]:
        bad = row["footer_id"] + row["blank"]
        raise DataError(f"{label}: {bad:,} row(s) look like a footer or summary line rather than a customer "
                        f"(an id such as 'Total', or no value in any column): {examples(footer | blank)}. "
                        "Remove them and run again.")
    if row["null_id"]:
        raise DataError(f"{label}: column {schema.ID} is empty in {row['null_id']:,} row(s); "
                        "every customer needs an id.")
    repeated = (frame.groupBy(ids.alias("id")).agg(F.count(F.lit(1)).alias("rows")).filter("rows > 1")
                .agg(F.count(F.lit(1)).alias("ids"), F.sum("rows").alias("rows"), F.min("id").alias("first"))
                .collect()[0])
    if repeated["ids"]:
        raise DataError(f"{label}: column {schema.ID} repeats {repeated['ids']:,} id(s) over {repeated['rows']:,} "
                        f"rows; for example {_quote(repeated['first'])}. Each customer must appear once: remove "
                        "or merge the duplicates.")
    problems = [f"column {c} holds {row[f'big{i}']:,} infinite or implausible value(s) (above "
                f"{MAX_MAGNITUDE.get(schema.BY_NAME[c].kind, float('inf')):g}): {examples(magnitude[c], c)}"
                for i, c in enumerate(numeric) if row[f"big{i}"]]
    if problems:
        raise DataError(f"{label}: " + "; ".join(problems) + ". These are export or unit errors, not customers; "
                        "fix or remove the rows and run again.")
    empty = [c for c in required if c in numeric and not row[f"values{numeric.index(c)}"]]
    if empty:
        raise DataError(f"{label}: column{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                        f"{'have' if len(empty) > 1 else 'has'} no value in any row, so nothing can be learnt "
                        "or imputed from it. Export the column's values (or choose --features that do not need it).")
    if n < min_rows:
        raise DataError(f"{label} has {n} customer rows but this run needs at least {min_rows} "
                        "(two per segment at the largest number of segments evaluated); lower --k-max (and --k) "
                        "or supply more customers.")
    for i, c in enumerate(numeric):
        spec, low = schema.BY_NAME[c], row[f"neg{i}"]
        if c in shares and row[f"max{i}"] is not None and row[f"max{i}"] > SHARE_OVERSHOOT and not (
                row[f"max{i}"] <= 100 and row[f"above{i}"] >= PERCENT_SCALE_SHARE * row[f"pos{i}"]):
            raise DataError(f"{label}: column {c} is a share between 0 and 1, but {row[f'far{i}']:,} value(s) are "
                            f"far above 1 ({examples(value[c] > SHARE_OVERSHOOT, c)}) while most are not, so it "
                            "is neither a 0–1 nor a 0–100 column. Fix these values and run again.")
        if low >= NEGATIVE_CONVENTION_ROWS and low > 0.5 * row[f"nonzero{i}"]:
            raise DataError(f"{label}: column {c} is negative in {low:,} of {row[f'values{i}']:,} rows "
                            f"({examples(value[c] < 0, c)}), but a {spec.kind} is never negative: the export "
                            "writes it with another sign convention. Flip the sign of the column (or fix the "
                            "export) and run again.")
        if c in required and c in usable and not row[f"usable{i}"]:
            raise DataError(f"{label}: column {c} has no usable value: every value is invalid, so nothing can be "
                            "learnt or imputed from it. Check the export of this column.")
    digest = hashlib.sha256("\x1f".join(frame.columns).encode())
    digest.update(f"{n}:{row['hash']}".encode())
    columns = {c: ColumnCounts(values=row[f"values{i}"], negative=row[f"neg{i}"], minimum=row[f"min{i}"],
                               usable=row.get(f"usable{i}"), positive=row.get(f"pos{i}"),
                               above_one=row.get(f"above{i}"), above_100=row.get(f"hundred{i}"),
                               maximum=row.get(f"max{i}"))
               for i, c in enumerate(numeric)}
    return Checked(n, digest.hexdigest(), columns)


def _number(name: str):
    """A column as double, text that is no number and NaN as missing (Spark's ANSI cast would fail on text)."""
    from pyspark.sql import functions as F

    from .engine.spark import _column

    value = _column(name).try_cast("double")
    return F.nanvl(value, F.lit(None).cast("double"))


def _quote(value) -> str:
    from .quality import _quote as quote

    return quote(value)
