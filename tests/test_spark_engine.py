"""The Spark engine against the local one, in ``local[2]`` on a synthetic portfolio.

Needs PySpark and Java: outside CI the module skips with the reason when either is
absent; under ``CI=true`` it fails, because CI installs both.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from helpers import spark_marks

from custseg import Segmenter
from custseg.datasets import generate
from custseg.engine.spark import SparkEngine, feature_frame, repaired_frame
from custseg.errors import CustsegError, DataError
from custseg.features import make_pipeline
from custseg.load import from_frame
from custseg.profiles import profile
from custseg.quality import validate

N_CUSTOMERS = 20_000
K = 6
#: Lloyd passes in Spark must move the centres, so the driver sample is kept well below the portfolio.
SAMPLE_ROWS = 3_000
#: Per-segment means of the input columns: Spark's and pandas' sums differ only in the order of addition,
#: and the ARI >= 0.95 bound lets a few border customers change segment, so means may move by 1% of a
#: column's portfolio standard deviation.
PROFILE_TOLERANCE = 0.01


pytestmark = spark_marks("the Spark engine")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    engine = SparkEngine("local[2]", sample_rows=SAMPLE_ROWS, config={
        "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false", "spark.driver.memory": "1g",
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("warehouse"))})
    yield engine
    engine.session.stop()


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    frame, _ = generate(N_CUSTOMERS, seed=11)
    path = tmp_path_factory.mktemp("spark") / "portfolio.parquet"
    frame.rename(columns={"CUST_ID": "customer_id", "MINIMUM_PAYMENTS": "Minimum Payments"}).to_parquet(path)
    return frame, path


@pytest.fixture(scope="module")
def table(engine, portfolio):
    _, path = portfolio
    return engine.read(str(path), required=("BALANCE",)).repartition(3, "CUST_ID").cache()


@pytest.fixture(scope="module")
def local(portfolio):
    frame, _ = portfolio
    # only k = 6 is evaluated, with the fewest gap references: the segments are the same, the evidence is not used
    return Segmenter(n_clusters=K, k_min=K, k_max=K, random_state=0, n_refs=2).fit(frame)


def _by_id(frame: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    return frame.set_index("CUST_ID").loc[ids].reset_index()


def test_read_matches_headers_to_the_schema(engine, table, portfolio):
    frame, _ = portfolio
    assert table.columns == list(frame.columns)
    assert table.count() == len(frame)
    table.createOrReplaceTempView("portfolio_view")
    assert engine.read("portfolio_view").columns == list(frame.columns)


def test_features_match_the_local_pipeline(table, portfolio):
    frame, _ = portfolio
    pipeline = make_pipeline("behaviour").fit(frame)
    spark = _by_id(feature_frame(table, pipeline).toPandas(), frame["CUST_ID"])
    local = pipeline.transform(frame)
    assert list(spark.columns[1:]) == list(pipeline.get_feature_names_out())
    assert np.abs(spark.drop(columns="CUST_ID").to_numpy() - local.to_numpy()).max() <= 1e-9


def test_features_impute_gaps_as_the_local_pipeline(engine, portfolio):
    frame, _ = portfolio
    gappy = frame.head(2_000).copy()
    gappy.loc[::7, "MINIMUM_PAYMENTS"] = np.nan
    gappy.loc[::11, "PAYMENTS"] = np.nan
    gappy.loc[::13, "CREDIT_LIMIT"] = np.nan
    pipeline = make_pipeline("behaviour").fit(frame)
    spark = feature_frame(engine.session.createDataFrame(gappy), pipeline).toPandas()
    assert np.abs(spark.drop(columns="CUST_ID").to_numpy() - pipeline.transform(gappy).to_numpy()).max() <= 1e-9


def test_repairs_match_validation(engine):
    frame, _ = generate(3_000, seed=4, quirks=True)
    frame["PRC_FULL_PAYMENT"] *= 100
    frame.loc[:4, "BALANCE"] = -5.0
    frame.loc[5:9, "TENURE"] = 0.0
    clean, report = validate(from_frame(frame, "quirky", []))
    percent = [f.column for f in report.findings if f.check == "percent_scale"]
    assert percent == ["PRC_FULL_PAYMENT"]
    spark = repaired_frame(engine.session.createDataFrame(frame), percent_scaled=percent).toPandas()
    assert list(spark.columns) == list(clean.frame.columns)
    pd.testing.assert_frame_equal(spark.drop(columns="CUST_ID"), clean.frame.drop(columns="CUST_ID"),
                                  check_dtype=False, rtol=0, atol=0)


def test_fit_features_on_the_driver_sample(engine, table, portfolio):
    frame, _ = portfolio
    pipeline = engine.fit_features(table, seed=0)
    local = make_pipeline("behaviour").fit(frame)
    scale, local_scale = pipeline.named_steps["scale"], local.named_steps["scale"]
    assert scale.n_samples_seen_ == SAMPLE_ROWS
    # a 3,000-customer sample estimates the standardised means within a tenth of a standard deviation
    assert np.abs((scale.mean_ - local_scale.mean_) / local_scale.scale_).max() < 0.1
    assert engine.fit_features(table, seed=0).named_steps["scale"].mean_.tolist() == scale.mean_.tolist()


def test_lloyd_in_spark_follows_scikit_learn_from_the_same_start(engine, table, local, portfolio):
    frame, _ = portfolio
    columns = list(local.feature_names_out_)
    Z = _by_id(feature_frame(table, local.pipeline_).toPandas(), frame["CUST_ID"])[columns].to_numpy()
    # a start near the local solution, so the passes are few but real
    init = local.cluster_centers_ + np.random.default_rng(5).normal(scale=0.3, size=local.cluster_centers_.shape)
    fit, sizes = engine.refine(table, local.pipeline_, init)
    expected = KMeans(K, init=init, n_init=1, max_iter=engine.max_iter, tol=engine.tol).fit(Z)
    expected_sizes = np.bincount(expected.labels_, minlength=K)
    order = np.argsort(-expected_sizes, kind="stable")
    assert fit.n_iter > 1 and abs(fit.n_iter - expected.n_iter_) <= 1
    assert np.abs(fit.centres - expected.cluster_centers_[order]).max() < 1e-6
    assert np.isclose(fit.inertia, expected.inertia_, rtol=1e-6)
    assert sizes.tolist() == expected_sizes[order].tolist()


def test_spark_and_local_engines_agree(engine, table, portfolio, local):
    frame, _ = portfolio
    pipeline = engine.fit_features(table, seed=0)
    columns = list(pipeline.get_feature_names_out())
    fit = engine.fit_frame(feature_frame(table, pipeline), columns, K, n_init=10, seed=0)
    assert fit.n_iter > 1 and fit.n_iter < engine.max_iter
    segments = _by_id(engine.segment_frame(table, pipeline, fit.centres).select("CUST_ID", "segment", "distance")
                      .toPandas(), frame["CUST_ID"])
    assert adjusted_rand_score(local.labels_, segments["segment"]) >= 0.95

    spark_profiles = engine.profile_frame(engine.segment_frame(table, pipeline, fit.centres), "segment", K)
    # match Spark's segments to the local ones by their largest overlap, then compare per-segment means
    overlap = pd.crosstab(segments["segment"], local.labels_)
    mapping = overlap.idxmax(axis=1)
    assert sorted(mapping) == list(range(K))
    local_profiles = profile(frame, local.labels_, K)
    columns = [c for c in frame.columns if c != "CUST_ID"]
    spread = frame[columns].std()
    for spark_segment, local_segment in mapping.items():
        spark_means = spark_profiles.stats.loc[spark_segment + 1].xs("mean", level=1)[columns]
        local_means = local_profiles.stats.loc[local_segment + 1].xs("mean", level=1)[columns]
        assert (np.abs(spark_means - local_means) / spread).max() <= PROFILE_TOLERANCE


def test_profiles_equal_the_local_profiles_for_the_same_labels(engine, table, portfolio):
    frame, _ = portfolio
    labels = pd.DataFrame({"CUST_ID": frame["CUST_ID"], "segment": np.arange(len(frame)) % 4})
    labelled = table.join(engine.session.createDataFrame(labels), "CUST_ID")
    spark = engine.profile_frame(labelled, "segment", 5)
    local = profile(frame, labels["segment"].to_numpy(), 5)
    assert spark.sizes["size"].tolist() == local.sizes["size"].tolist()
    assert spark.variables == local.variables
    for stat in ("mean", "ratio"):
        spark_stat, local_stat = (p.stats.xs(stat, axis=1, level=1).iloc[:4] for p in (spark, local))
        assert np.allclose(spark_stat, local_stat, rtol=1e-9, atol=1e-12)
    assert spark.stats.loc[5].isna().all()
    # percentile_approx returns a recorded value at the middle rank, where pandas averages the two middle values
    columns = [c for c in frame.columns if c != "CUST_ID"]
    medians = spark.stats.xs("median", axis=1, level=1).iloc[:4][columns]
    groups = frame[columns].groupby(labels["segment"].to_numpy() + 1)
    assert (medians >= groups.quantile(0.499, interpolation="lower")).all().all()
    assert (medians <= groups.quantile(0.501, interpolation="higher")).all().all()


def test_engine_seam_on_a_matrix(engine, local, portfolio):
    frame, _ = portfolio
    Z = local.embed(frame.head(1_000))
    fit = engine.fit(Z, 4, n_init=1, seed=np.random.SeedSequence(3))
    labels, dist = engine.assign(Z, fit.centres)
    assert np.array_equal(fit.labels, labels)
    assert np.isclose(fit.inertia, float(np.dot(dist, dist)), rtol=1e-9)
    assert fit.n_iter < engine.max_iter
    # converged: each centre is (within the tolerance) the mean of its customers
    means = np.array([Z[labels == j].mean(axis=0) for j in range(4)])
    assert np.abs(means - fit.centres).max() < 0.05
    again = engine.fit(Z, 4, n_init=1, seed=np.random.SeedSequence(3))
    assert again.centres.tobytes() == fit.centres.tobytes() and again.inertia == fit.inertia


def test_user_mistakes_are_explained(engine, table, portfolio, tmp_path):
    _, path = portfolio
    with pytest.raises(DataError, match="cannot read Parquet data there"):
        engine.read(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no table or view of that name"):
        engine.read("no_such_table")
    with pytest.raises(DataError, match="no column for NOT_A_COLUMN"):
        engine.read(str(path), required=("NOT_A_COLUMN",))
    with pytest.raises(DataError, match="x hold missing values"):
        engine.fit_frame(table.selectExpr("CAST(NULL AS DOUBLE) AS x"), ["x"], 2)
    with pytest.raises(CustsegError, match="at least 1"):
        engine.fit_frame(table, ["BALANCE"], 0)
