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
    assert described["custseg"]["config"]["spark_master"] == "local[*]"
    assert f"sample of {SAMPLE_SIZE:,} of the {N_CUSTOMERS:,}" in described["metrics"]["selection"]["reason"]


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


def test_the_command_line_starts_without_pyspark():
    code = ("import sys, custseg.cli; from custseg.settings import Settings; Settings(engine='spark'); "
            "print('pyspark' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.stdout.strip() == "False"
