"""The large-data path forced on small inputs: a run on a sample, scoring in batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custseg import large
from custseg import run as runs
from custseg.datasets import generate
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
