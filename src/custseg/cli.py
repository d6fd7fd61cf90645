"""The ``custseg`` command line: a thin layer over the library.

Every flag maps to a library option (:class:`custseg.settings.Settings`,
the functions of :mod:`custseg.run`). Exit codes: 0 ok, 2 user error
(bad data, bad flags, refused output folder), 1 a bug (with its traceback).
"""

from __future__ import annotations

import signal
import sys
import warnings
from pathlib import Path

import click

from .errors import CustsegError
from .progress import bar
from .settings import COMPARE_BOOTSTRAP


class UserError(click.ClickException):
    exit_code = 2


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CustsegError as exc:
            raise UserError(str(exc)) from None


def _k_value(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        k = int(value)
    except ValueError:
        raise click.BadParameter("must be 'auto' or a whole number of segments (2 or more)") from None
    if k < 2:
        raise click.BadParameter("must be 'auto' or a whole number of segments (2 or more)")
    return k


def _features_value(value: str):
    return value if "," not in value else [v.strip() for v in value.split(",") if v.strip()]


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        click.echo(text)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="custseg")
def cli():
    """Segment credit-card customers by how they use their cards.

    \b
    Examples:
      custseg demo                                   # synthetic portfolio → out-demo/
      custseg run cards.csv --out out                # segments, profiles, model, report
      custseg predict out/model.json new.csv -o scored.csv
      custseg sample --rows 100000 -o sample.parquet
      custseg compare-models cards.csv --out compare/
      custseg run december.csv --out dec --reference nov/model.json
      custseg compare nov dec --out nov-to-dec
      custseg load-db cards.csv --db duckdb:///cards.duckdb --table cards
      custseg run --table cards --db duckdb:///cards.duckdb --out out --store
      custseg history
    """


def _settings_options(f=None, *, exclude=()):
    """One click option per :class:`~custseg.settings.Settings` field: flag, help and default from there."""
    if f is None:
        return lambda g: _settings_options(g, exclude=exclude)
    from .settings import DEFAULTS, option_fields

    options = []
    for fld in option_fields():
        if fld.name in exclude:
            continue
        meta = fld.metadata
        default = getattr(DEFAULTS, fld.name)
        if fld.name == "k":
            kind, callback = str, lambda c, p, v: _k_value(v)
        elif fld.name == "features":
            kind, callback = str, lambda c, p, v: _features_value(v)
        elif meta["click"].get("path"):
            kind, callback = click.Path(dir_okay=False), None
        elif "/" in meta["flag"]:
            options.append(click.option(meta["flag"], fld.name, default=default, help=meta["help"]))
            continue
        elif isinstance(default, str):  # --engine, --spark-master
            kind, callback = str, None
        else:
            bounds = {key: meta["click"][key] for key in ("min", "max") if key in meta["click"]}
            kind, callback = (click.IntRange(**bounds) if bounds else int), None
        options.append(click.option(meta["flag"], fld.name, default=default, show_default=True, type=kind,
                                    callback=callback, help=meta["help"]))
    for option in reversed(options):
        f = option(f)
    return f


def _source_options(f):
    """--sql / --table / --db / --param: customers from a database instead of the file DATA (see run.open_input)."""
    f = click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                     help="A value for the query's :NAME placeholder, sent as a bound parameter (repeatable); "
                          "whole numbers are sent as integers, decimals as floats, the rest as text.")(f)
    f = click.option("--db", metavar="URL",
                     help="Database to read from: duckdb:///file.duckdb, sqlite:///file.sqlite, "
                          "postgresql://user@host/db, bigquery://project/dataset [default: $CUSTSEG_DB_URL]. "
                          "A password left out comes from $CUSTSEG_DB_PASSWORD; it is never shown.")(f)
    f = click.option("--table", metavar="NAME", help="Read the whole table NAME from --db (with --engine spark: "
                                                      "from Spark's catalog) instead of DATA.")(f)
    return click.option("--sql", metavar="QUERY",
                        help="Read customers from this SELECT on --db instead of DATA.")(f)


def _store_option(f):
    return click.option("--store", is_flag=False, flag_value="", default=None, metavar="[URL]",
                        help="Also record into the segment store at URL; --store alone: $CUSTSEG_STORE_URL or "
                             "~/.local/share/custseg/store.duckdb. Without it, recorded only when "
                             "$CUSTSEG_STORE_URL is set.")(f)


def _read_store_option(f):
    return click.option("--store", metavar="URL",
                        help="The segment store [default: $CUSTSEG_STORE_URL, else "
                             "~/.local/share/custseg/store.duckdb].")(f)


def _recorded(run_id) -> str:
    return "" if run_id is None else f"\nrecorded in the store as run {run_id}"


def _common_options(f):
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")(f)
    return click.option("--force", is_flag=True, help="Replace the contents of a non-empty output folder.")(f)


def _settings(**values):
    from .settings import Settings

    if values["k_min"] > values["k_max"]:
        raise UserError(f"--k-min ({values['k_min']}) is larger than --k-max ({values['k_max']}).")
    return Settings(**values)


def _changes(quality) -> None:
    """What validation repaired or imputed, on standard error (shown even with --quiet: it changes results)."""
    lines = quality.changes()
    if lines:
        click.echo("data changed before use (details in the data-quality output):\n" +
                   "\n".join(f"  {line}" for line in lines), err=True)


def _summary(result, out: Path) -> str:
    sel = result.model.selection_
    lines = [f"{len(result.portfolio):,} customers → {result.model.n_clusters_} segments "
             f"({sel.headline})"]
    stab = result.stability.segments
    for n in result.names:
        size = int(result.profiles.sizes.at[n.segment, "size"])
        lines.append(f"  {n.segment:>2}  {n.name:<40} {size:>9,}  {stab.at[n.segment - 1, 'status']}")
    lines.append(f"outputs in {out}/ (open {out}/report.html)")
    return "\n".join(lines)


@cli.command()
@click.argument("data", required=False, type=click.Path(path_type=str))  # with --engine spark: a folder or URL
@_source_options
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs (must be empty or absent, unless --force).")
@_store_option
@_settings_options
@_common_options
def run(data, sql, table, db, params, out, store, force, quiet, **settings):
    """Segment the portfolio in DATA (CSV or Parquet), or from a database
    (--sql/--table with --db), and write everything to --out.

    \b
    Writes segments.csv, profiles.csv/.json, metrics.json, data_quality.json,
    description.json, model.json, report.html, report.md and figures/.
    With --store the run is also recorded in the segment store: the folder
    and the store record are written together or not at all.
    Nothing is written if the run fails.
    With --engine spark, DATA is Parquet (a file, a folder or a URL Spark
    reads) or --table a table of Spark's catalog (see docs/spark.md).

    \b
    Examples:
      custseg run cards.csv --out out
      custseg run cards.parquet --out out --k 5 --seed 7 --force
      custseg run cards.csv --out out --features notebook --bootstrap 100
      custseg run --table cards --db duckdb:///cards.duckdb --out out --store
      custseg run --db "$URL" --sql 'SELECT * FROM cards WHERE "TENURE" = :t' --param t=12 --out out
      custseg run s3a://bank/cards/2026-10/ --out out --engine spark --spark-master yarn
    """
    from . import run as runs

    config = _settings(**settings)
    if config.engine == "spark":
        from .spark_run import open_spark_input

        source = open_spark_input(data, sql, table, db, params)
    else:
        source = runs.open_input(data, sql, table, db, params)
    sink = runs.run_sink(out, source, force=force, store=store)
    with bar(runs.progress_total(config), "segmenting", quiet=quiet) as progress:
        result = runs.run(source, sink, config, progress=progress)
    _changes(result.quality)
    _say(quiet, _summary(result, out) + _reference_summary(result.reference) + _recorded(getattr(sink, "run_id", None)))


def _reference_summary(reference) -> str:
    """One line on matching to --reference (empty without one)."""
    if reference is None:
        return ""
    line = f"\nmatched to {reference['model']}: {len(reference['matched'])} segment(s) kept their number and name"
    for key in ("new", "vanished"):
        if reference[key]:
            line += f"; {key}: " + ", ".join(f"{s['segment']} {s['name']}" for s in reference[key])
    return line


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_source_options
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the assignments (.csv or .parquet).")
@click.option("--drift-json", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the drift report (PSI per column and feature, customers far from every centre).")
@_store_option
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No summary (drift warnings are still shown).")
def predict(model, data, sql, table, db, params, output, drift_json, store, force, quiet):
    """Assign the customers in DATA to the segments of a saved MODEL.

    \b
    The output has customer_id, segment, segment_name and distance_to_centre.
    DATA goes through the same validation as in training; a column the model
    needs but DATA lacks is refused.

    \b
    Drift: every input column and model feature is compared with its training
    distribution (population stability index, PSI). Columns with PSI >= 0.25
    (drift) or >= 0.1 (watch) are named on standard error, with a hint to
    re-segment, as is a large share of customers far from every centre.

    \b
    Examples:
      custseg predict out/model.json december.csv -o december_segments.csv
      custseg predict out/model.json december.parquet -o scored.parquet --drift-json drift.json
      custseg predict out/model.json --table december --db duckdb:///cards.duckdb -o scored.csv --store
    """
    from . import scoring as batches

    if store is None and sql is None and table is None and db is None and not params and batches.streams(data):
        # a large file, scored batch by batch (without scikit-learn or the run's stages)
        scoring = batches.predict_batches(model, data, output, force=force, drift_json=drift_json)
        counts = scoring.counts
    else:
        from . import run as runs

        source = runs.open_input(data, sql, table, db, params)
        scoring = runs.predict_with_drift(model, source, output, force=force, drift_json=drift_json, store=store)
        counts = scoring.table.groupby(["segment", "segment_name"], sort=True).size()
    _changes(scoring.quality)
    _drift(scoring)
    lines = [f"{counts.sum():,} customers scored → {output}"]
    lines += [f"  {number:>2}  {name:<40} {n:>9,}" for (number, name), n in counts.items()]
    if scoring.drift is not None and scoring.drift.far_share is not None:
        lines.append(f"{scoring.drift.far_share:.1%} of customers are farther from every centre than 99 % of "
                     "the training customers (about 1 % expected)")
    _say(quiet, "\n".join(lines) + _recorded(scoring.run_id))


def _drift(scoring) -> None:
    """Drift warnings on standard error, shown even with --quiet: they say whether the segments still fit."""
    lines = scoring.warnings()
    if lines:
        click.echo("\n".join(lines), err=True)


@cli.command()
@click.option("--rows", "-n", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Number of customers.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1), help="Random seed.")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="File to write (.csv or .parquet); with --months, a folder.")
@click.option("--quirks", is_flag=True, help="Inject the real file's data-quality quirks at their real rates.")
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write each customer's true archetype to this CSV.")
@click.option("--months", type=click.IntRange(min=1),
              help="Write this many consecutive months of the same customers (month_01.csv, ...) into the "
                   "folder -o, with the true moves in truth_moves.csv.")
@click.option("--move-share", default=0.05, show_default=True, type=click.FloatRange(0, 1),
              help="With --months: share of staying customers who move to another archetype each month.")
@click.option("--join-share", default=0.02, show_default=True, type=click.FloatRange(0, 1),
              help="With --months: customers joining each month, as a share of --rows.")
@click.option("--leave-share", default=0.02, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="With --months: share of customers leaving each month.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file (with --months: an earlier "
                                            "sample's folder).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sample(rows, seed, output, quirks, truth, months, move_share, join_share, leave_share, force, quiet):
    """Generate a realistic synthetic portfolio with known archetypes.

    \b
    Written in chunks, so millions of rows fit in little memory.

    \b
    With --months N: N consecutive months of the same customers, in which a
    seeded share moves between archetypes and some join and leave (see
    docs/migration.md); truth_archetypes.csv and truth_moves.csv hold the
    true archetypes and moves.

    \b
    Examples:
      custseg sample --rows 20000 -o sample.csv --truth truth.csv
      custseg sample --rows 10000000 -o big.parquet --quirks
      custseg sample --rows 5000 --months 3 -o months/
    """
    from . import run as runs

    if months is not None:
        if quirks or truth is not None:
            raise UserError("--months writes its own truth files and no quirks; drop --quirks and --truth.")
        runs.make_months(output, rows, months, seed=seed, move_share=move_share, join_share=join_share,
                         leave_share=leave_share, force=force)
        _say(quiet, f"{months} months of {rows:,} customers → {output}/ (true moves in {output}/truth_moves.csv)")
        return
    with bar(rows, "generating", quiet=quiet) as progress:
        runs.make_sample(output, rows, seed=seed, quirks=quirks, truth=truth, force=force, progress=progress)
    _say(quiet, f"{rows:,} customers → {output}")


@cli.command()
@click.option("--out", "-o", default="out-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the outputs.")
@click.option("--rows", "-n", default=20_000, show_default=True, type=click.IntRange(min=100),
              help="Customers in the synthetic portfolio.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seed for data and model.")
@_common_options
def demo(out, rows, seed, force, quiet):
    """Generate a synthetic portfolio, segment it and write the full report.

    \b
    Needs no input: the quickest way to see what custseg produces. The
    portfolio and its true archetypes are written beside the outputs as
    portfolio.csv and truth.csv, and the agreement between the segments and
    the true archetypes (adjusted Rand index) is printed.

    \b
    Examples:
      custseg demo
      custseg demo --out demo --rows 50000 --seed 3 --force
    """
    from . import run as runs
    from .settings import Settings

    with bar(runs.progress_total(Settings(seed=seed)), "segmenting", quiet=quiet) as progress:
        result, ari, ceiling = runs.demo(out, rows=rows, seed=seed, force=force, progress=progress)
    _say(quiet, _summary(result, out) + f"\nagreement with the true archetypes: ARI {ari:.3f} (a classifier "
         f"trained on them, cross-validated: ARI {ceiling:.3f}; custseg reaches {ari / ceiling:.0%} of it)")


@cli.command()
@click.argument("data", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_source_options
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs (must be empty or absent, unless --force).")
@_common_options
def eda(data, sql, table, db, params, out, force, quiet):
    """A first look at a new extract: each column's distribution, missing values, correlations, quality.

    \b
    Writes eda.html (self-contained), eda.md, eda.json and figures/ (PNG and SVG)
    into --out; nothing is segmented. Nothing is written if it fails.

    \b
    Examples:
      custseg eda cards.csv --out first-look
      custseg eda --table cards --db duckdb:///cards.duckdb --out first-look
    """
    from . import run as runs

    source = runs.open_input(data, sql, table, db, params)
    exploration, quality = runs.eda(source, out, force=force)
    _changes(quality)
    _say(quiet, f"{exploration.n_rows:,} customers, {len(exploration.columns)} columns → {out}/ "
                f"(open {out}/eda.html)")


@cli.command("compare-models")
@click.argument("data", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_source_options
@_settings_options(exclude=("n_boot", "reference"))
@click.option("--bootstrap", "compare_boot", default=COMPARE_BOOTSTRAP, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap refits per algorithm for the comparison's stability column.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Also write comparison.csv and comparison.json to this folder.")
@_common_options
def compare_models_cmd(data, sql, table, db, params, compare_boot, out, force, quiet, **settings):
    """Fit six clustering algorithms on the same features and compare them.

    \b
    KMeans (custseg's default), MiniBatchKMeans, BisectingKMeans, a Gaussian
    mixture, agglomerative Ward (on a sample when large) and HDBSCAN: number of
    segments, silhouette, Calinski-Harabasz, Davies-Bouldin, bootstrap
    stability, noise share, fit time and agreement (ARI) with KMeans. The k is
    the one `custseg run` would use with the same settings (--k, --k-min, --k-max, ...).

    \b
    Examples:
      custseg compare-models cards.csv
      custseg compare-models cards.csv --k 6 --out compare/
    """
    from . import run as runs

    config = _settings(**settings)  # n_boot (the run's bootstrap) plays no part in a comparison
    source = runs.open_input(data, sql, table, db, params)
    with bar(runs.compare_total(config, compare_boot), "comparing", quiet=quiet) as progress:
        _, comparison = runs.compare(source, config, n_boot=compare_boot, out=out, force=force, progress=progress)
    click.echo(comparison.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


@cli.command("load-db")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--db", metavar="URL", help="Database to load into [default: $CUSTSEG_DB_URL]; a DuckDB or "
                                          "SQLite file is created if absent.")
@click.option("--table", required=True, metavar="NAME", help="Table to write (NAME or SCHEMA.NAME).")
@click.option("--mode", type=click.Choice(["replace", "append"]), default="replace", show_default=True,
              help="replace: drop a table of that name and create it from the file's columns; "
                   "append: add the rows to it (created if absent).")
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
def load_db(data, db, table, mode, quiet):
    """Load a CSV or Parquet file into a database table, in one transaction.

    \b
    Columns keep the file's names; numbers become DOUBLE/BIGINT, text TEXT.
    If anything fails the table is left exactly as it was.

    \b
    Examples:
      custseg load-db cc_general.csv --db duckdb:///cards.duckdb --table cards
      custseg load-db more.parquet --db "$URL" --table cards --mode append
    """
    from . import run as runs

    rows, where = runs.load_db(data, db, table, mode=mode)
    what = "replaced the table" if mode == "replace" else "appended to the table"
    _say(quiet, f"{rows:,} rows loaded from {data} into {where} (mode {mode}: {what})")


@cli.command()
@_read_store_option
def history(store):
    """List the runs and scorings recorded in the segment store, oldest first.

    \b
    One line each: run id, time (UTC), kind, customers, k, model id, source.

    \b
    Examples:
      custseg history
      custseg history --store postgresql://analyst@db.bank/segments
    """
    from . import run as runs

    label, runs_found = runs.history(store)
    if not runs_found:
        click.echo(f"no runs recorded in {label}")
    for summary in runs_found:
        click.echo(summary.line())


@cli.command()
@click.argument("run_id", metavar="RUN")
@_read_store_option
def show(run_id, store):
    """Print the summary of one stored run (RUN: its id or a unique prefix).

    \b
    Examples:
      custseg show 20261128-154934-a1b2c3
      custseg show 20261128-1549 --store segments.duckdb
    """
    from . import run as runs

    click.echo(_stored_summary(runs.stored_run(run_id, store)))


def _stored_summary(record) -> str:
    lines = [f"run {record.run_id}  ({record.kind}, {record.created_at})",
             f"source       {record.source}",
             f"customers    {record.n_customers:,}",
             f"fingerprint  {record.fingerprint}",
             f"model id     {record.model_id}",
             f"k            {record.k}"]
    settings = ", ".join(f"{k}={v}" for k, v in record.settings.items())
    if settings:
        lines.append(f"settings     {settings}")
    selection = record.metrics.get("selection", {})
    if "clear_structure" in selection:
        clear = selection["clear_structure"]
        lines.append(f"structure    {'clear' if clear else 'no clear structure; best available k'}")
    sizes = record.assignments.groupby(["segment", "segment_name"], sort=True).size()
    status = dict(record.profiles["stability_status"]) if "stability_status" in record.profiles.columns else {}
    lines.append("segments")
    for (number, name), size in sizes.items():
        lines.append(f"  {number:>2}  {name:<40} {size:>9,}  {status.get(number, '')}".rstrip())
    return "\n".join(lines)


@cli.command("report")
@click.argument("run_id", metavar="RUN")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs (must be empty or absent, unless --force).")
@_read_store_option
@click.option("--force", is_flag=True, help="Replace the contents of a folder an earlier custseg run wrote.")
def report_cmd(run_id, out, store, force):
    """Write a stored run's report and files again, from the segment store.

    \b
    The same files the run wrote (segments.csv, profiles, metrics, model.json,
    report.html, report.md, figures/), all or nothing.

    \b
    Examples:
      custseg report 20261128-154934-a1b2c3 --out rerun
    """
    from . import run as runs

    record = runs.report_run(run_id, out, store=store, force=force)
    click.echo(f"run {record.run_id} → {out}/ (open {out}/report.html)")


@cli.command("compare")
@click.argument("before", type=click.Path(path_type=Path))
@click.argument("after", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the comparison (must be empty or absent, unless --force).")
@_common_options
def compare_cmd(before, after, out, force, quiet):
    """How customers moved between segments from BEFORE to AFTER.

    \b
    BEFORE and AFTER are each a run folder, a segments file (segments.csv
    from `custseg run`, or the output of `custseg predict`), or the id of a
    run in the store (CUSTSEG_STORE_URL or the default store). Segments are
    matched by identity (model.json); a later model must have been fitted
    with --reference to the earlier one, or both sides scored by one model.

    \b
    Writes transitions.csv (from_segment, to_segment, customers, row_percent),
    movers.csv, joined.csv, left.csv, net_flow.csv, migration.json, report.html,
    report.md and figures/flow.png. Nothing is written if a side is refused.

    \b
    Examples:
      custseg compare nov/ dec/ --out nov-to-dec
      custseg compare nov/segments.csv dec_scored.csv --out nov-to-dec --force
    """
    from . import run as runs

    migration = runs.compare_runs(before, after, out, force=force)
    _say(quiet, _migration_summary(migration, out))


def _migration_summary(migration, out: Path) -> str:
    counts = migration.to_dict()["customers"]
    lines = [f"{counts['in_both']:,} customers in both: {counts['moved']:,} moved, {counts['stayed']:,} stayed; "
             f"{counts['joined']:,} joined, {counts['left']:,} left (segments matched by {migration.matched_by})",
             "  segment  name                                      before     after       net"]
    for row in migration.net_flow.itertuples(index=False):
        lines.append(f"  {row.segment:>7}  {row.name:<38} {row.before:>9,} {row.after:>9,} {row.net:>+9,}")
    lines.append(f"outputs in {out}/ (open {out}/report.html)")
    return "\n".join(lines)


def _exit_on_signal(signum, frame):
    # turn a hang-up or kill into an exception so half-written outputs are cleaned up
    raise SystemExit(128 + signum)


def main() -> None:
    # Ctrl-C exits 130 (not click's 1, which means a bug); a hang-up or kill cleans up too
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    if not sys.warnoptions:
        # library warnings (convergence, overflow, fonts) are not the user's business: what matters about
        # the data is in data_quality.json; PYTHONWARNINGS=default shows them when debugging
        warnings.simplefilter("ignore")
    cli(prog_name="custseg")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
