import numpy as np
import pandas as pd
import pytest

from custseg import Segmenter, save_model, score
from custseg.errors import CustsegError, ModelError
from custseg.quality import QualityReport
from custseg.score import assignments

from helpers import tiny_portfolio

NAMES = ["buyers", "cash users", "dormant"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = Segmenter(n_clusters=3, k_max=3, n_init=2, n_refs=2).fit(tiny_portfolio(60))
    path = tmp_path_factory.mktemp("model") / "model.json"
    save_model(path, model, segment_names=NAMES, training={"n_customers": 60})
    return model, path


def test_score_assigns_as_the_fitted_model(saved, tmp_path):
    model, path = saved
    new = tiny_portfolio(33, seed=7)
    csv = tmp_path / "new.csv"
    new.to_csv(csv, index=False)
    labels, distances = model.assign(new)
    for data in (new, csv):
        table = score(path, data)
        assert list(table.columns) == ["customer_id", "segment", "segment_name", "distance_to_centre"]
        assert table["customer_id"].tolist() == new["CUST_ID"].tolist()
        assert table["segment"].tolist() == (labels + 1).tolist()
        assert table["segment_name"].tolist() == [NAMES[i] for i in labels]
        assert np.allclose(table["distance_to_centre"], distances, atol=5e-7)


def test_score_with_report_and_refusals(saved, tmp_path):
    _, path = saved
    table, report = score(path, tiny_portfolio(12, seed=2), with_report=True)
    assert isinstance(report, QualityReport) and report.n_rows == len(table) == 12
    with pytest.raises(CustsegError, match="CREDIT_LIMIT"):
        score(path, tiny_portfolio(12).drop(columns="CREDIT_LIMIT"))
    with pytest.raises(ModelError, match="no such model file"):
        score(tmp_path / "none.json", tiny_portfolio(12))


def test_assignments_number_segments_from_one_and_round_distances():
    ids = pd.Series(["C1", "C2", "C3"])
    table = assignments(ids, np.array([2, 0, 2]), np.array([0.1234567891, 2.0, 1e-9]), ["x", "y", "z"])
    assert table["segment"].tolist() == [3, 1, 3]
    assert table["segment_name"].tolist() == ["z", "x", "z"]
    assert table["distance_to_centre"].tolist() == [0.123457, 2.0, 0.0]
    assert table["customer_id"].tolist() == ["C1", "C2", "C3"]


def test_nearest_is_the_exact_nearest_centre_whatever_the_blocks():
    from custseg.score import nearest

    rng = np.random.default_rng(1)
    Z = rng.normal(size=(5000, 6)) * 3
    C = rng.normal(size=(5, 6))
    C[4] = C[1]  # a tie: the first of two equal centres wins
    d = np.sqrt(((Z[:, None, :] - C[None]) ** 2).sum(axis=2))
    labels, dist = nearest(Z, C)
    assert np.array_equal(labels, d.argmin(axis=1)) and not (labels == 4).any()
    square = np.zeros(len(Z))
    for j in range(Z.shape[1]):  # summed feature by feature, in feature order: the same bits
        square += (Z[:, j] - C[labels, j]) ** 2
    assert np.array_equal(dist, np.sqrt(square))
    pieces = [nearest(np.asfortranarray(Z[lo:lo + 777]), C) for lo in range(0, len(Z), 777)]
    assert np.array_equal(np.concatenate([p[0] for p in pieces]), labels)
    assert np.array_equal(np.concatenate([p[1] for p in pieces]), dist)
