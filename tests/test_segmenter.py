import numpy as np
import pytest
from sklearn.base import clone

from custseg import KMeansCore, Segmenter
from custseg.errors import CustsegError
from custseg.segmenter import needed_rows

from helpers import tiny_portfolio


@pytest.fixture(scope="module")
def fitted():
    frame = tiny_portfolio(90)
    return frame, Segmenter(n_clusters=3, k_max=4, n_init=3, n_refs=3, random_state=0, evidence=True).fit(frame)


def test_fit_finds_the_three_planted_behaviours(fitted):
    from sklearn.metrics import adjusted_rand_score

    frame, model = fitted
    assert model.n_clusters_ == 3
    assert adjusted_rand_score(np.arange(90) % 3, model.labels_) == 1.0


def test_segments_are_numbered_by_decreasing_size(fitted):
    frame, model = fitted
    sizes = np.bincount(model.labels_)
    assert list(sizes) == sorted(sizes, reverse=True)


def test_predict_matches_training_labels_and_transform_shape(fitted):
    frame, model = fitted
    assert (model.predict(frame) == model.labels_).all()
    D = model.transform(frame)
    assert D.shape == (90, 3)
    assert (D.argmin(axis=1) == model.labels_).all()
    labels, dist = model.assign(frame)
    assert np.allclose(dist, D.min(axis=1))
    assert model.score(frame) == pytest.approx(-model.inertia_)


def test_same_seed_same_result_and_clone():
    frame = tiny_portfolio(60, seed=3)
    a = Segmenter(n_clusters=3, k_max=3, n_init=2, n_refs=2, random_state=5).fit(frame)
    b = clone(a).fit(frame)
    assert (a.labels_ == b.labels_).all()
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)


def test_evidence_on_request_evaluates_the_whole_range(fitted):
    frame, model = fitted
    assert list(model.selection_.table.index) == [2, 3, 4]
    assert model.selection_.chosen_k == 3 and "fixed" in model.selection_.reason


def test_auto_chooses_from_the_evidence_and_refits_only_that_k():
    frame = tiny_portfolio(90)
    model = Segmenter(k_max=4, n_init=3, n_refs=3).fit(frame)
    sel = model.selection_
    assert list(sel.table.index) == [2, 3, 4]
    assert model.n_clusters_ == sel.chosen_k == 3
    # the final fit (same restarts, same seed) finds the evidence's solution at that k, renumbered by size
    centres = sel.evidence.centres[3]
    assert np.allclose(np.sort(model.cluster_centers_, axis=0), np.sort(centres, axis=0))
    assert model.inertia_ == sel.table.at[3, "inertia"]


def test_a_fixed_k_skips_the_evidence_unless_asked():
    frame = tiny_portfolio(90)
    model = Segmenter(n_clusters=3, n_init=3).fit(frame)
    assert model.selection_.evidence is None and model.selection_.table.empty
    assert "evidence for other k was not computed" in model.selection_.reason
    full = Segmenter(n_clusters=3, k_max=4, n_init=3, n_refs=3, evidence=True).fit(frame)
    assert (model.labels_ == full.labels_).all()
    np.testing.assert_array_equal(model.cluster_centers_, full.cluster_centers_)


def test_core_is_the_numeric_estimator(fitted):
    frame, model = fitted
    assert isinstance(model.core_, KMeansCore)
    Z = model.embed(frame)
    assert (model.core_.predict(Z) == model.labels_).all()
    np.testing.assert_array_equal(model.core_.cluster_centers_, model.cluster_centers_)


@pytest.mark.parametrize("seed", [np.random.RandomState(0), np.random.default_rng(0), None])
def test_random_state_may_be_a_generator(seed):
    frame = tiny_portfolio(60)
    model = Segmenter(n_clusters=3, n_init=2, random_state=seed).fit(frame)
    assert model.n_clusters_ == 3 and len(model.labels_) == 60


@pytest.mark.parametrize("kwargs", [{"n_clusters": 1}, {"n_clusters": "many"}, {"k_min": 5, "k_max": 3},
                                    {"n_clusters": True}, {"evidence": False}, {"evidence": "yes"},
                                    {"random_state": -3}, {"engine": "no-such-engine"}])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(CustsegError):
        Segmenter(**kwargs).fit(tiny_portfolio(30))


def test_missing_column_at_predict(fitted):
    frame, model = fitted
    with pytest.raises(CustsegError, match="CREDIT_LIMIT"):
        model.predict(frame.drop(columns=["CREDIT_LIMIT"]))


def test_needed_rows():
    assert needed_rows("auto", 10) == 20
    assert needed_rows(12, 10) == 24
    assert needed_rows(3, 10) == 6  # a fixed k fits that k only
    assert needed_rows(3, 10, evidence=True) == 20


def test_too_few_rows_for_a_fixed_k():
    with pytest.raises(CustsegError, match="at least 8 rows"):
        Segmenter(n_clusters=4).fit(tiny_portfolio(6))
