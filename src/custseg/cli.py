"""The ``custseg`` command line: a thin layer over the library.

Every flag maps to a library option (:class:`custseg.run.RunConfig`,
:func:`custseg.datasets.write_sample`, ...). Exit codes: 0 ok, 2 user error
(bad data, bad flags, refused output folder), 1 a bug (with its traceback).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
import numpy as np

from .errors import CustsegError
from .progress import bar, describe


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


def _run_options(f):
    options = [
        click.option("--k", "k", default="auto", show_default=True, callback=lambda c, p, v: _k_value(v),
                     help="Number of segments, or 'auto' to choose it from the evidence."),
        click.option("--k-min", default=2, show_default=True, type=click.IntRange(min=2),
                     help="Smallest k evaluated."),
        click.option("--k-max", default=10, show_default=True, type=click.IntRange(min=2),
                     help="Largest k evaluated."),
        click.option("--features", default="behaviour", show_default=True,
                     help="Feature set ('behaviour' or 'notebook') or a comma-separated list of feature names."),
        click.option("--seed", default=0, show_default=True, type=int, help="Seed for every random step."),
        click.option("--n-init", default=10, show_default=True, type=click.IntRange(min=1),
                     help="k-means++ restarts per k."),
        click.option("--bootstrap", "n_boot", default=50, show_default=True, type=click.IntRange(min=2),
                     help="Bootstrap refits for the stability of each segment."),
        click.option("--gap-refs", "n_refs", default=10, show_default=True, type=click.IntRange(min=2),
                     help="Reference data sets for the gap statistic."),
        click.option("--force", is_flag=True, help="Replace the contents of a non-empty output folder."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(k, k_min, k_max, features, seed, n_init, n_boot, n_refs):
    from .run import RunConfig

    if k_min > k_max:
        raise UserError(f"--k-min ({k_min}) is larger than --k-max ({k_max}).")
    return RunConfig(k=k, k_min=k_min, k_max=k_max, features=_features_value(features), seed=seed,
                     n_init=n_init, n_boot=n_boot, n_refs=n_refs)


def _segment_and_write(source, out: Path, config, force: bool, quiet: bool, extra_tables=None, name=None):
    from .run import check_out_dir, segment, write_outputs
    from .selection import n_steps

    check_out_dir(out, force, source)
    fixed = config.k if isinstance(config.k, int) else None
    total = n_steps(range(config.k_min, config.k_max + 1), fixed) + config.n_boot + 1
    with bar(total, "segmenting", quiet=quiet) as progress:
        result = segment(source, config, name=name, progress=progress)
        describe(progress, "writing report")
        write_outputs(result, out, force=force, extra_tables=extra_tables)
        progress.update(1)
    return result


def _summary(result, out: Path) -> str:
    sel = result.model.selection_
    lines = [f"{len(result.portfolio):,} customers → {result.model.n_clusters_} segments "
             f"({'clear structure' if sel.clear_structure else 'no clear structure; best available k'})"]
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
@_run_options
def run(data, out, k, k_min, k_max, features, seed, n_init, n_boot, n_refs, force, quiet):
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
    config = _config(k, k_min, k_max, features, seed, n_init, n_boot, n_refs)
    result = _segment_and_write(data, out, config, force, quiet)
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
    from .score import score

    if output.exists() and not force:
        raise UserError(f"{output} exists; pass --force to overwrite it.")
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"{output}: the output must end in .csv or .parquet.")
    table = score(model, data)
    _write_table(table, output)
    counts = table["segment_name"].value_counts(sort=False)
    _say(quiet, f"{len(table):,} customers scored → {output}\n" +
         "\n".join(f"  {name:<40} {n:>9,}" for name, n in counts.items()))


def _write_table(table, output: Path) -> None:
    from .atomic import replacing

    with replacing(output) as tmp:
        if output.suffix.lower() == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, lineterminator="\n")


@cli.command()
@click.option("--rows", "-n", default=10_000, show_default=True, type=click.IntRange(min=1),
              help="Number of customers.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
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
    from .datasets import write_sample

    for path in (output, truth):
        if path is not None and path.exists() and not force:
            raise UserError(f"{path} exists; pass --force to overwrite it.")
    with bar(rows, "generating", quiet=quiet) as progress:
        write_sample(output, rows, seed=seed, quirks=quirks, truth_path=truth, progress=progress)
    _say(quiet, f"{rows:,} customers → {output}")


@cli.command()
@click.option("--out", "-o", default="out-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the outputs.")
@click.option("--rows", "-n", default=20_000, show_default=True, type=click.IntRange(min=100),
              help="Customers in the synthetic portfolio.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for data and model.")
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
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
    from sklearn.metrics import adjusted_rand_score

    from .datasets import generate
    from .run import RunConfig

    frame, truth = generate(rows, seed=seed)
    config = RunConfig(seed=seed)
    truth_table = truth.to_frame().assign(customer_id=frame["CUST_ID"])[["customer_id", "archetype"]]
    result = _segment_and_write(frame, out, config, force, quiet,
                                extra_tables={"portfolio.csv": frame, "truth.csv": truth_table},
                                name=f"synthetic portfolio (custseg demo, seed {seed}; saved as portfolio.csv)")
    ari = adjusted_rand_score(np.asarray(truth), result.labels)
    _say(quiet, _summary(result, out) + f"\nagreement with the true archetypes: ARI {ari:.3f}")


@cli.command("compare-models")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--k", "k", default="auto", show_default=True, callback=lambda c, p, v: _k_value(v),
              help="Segments for the algorithms that take a number ('auto': the k custseg run would choose).")
@click.option("--features", default="behaviour", show_default=True, help="Feature set or comma-separated names.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for every random step.")
@click.option("--bootstrap", "n_boot", default=20, show_default=True, type=click.IntRange(min=2),
              help="Bootstrap refits per algorithm for stability.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Also write comparison.csv and comparison.json to this folder.")
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def compare_models_cmd(data, k, features, seed, n_boot, out, force, quiet):
    """Fit six clustering algorithms on the same features and compare them.

    \b
    KMeans (custseg's default), MiniBatchKMeans, BisectingKMeans, a Gaussian
    mixture, agglomerative Ward (on a sample when large) and HDBSCAN: number of
    segments, silhouette, Calinski-Harabasz, Davies-Bouldin, bootstrap
    stability, noise share, fit time and agreement (ARI) with KMeans.

    \b
    Examples:
      custseg compare-models cards.csv
      custseg compare-models cards.csv --k 6 --out compare/
    """
    from .compare import compare_models
    from .compare import n_steps as compare_steps
    from .selection import n_steps as selection_steps
    from .features import required_columns
    from .jsonio import write_json
    from .load import load
    from .quality import validate
    from .run import check_out_dir
    from .segmenter import Segmenter, needed_rows, single_threaded_kmeans

    if out is not None:
        check_out_dir(out, force, data)
    feats = _features_value(features)
    portfolio, _ = validate(load(data), required=required_columns(feats), min_rows=needed_rows(k, 10))
    total = selection_steps(range(2, 11), k if isinstance(k, int) else None) + compare_steps(n_boot)
    with bar(total, "comparing", quiet=quiet) as progress:
        model = Segmenter(n_clusters=k, features=feats, random_state=seed).fit(portfolio.frame, progress=progress)
        Z = model.embed(portfolio.frame)
        with single_threaded_kmeans():
            table = compare_models(Z, model.n_clusters_, random_state=seed, n_boot=n_boot,
                                   reference_labels=model.labels_, progress=progress)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "comparison.csv", index=False, lineterminator="\n")
        write_json(out / "comparison.json", {"k": model.n_clusters_, "rows": table.to_dict("records")})


def _exit_on_signal(signum, frame):
    # turn a hang-up or kill into an exception so half-written outputs are cleaned up
    raise SystemExit(128 + signum)


def main() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    cli(prog_name="custseg")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
