"""The large-data path forced on small inputs: a run on a sample, read and validated in batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg import large
from custseg import run as runs
from custseg.datasets import generate
from custseg.errors import DataError
from custseg.settings import Settings

SETTINGS = Settings(k_min=3, k_max=4, n_init=2, n_boot=4, n_refs=2, sample_size=2000)


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    return generate(6000, seed=3)[0]


@pytest.fixture(scope="module")
def result(portfolio):
    return runs.segment(portfolio, SETTINGS)


def test_sample_is_uniform_without_replacement_and_seeded():
    take = large.sample_rows(6000, 2000, seed=5)
    assert len(np.unique(take)) == 2000 and np.all(np.diff(take) > 0)
    assert np.array_equal(take, large.sample_rows(6000, 2000, seed=5))
    assert not np.array_equal(take, large.sample_rows(6000, 2000, seed=6))


def test_large_run_assigns_every_customer_to_its_nearest_centre(portfolio, result):
    assert large.is_large(len(portfolio), SETTINGS)
    assert len(result.labels) == len(portfolio)
    Z = large.embed_all(result.model, result.portfolio.frame).astype(np.float64)
    d = ((Z[:, None, :] - result.model.cluster_centers_[None]) ** 2).sum(axis=2)
    assert np.array_equal(result.labels, d.argmin(axis=1))
    np.testing.assert_allclose(result.distances, np.sqrt(d.min(axis=1)), rtol=1e-4, atol=1e-5)
    sizes = np.bincount(result.labels, minlength=4)
    assert np.all(np.diff(sizes) <= 0)
    table = result.segments_table()
    assert len(table) == len(portfolio) and table["customer_id"].is_unique


def test_large_run_says_it_used_a_sample(result):
    said = "uniform sample of 2,000 of the 6,000 customers"
    assert said in result.model.selection_.reason
    assert any(said in note for note in result.quality.notes)
    assert result.profiles.sizes["size"].sum() == 6000
    assert len(result.projection["x"]) <= 2000


def test_profile_all_equals_profile(result):
    from custseg.profiles import profile

    frame = result.portfolio.frame
    expected = profile(frame, result.labels, 4)
    got = large.profile_all(frame, result.labels, 4, rows=1000)
    pd.testing.assert_frame_equal(got.sizes, expected.sizes)
    pd.testing.assert_frame_equal(got.stats, expected.stats, rtol=1e-12)
    pd.testing.assert_frame_equal(got.portfolio, expected.portfolio, rtol=1e-12)


def test_small_run_takes_the_usual_path(portfolio):
    small = runs.segment(portfolio.iloc[:1500], SETTINGS)
    assert "sample" not in small.model.selection_.reason


def test_large_run_writes_valid_outputs(result, tmp_path):
    runs.write_outputs(result, tmp_path / "out")
    segments = pd.read_csv(tmp_path / "out" / "segments.csv")
    assert len(segments) == 6000 and set(segments["segment"]) == {1, 2, 3, 4}
    assert (tmp_path / "out" / "report.html").stat().st_size > 0
    result.segments_table().to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n")
    assert (tmp_path / "out" / "segments.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


@pytest.fixture(scope="module")
def quirky(portfolio) -> pd.DataFrame:
    """Repairs in every batch of 1,000 rows, a share written in percent throughout, and an over-limit tail."""
    frame = portfolio.iloc[:3500].copy()
    frame["PRC_FULL_PAYMENT"] = frame["PRC_FULL_PAYMENT"] * 100
    frame.loc[[5, 1200, 2999], "BALANCE"] = -10.0
    frame.loc[[40, 2500], "TENURE"] = 0
    frame.loc[3100, "BALANCE_FREQUENCY"] = 1.3
    return frame


def test_batches_validate_as_the_whole_file(quirky):
    from custseg.load import load
    from custseg.quality import validate
    from custseg.sources import FrameSource

    whole, expected = validate(load(quirky))
    keep = np.array([0, 999, 1000, 3499])
    batched, report, kept = large.load_validated(FrameSource(quirky), schema_required(), rows=1000, keep=keep)
    assert "validated in 4 batches of up to 1,000 rows" in report.notes[-1]
    assert report.n_rows == expected.n_rows and report.missing == expected.missing
    key = lambda f: (f.check, f.column)  # noqa: E731
    got, want = sorted(report.findings, key=key), sorted(expected.findings, key=key)
    assert [(f.check, f.column, f.count, f.examples) for f in got] == \
        [(f.check, f.column, f.count, f.examples) for f in want]
    assert [f.rule for f in got if f.check != "heavy_skew"] == [f.rule for f in want if f.check != "heavy_skew"]
    assert report.count("percent_scale", "PRC_FULL_PAYMENT") == 3500
    for c in whole.frame.columns.drop("CUST_ID"):
        np.testing.assert_array_equal(batched.frame[c].to_numpy(), whole.frame[c].to_numpy(dtype=np.float32))
    assert batched.frame["CUST_ID"].tolist() == whole.frame["CUST_ID"].tolist()
    exact = whole.frame.iloc[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, exact, check_dtype=False)
    assert all(kept[c].dtype == np.float64 for c in kept.columns.drop("CUST_ID"))


def test_batch_errors_name_rows_from_the_start(portfolio):
    from custseg.sources import FrameSource

    frame = portfolio.iloc[:2500].astype({"PURCHASES": object})
    frame.loc[1499, "PURCHASES"] = "n/a"
    with pytest.raises(DataError, match=r"row 1500 \('n/a'\)"):
        large.load_validated(FrameSource(frame), schema_required(), rows=1000)
    twice = pd.concat([portfolio.iloc[:1500], portfolio.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataError, match="rows 4 and 1501|rows 4, 1501"):
        large.load_validated(FrameSource(twice), schema_required(), rows=1000)


def schema_required() -> tuple[str, ...]:
    from custseg.features import required_columns

    return required_columns("behaviour")


def test_scoring_the_training_portfolio_shows_no_drift(portfolio, result):
    # everyone is kept as float32, the sample's drift bins at full precision: the bins predict uses
    from custseg.drift import drift_report

    assert portfolio["PURCHASES_FREQUENCY"].astype(np.float32).astype(np.float64).ne(
        portfolio["PURCHASES_FREQUENCY"]).any()
    X = portfolio[list(result.model.required_columns_)]
    features = pd.DataFrame(result.model.embed(X), columns=list(result.model.feature_names_out_))
    report = drift_report(result.training_distribution, X, features, distances=result.model.assign(X)[1])
    psi = [item.psi for item in report.items]
    assert max(psi) < 0.05, max(psi)  # sampling noise of 2,000 of 6,000; tied values at an edge gave PSI 7.6
