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
        elif "/" in meta["flag"]:
            options.append(click.option(meta["flag"], fld.name, default=default, help=meta["help"]))
            continue
        elif fld.name == "engine":
            kind, callback = str, None
        else:
            bounds = {key: meta["click"][key] for key in ("min", "max") if key in meta["click"]}
            kind, callback = (click.IntRange(**bounds) if bounds else int), None
        options.append(click.option(meta["flag"], fld.name, default=default, show_default=True, type=kind,
                                    callback=callback, help=meta["help"]))
    for option in reversed(options):
        f = option(f)
    return f


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
        click.echo("data changed before use (details in data_quality.json):\n" +
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
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs (must be empty or absent, unless --force).")
@_settings_options
@_common_options
def run(data, out, force, quiet, **settings):
    """Segment the portfolio in DATA (CSV or Parquet) and write everything to --out.

    \b
    Writes segments.csv, profiles.csv/.json, metrics.json, data_quality.json,
    description.json, model.json, report.html, report.md and figures/.
    Nothing is written if the run fails.

    \b
    Examples:
      custseg run cards.csv --out out
      custseg run cards.parquet --out out --k 5 --seed 7 --force
      custseg run cards.csv --out out --features notebook --bootstrap 100
    """
    from . import run as runs

    config = _settings(**settings)
    with bar(runs.progress_total(config), "segmenting", quiet=quiet) as progress:
        result = runs.run(data, runs.folder_sink(out, data, force=force), config, progress=progress)
    _changes(result.quality)
    _say(quiet, _summary(result, out))


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the assignments (.csv or .parquet).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No summary.")
def predict(model, data, output, force, quiet):
    """Assign the customers in DATA to the segments of a saved MODEL.

    \b
    The output has customer_id, segment, segment_name and distance_to_centre.
    DATA goes through the same validation as in training; a column the model
    needs but DATA lacks is refused.

    \b
    Examples:
      custseg predict out/model.json december.csv -o december_segments.csv
      custseg predict out/model.json december.parquet -o scored.parquet
    """
    from . import run as runs

    table, quality = runs.predict(model, data, output, force=force)
    counts = table["segment_name"].value_counts(sort=False)
    _changes(quality)
    _say(quiet, f"{len(table):,} customers scored → {output}\n" +
         "\n".join(f"  {name:<40} {n:>9,}" for name, n in counts.items()))


@cli.command()
@click.option("--rows", "-n", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Number of customers.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1), help="Random seed.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (.csv or .parquet).")
@click.option("--quirks", is_flag=True, help="Inject the real file's data-quality quirks at their real rates.")
@click.option("--truth", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write each customer's true archetype to this CSV.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sample(rows, seed, output, quirks, truth, force, quiet):
    """Generate a realistic synthetic portfolio with known archetypes.

    \b
    Written in chunks, so millions of rows fit in little memory.

    \b
    Examples:
      custseg sample --rows 20000 -o sample.csv --truth truth.csv
      custseg sample --rows 10000000 -o big.parquet --quirks
    """
    from . import run as runs

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


@cli.command("compare-models")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@_settings_options(exclude=("n_boot",))
@click.option("--bootstrap", "compare_boot", default=20, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap refits per algorithm for the comparison's stability column.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Also write comparison.csv and comparison.json to this folder.")
@_common_options
def compare_models_cmd(data, compare_boot, out, force, quiet, **settings):
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
    with bar(runs.compare_total(config, compare_boot), "comparing", quiet=quiet) as progress:
        _, table = runs.compare(data, config, n_boot=compare_boot, out=out, force=force, progress=progress)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


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
