"""``custseg run --engine spark`` against ``custseg run``, through the command line, in ``local[2]``.

Needs PySpark and Java: outside CI the module skips with the reason when either is
absent; under ``CI=true`` it fails, because CI installs both. One Spark session serves
the module (a run reuses the session already running in the process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import adjusted_rand_score

from helpers import spark_marks

from custseg.cli import cli
from custseg.datasets import generate

N_CUSTOMERS = 6_000
#: The later month of the --reference test: matched on a driver sample of SAMPLE_SIZE of them.
N_LATER = 4_000
#: Below the portfolio, so the run takes the sampled path: k-means on the sample, Lloyd passes on everyone in Spark.
SAMPLE_SIZE = 2_000
FLAGS = ["--k", "5", "--bootstrap", "4", "--n-init", "4", "--seed", "3", "-q"]
#: Per-segment means of the input columns, in standard deviations of the column: the two runs fit their
#: feature state and start on different customers (all of them locally, a 2,000-customer sample in Spark), so a
#: few border customers change segment.
MEAN_TOLERANCE = 0.05


pytestmark = spark_marks("the Spark run")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from custseg.engine.spark import start_session

    spark = start_session("local[2]", config={
        "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false", "spark.driver.memory": "1g",
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse"))})
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    frame, _ = generate(N_CUSTOMERS, seed=11)
    # a few values for every repair, most of them outside the driver sample
    frame.loc[[5, 900, 4100], "PAYMENTS"] *= -1
    frame.loc[[17, 3000, 5999], "BALANCE_FREQUENCY"] = 1.25
    frame.loc[[40, 2500], "CREDIT_LIMIT"] = 0.0
    frame.loc[[77], "TENURE"] = 0
    path = tmp_path_factory.mktemp("spark-run") / "portfolio.parquet"
    frame.to_parquet(path)
    return frame, path


def _run(*args) -> object:
    return CliRunner().invoke(cli, ["run", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(session, portfolio, tmp_path_factory):
    _, path = portfolio
    folder = tmp_path_factory.mktemp("runs")
    local = _run(path, "--out", folder / "local", *FLAGS)
    spark = _run(path, "--out", folder / "spark", "--engine", "spark", "--sample-size", SAMPLE_SIZE,
                 "--store", f"duckdb:///{folder / 'store.duckdb'}", *FLAGS)
    assert local.exit_code == 0, local.output
    assert spark.exit_code == 0, spark.output
    return folder / "local", folder / "spark", folder / "store.duckdb"


@pytest.fixture(scope="module")
def referenced(runs, tmp_path_factory):
    """A later month segmented with both engines against the local run's model, one segment more than it had."""
    local, _, _ = runs
    frame, _ = generate(N_LATER, seed=12)
    folder = tmp_path_factory.mktemp("referenced")
    frame.to_parquet(folder / "later.parquet")
    flags = ["--reference", local / "model.json", "--k", "6", *FLAGS[2:]]
    ours = _run(folder / "later.parquet", "--out", folder / "spark", "--engine", "spark", "--sample-size",
                SAMPLE_SIZE, *flags)
    theirs = _run(folder / "later.parquet", "--out", folder / "local", *flags)
    assert ours.exit_code == 0, ours.output
    assert theirs.exit_code == 0, theirs.output
    return folder / "spark", folder / "local"


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_spark_run_writes_what_a_local_run_writes(runs, portfolio):
    local, spark, _ = runs
    frame, _ = portfolio
    assert _files(spark) == _files(local)
    segments = pd.read_csv(spark / "segments.csv")
    assert list(segments.columns) == list(pd.read_csv(local / "segments.csv").columns)
    assert segments["customer_id"].tolist() == frame["CUST_ID"].tolist()  # in the file's order
    described = json.loads((spark / "description.json").read_text())
    assert described["training"]["n_customers"] == N_CUSTOMERS
    assert described["custseg"]["config"]["engine"] == "spark"
    assert described["custseg"]["config"]["spark_master"] == "local[2]"  # the session's, not the default
    assert f"sample of {SAMPLE_SIZE:,} of the {N_CUSTOMERS:,}" in described["metrics"]["selection"]["reason"]


def test_the_spark_run_counts_repairs_and_missing_values_on_everyone(runs):
    from custseg.spark_run import EVERYONE_CHECKS

    quality = [json.loads((folder / "data_quality.json").read_text()) for folder in runs[1::-1]]
    counted = [[(f["check"], f["column"], f["count"], f["rule"]) for f in q["findings"]
                if f["check"] in EVERYONE_CHECKS] for q in quality]
    assert {check for check, *_ in counted[1]} == {"above_one", "negative", "out_of_range", "missing"}
    assert counted[0] == counted[1]
    assert quality[0]["missing"] == quality[1]["missing"]
    assert quality[0]["n_rows"] == quality[1]["n_rows"] == N_CUSTOMERS
    examples = [e for f in quality[0]["findings"] for e in f["examples"]]
    assert examples and all(e.startswith("customer ") for e in examples)


def test_spark_and_local_runs_agree(runs, portfolio):
    local, spark, _ = runs
    frame, _ = portfolio
    ours, theirs = (pd.read_csv(folder / "segments.csv") for folder in (spark, local))
    assert adjusted_rand_score(theirs["segment"], ours["segment"]) >= 0.95
    # the profiles count everyone; match segments by their largest overlap, then compare sizes and means
    mapping = pd.crosstab(ours["segment"], theirs["segment"]).idxmax(axis=1)
    assert sorted(mapping) == sorted(theirs["segment"].unique())
    ours_p, theirs_p = (pd.read_csv(folder / "profiles.csv").set_index("segment") for folder in (spark, local))
    assert ours_p["size"].sum() == N_CUSTOMERS
    assert ours_p["size"].tolist() == ours["segment"].value_counts().sort_index().tolist()
    columns = [c for c in frame.columns if c != "CUST_ID"]
    spread = frame[columns].std()
    for segment, matched in mapping.items():
        gap = (ours_p.loc[segment, [f"{c}_mean" for c in columns]].to_numpy()
               - theirs_p.loc[matched, [f"{c}_mean" for c in columns]].to_numpy()) / spread.to_numpy()
        assert np.abs(gap).max() <= MEAN_TOLERANCE
        assert abs(ours_p.at[segment, "size"] - theirs_p.at[matched, "size"]) <= 0.05 * theirs_p.at[matched, "size"]


def test_the_spark_model_scores_everyone_as_spark_assigned_them(runs, portfolio, tmp_path):
    _, spark, _ = runs
    _, path = portfolio
    scored = tmp_path / "scored.csv"
    result = CliRunner().invoke(cli, ["predict", str(spark / "model.json"), str(path), "-o", str(scored), "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    predicted, assigned = pd.read_csv(scored), pd.read_csv(spark / "segments.csv")
    assert predicted["segment"].tolist() == assigned["segment"].tolist()
    assert np.allclose(predicted["distance_to_centre"], assigned["distance_to_centre"], atol=2e-6)


def test_the_spark_run_is_recorded_in_the_store(runs):
    _, spark, store = runs
    result = CliRunner().invoke(cli, ["history", "--store", f"duckdb:///{store}"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{N_CUSTOMERS:,}" in result.output or str(N_CUSTOMERS) in result.output


def test_a_spark_run_with_reference_numbers_segments_as_the_local_run(referenced):
    spark, local = referenced
    ours, theirs = (json.loads((folder / "reference.json").read_text()) for folder in (spark, local))
    for key in ("matched", "new", "vanished"):
        assert [(s["segment"], s["name"]) for s in ours[key]] == [(s["segment"], s["name"]) for s in theirs[key]]
    assert ours["new"], "k = 6 against a 5-segment reference: one segment at least is new"
    assert ours["model_id"] == theirs["model_id"]
    segments = [pd.read_csv(folder / "segments.csv") for folder in (spark, local)]
    assert adjusted_rand_score(segments[1]["segment"], segments[0]["segment"]) >= 0.95
    # each Spark segment's customers are mostly the local segment of the same number and name
    overlap = pd.crosstab(segments[0]["segment"], segments[1]["segment"])
    assert (overlap.idxmax(axis=1) == overlap.index).all()
    named = [s.drop_duplicates("segment").set_index("segment")["segment_name"].sort_index() for s in segments]
    assert named[0].equals(named[1])
    profiles = pd.read_csv(spark / "profiles.csv").set_index("segment")
    assert profiles.index.tolist() == sorted(named[0].index)
    assert profiles["size"].to_dict() == segments[0]["segment"].value_counts().to_dict()


def _broken(kind: str) -> tuple[pd.DataFrame, tuple[str, str]]:
    frame, _ = generate(300, seed=2)
    if kind == "text":
        frame["BALANCE"] = frame["BALANCE"].astype(str)
        frame.loc[7, "BALANCE"] = "n/a"
        return frame, ("BALANCE", "n/a")
    if kind == "duplicate":
        frame.loc[9, "CUST_ID"] = frame.loc[3, "CUST_ID"]
        return frame, (frame.loc[3, "CUST_ID"], "duplicates")
    if kind == "footer":
        frame.loc[len(frame) - 1, "CUST_ID"] = "Total"
        return frame, ("footer", "Total")
    frame["PAYMENTS"] = -frame["PAYMENTS"]
    return frame, ("PAYMENTS", "sign convention")


@pytest.mark.parametrize("kind", ["text", "duplicate", "footer", "sign"])
def test_spark_refuses_what_the_local_run_refuses(session, kind, tmp_path):
    frame, words = _broken(kind)
    path = tmp_path / "broken.parquet"
    frame.to_parquet(path)
    for engine in ("sklearn", "spark"):
        result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / engine), "--engine", engine,
                                          *FLAGS])
        assert result.exit_code == 2, result.output
        assert all(word in result.output for word in words), result.output
        assert not (tmp_path / engine).exists()


def test_database_flags_are_refused_with_spark(session, tmp_path):
    result = CliRunner().invoke(cli, ["run", "--sql", "SELECT 1", "--db", "duckdb:///x.duckdb", "--out",
                                      str(tmp_path / "out"), "--engine", "spark"])
    assert result.exit_code == 2
    assert "--engine spark reads Parquet data" in result.output


def test_compare_models_fits_in_spark_at_the_given_master(session, monkeypatch, tmp_path):
    import custseg.engine.spark as spark_module

    masters = []
    start = spark_module.start_session

    def recorded(master, **kwargs):
        masters.append(master)
        return start(master, **kwargs)  # the module's session is running: Spark hands it back

    monkeypatch.setattr(spark_module, "start_session", recorded)
    frame, _ = generate(150, seed=4)
    frame.to_csv(tmp_path / "cards.csv", index=False)
    result = CliRunner().invoke(cli, ["compare-models", str(tmp_path / "cards.csv"), "--k", "2", "--no-evidence",
                                      "--n-init", "1", "--bootstrap", "2", "--engine", "spark",
                                      "--spark-master", "local[1]", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "KMeans" in result.output
    assert masters and set(masters) == {"local[1]"}


def test_the_documented_spark_submit_recipe_runs(tmp_path):
    """docs/spark.md's spark-submit recipe, with --master local[1]: the run takes spark-submit's master."""
    from pathlib import Path

    submit = Path(sys.executable).parent / "spark-submit"
    if not submit.exists():
        pytest.skip(f"no spark-submit beside {sys.executable} (PySpark installed elsewhere)")
    recipe = "printf 'from custseg.cli import main\\nmain()\\n' > custseg_submit.py"
    assert recipe in (Path(__file__).parents[1] / "docs" / "spark.md").read_text()
    script = tmp_path / "custseg_submit.py"
    script.write_text("from custseg.cli import main\nmain()\n")
    frame, _ = generate(300, seed=5)
    frame.to_parquet(tmp_path / "cards.parquet")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": os.pathsep.join(sys.path)}
    # spark-submit's settings apply too: a few shuffle partitions spare the small run Spark's default 200
    done = subprocess.run([str(submit), "--master", "local[1]", "--deploy-mode", "client", "--driver-memory", "1g",
                           "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.ui.enabled=false",
                           str(script), "run", str(tmp_path / "cards.parquet"), "--out", str(tmp_path / "out"),
                           "--engine", "spark", "--k", "3", "--no-evidence", "--bootstrap", "2", "--n-init", "2", "-q"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    described = json.loads((tmp_path / "out" / "description.json").read_text())
    assert described["custseg"]["config"]["spark_master"] == "local[1]"  # spark-submit's, not local[*]
    assert len(pd.read_csv(tmp_path / "out" / "segments.csv")) == 300


def test_the_command_line_starts_without_pyspark():
    code = ("import sys, custseg.cli; from custseg.settings import Settings; Settings(engine='spark'); "
            "print('pyspark' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.stdout.strip() == "False"
