"""Known-answer tests for bootstrap stability and Hungarian segment matching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from custseg.errors import CustsegError
from custseg.stability import (HIGHLY_STABLE, Stability, bootstrap_stability, jaccard_matrix, lower_bound,
                               match_segments, settled_below, status)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny fits: threads only add start-up cost and contention.
    with threadpool_limits(1):
        yield


def planted_split(seed=0, p=6):
    """Three tight blobs and one broad round blob; k = 5 must cut the broad one in two."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, p))
    centres[1, 0] = centres[2, 1] = 15
    centres[3, :2] = 15
    parts = [c + rng.normal(size=(60, p)) for c in centres[:3]]
    parts.append(centres[3] + 2 * rng.normal(size=(150, p)))
    X = np.vstack(parts)
    labels = KMeans(5, n_init=10, random_state=0).fit(X).labels_
    return X, labels, np.unique(labels[180:])


def test_planted_split_is_flagged_and_real_blobs_are_stable():
    X, labels, split = planted_split()
    assert len(split) == 2
    stab = bootstrap_stability(X, labels, n_boot=50)
    seg = stab.segments
    assert list(seg.index) == [0, 1, 2, 3, 4] and seg.index.name == "segment"
    assert list(seg.columns) == ["jaccard_mean", "jaccard_sd", "jaccard_lower", "status"]
    real = seg.drop(split)
    assert (real["status"] == "stable").all(), real
    assert (seg.loc[split, "status"] != "stable").all(), seg
    # over seeds the split halves average 0.60 (sd 0.025): well below the real blobs, near "unstable"
    assert seg.loc[split, "jaccard_mean"].mean() < 0.7
    assert seg.loc[split, "jaccard_mean"].max() < real["jaccard_mean"].min()
    assert 0 < stab.mean_ari < 1


def test_clear_blobs_are_all_stable_with_ari_near_one():
    X, labels, split = planted_split()
    keep = np.isin(np.arange(len(X)), np.arange(180))
    stab = bootstrap_stability(X[keep], labels[keep], n_boot=20)  # three blobs, labels as given
    assert (stab.segments["status"] == "stable").all()
    assert stab.mean_ari > 0.95


def test_hungarian_matching_recovers_a_permutation():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 5, size=400)
    perm = np.array([3, 0, 4, 1, 2])
    partner, score = match_segments(ref, perm[ref])
    np.testing.assert_array_equal(partner, perm)
    np.testing.assert_allclose(score, 1.0)


def test_matching_is_one_to_one_when_greedy_would_collide():
    # Both reference segments overlap bootstrap segment 0 best; the assignment
    # gives it to segment 0 and pairs segment 1 with the remaining segment.
    ref = np.array([0] * 6 + [1] * 4)
    other = np.array([0] * 6 + [0] * 3 + [1])
    sim = jaccard_matrix(ref, other)
    assert sim[0].argmax() == 0 and sim[1].argmax() == 0
    partner, score = match_segments(ref, other)
    assert list(partner) == [0, 1]
    np.testing.assert_allclose(score, [6 / 9, 1 / 4])


def test_jaccard_ignores_noise_and_handles_missing_partners():
    ref = np.array([0, 0, 1, 1, 2, 2])
    other = np.array([0, 0, 1, -1, -1, -1])
    partner, score = match_segments(ref, other, 3, 2)
    assert list(score) == [1.0, 0.5, 0.0] and partner[2] == -1


def test_labels_are_permutation_invariant():
    X, labels, _ = planted_split()
    relabel = np.array([4, 2, 0, 1, 3])[labels]
    a = bootstrap_stability(X, labels, n_boot=10, random_state=3)
    b = bootstrap_stability(X, relabel, n_boot=10, random_state=3)
    np.testing.assert_allclose(b.segments["jaccard_mean"].to_numpy()[np.array([4, 2, 0, 1, 3])],
                               a.segments["jaccard_mean"].to_numpy())
    assert a.mean_ari == pytest.approx(b.mean_ari)


def test_deterministic_warm_start_and_json():
    X, labels, _ = planted_split()
    centres = np.vstack([X[labels == c].mean(axis=0) for c in range(5)])
    a = bootstrap_stability(X, labels, n_boot=8, init_centers=centres, max_n=200)
    b = bootstrap_stability(X, labels, n_boot=8, init_centers=centres, max_n=200)
    assert isinstance(a, Stability) and a.n_boot == 8
    assert a.segments.equals(b.segments) and a.mean_ari == b.mean_ari
    d = a.to_dict()
    assert d == b.to_dict()
    json.dumps(d, allow_nan=False)
    assert [s["segment"] for s in d["segments"]] == [0, 1, 2, 3, 4]


def test_replicates_follow_the_seed_through_any_engine():
    from custseg.engine.small import SmallEngine

    class Counting(SmallEngine):
        fits = 0

        def fit(self, X, k, **kw):
            Counting.fits += 1
            return super().fit(X, k, **kw)

    X, labels, _ = planted_split()
    a = bootstrap_stability(X, labels, n_boot=6, random_state=1, engine=Counting(n_threads=1))
    assert Counting.fits == 6  # a caller's own engine is used as it is
    b = bootstrap_stability(X, labels, n_boot=6, random_state=1)  # scikit-learn's engine hands them to SmallEngine
    c = bootstrap_stability(X, labels, n_boot=6, random_state=2)
    assert a.segments.equals(b.segments) and a.mean_ari == b.mean_ari
    assert not a.segments["jaccard_mean"].equals(c.segments["jaccard_mean"])
    g = bootstrap_stability(X, labels, n_boot=6, random_state=np.random.default_rng(1))
    assert g.n_boot == 6


def test_a_caller_engine_subclass_is_not_replaced():
    from custseg.engine import SklearnEngine

    class Counting(SklearnEngine):
        fits = 0

        def fit(self, X, k, **kw):
            Counting.fits += 1
            return super().fit(X, k, **kw)

    X, labels, _ = planted_split()
    bootstrap_stability(X, labels, n_boot=3, random_state=1, engine=Counting())
    assert Counting.fits == 3


def test_the_adjusted_rand_index_is_scikit_learns():
    from sklearn.metrics import adjusted_rand_score

    from custseg.stability import _adjusted_rand, _contingency

    rng = np.random.default_rng(3)
    for n, k in [(2, 1), (50, 2), (997, 5), (3000, 3)]:
        a = rng.integers(0, k, n)
        b = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), a)
        for other in (a, b):
            assert _adjusted_rand(_contingency(a, other, k, k)[0], n) == pytest.approx(
                adjusted_rand_score(a, other), abs=1e-12)


def test_settled_below_is_the_best_mean_the_remaining_refits_could_give():
    reps = np.array([[0.9, 0.2], [0.9, np.nan], [0.9, 0.3]])
    # segment 1: 0.5 over 2 scored refits; with 2 more at 1 the best mean is 2.5 / 4 = 0.625
    assert settled_below(reps, 5, 0.63) and not settled_below(reps, 5, 0.625)
    assert not settled_below(reps[:0], 5, 0.99)  # nothing fitted: anything can happen


def test_stopping_early_keeps_the_verdict_of_every_refit():
    X, labels, split = planted_split()
    full = bootstrap_stability(X, labels, n_boot=20, random_state=4)
    early = bootstrap_stability(X, labels, n_boot=20, random_state=4, stop_below=0.75)
    assert not full.all_stable and not early.all_stable
    assert early.stopped_early and early.n_planned == 20 and early.n_boot < 20
    # the replicates fitted are the full run's first ones, and the stop is the first settled prefix
    assert np.array_equal(early.replicates, full.replicates[:early.n_boot], equal_nan=True)
    assert settled_below(full.replicates[:early.n_boot], 20, 0.75)
    assert not settled_below(full.replicates[:early.n_boot - 1], 20, 0.75)
    assert early.to_dict()["n_planned"] == 20 and early.to_dict()["n_boot"] == early.n_boot
    keep = np.arange(180)  # three clear blobs: never settled below, every refit made
    sure = bootstrap_stability(X[keep], labels[keep], n_boot=8, stop_below=0.75)
    assert sure.n_boot == 8 and not sure.stopped_early and sure.n_planned is None


def test_results_do_not_depend_on_threads_or_replicates_in_flight(monkeypatch):
    import custseg.stability as stability
    from custseg.engine.small import SmallEngine

    X, labels, _ = planted_split()
    one = bootstrap_stability(X, labels, n_boot=7, random_state=5, engine=SmallEngine(n_threads=1),
                              stop_below=0.75)
    monkeypatch.setattr(stability, "AHEAD", 3)
    two = bootstrap_stability(X, labels, n_boot=7, random_state=5, engine=SmallEngine(n_threads=2),
                              stop_below=0.75)
    assert one.n_boot == two.n_boot
    assert np.array_equal(one.replicates, two.replicates, equal_nan=True)
    assert np.array_equal(one.replicate_ari, two.replicate_ari)


def test_status_thresholds():
    assert [status(j) for j in (0.75, 0.7499, 0.6, 0.5999)] == ["stable", "weak", "weak", "unstable"]


def test_progress_ticks_once_per_replicate():
    class Count:
        n = 0

        def update(self, n=1):
            self.n += n

    X, labels, _ = planted_split()
    bar = Count()
    bootstrap_stability(X, labels, n_boot=7, progress=bar)
    assert bar.n == 7


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_boot": 1}, "two bootstrap"), ({"init_centers": np.zeros((3, 6))}, "init_centers")],
)
def test_bad_arguments_raise(kwargs, match):
    X, labels, _ = planted_split()
    with pytest.raises(CustsegError, match=match):
        bootstrap_stability(X, labels, **kwargs)


def test_one_segment_raises():
    with pytest.raises(CustsegError, match="two segments"):
        bootstrap_stability(np.zeros((10, 2)), np.zeros(10, int))


def test_replicates_are_the_per_refit_scores_behind_the_means():
    X, labels, split = planted_split()
    stab = bootstrap_stability(X, labels, n_boot=10, max_n=200)
    assert stab.replicates.shape == (10, 5) and stab.sample_size == 200
    np.testing.assert_allclose(np.nanmean(stab.replicates, axis=0), stab.segments["jaccard_mean"])
    assert not stab.all_stable and stab.jaccard_min == stab.segments["jaccard_mean"].min()
    assert stab.to_dict()["sample_size"] == 200
    keep = np.arange(180)
    assert bootstrap_stability(X[keep], labels[keep], n_boot=5).all_stable  # three clear blobs


def test_lower_bound_is_the_one_sided_95_percent_bound_of_the_mean():
    reps = np.array([[0.9, 1.0], [0.8, np.nan], [1.0, 0.5], [0.9, 0.9]])
    low = lower_bound(reps)
    for col in range(2):
        r = reps[:, col][~np.isnan(reps[:, col])]  # a segment not drawn has no score that round
        assert low[col] == pytest.approx(r.mean() - 1.6448536 * r.std(ddof=1) / np.sqrt(len(r)))
    assert lower_bound(np.full((5, 1), 0.9))[0] == pytest.approx(0.9)  # no spread, no margin


def test_a_segment_that_sometimes_dissolves_is_not_highly_stable():
    # 18 refits find it, 2 dissolve it: the mean clears 0.85, the lower bound does not
    reps = np.r_[np.full(18, 0.95), [0.3, 0.3]][:, None]
    assert np.nanmean(reps) >= HIGHLY_STABLE > lower_bound(reps)[0]


def test_resume_adds_replicates_as_a_fresh_call_would():
    X, labels, _ = planted_split()
    fresh = bootstrap_stability(X, labels, n_boot=9, random_state=3, max_n=200)
    first = bootstrap_stability(X, labels, n_boot=4, random_state=3, max_n=200)
    bar = type("Count", (), {"n": 0, "update": lambda self, n=1: setattr(self, "n", self.n + n)})()
    resumed = bootstrap_stability(X, labels, n_boot=9, random_state=3, max_n=200, resume=first, progress=bar)
    assert bar.n == 5  # only the new replicates are fitted
    np.testing.assert_array_equal(resumed.replicates, fresh.replicates)
    assert resumed.segments.equals(fresh.segments) and resumed.mean_ari == fresh.mean_ari
    with pytest.raises(CustsegError, match="Cannot resume"):
        bootstrap_stability(X, labels, n_boot=3, max_n=200, resume=first)  # fewer than it has
    with pytest.raises(CustsegError, match="Cannot resume"):
        bootstrap_stability(X, labels, n_boot=9, resume=first)  # another sample size


def test_highly_stable_needs_every_lower_bound_at_085():
    X, labels, split = planted_split()
    stab = bootstrap_stability(X, labels, n_boot=10, max_n=200)
    assert not stab.all_highly_stable and stab.lower_min == stab.segments["jaccard_lower"].min()
    keep = np.arange(180)
    blobs = bootstrap_stability(X[keep], labels[keep], n_boot=10)
    assert blobs.all_highly_stable and (blobs.segments["jaccard_lower"] <= blobs.segments["jaccard_mean"]).all()
    d = blobs.to_dict()
    assert d["thresholds"] == {"stable": 0.75, "unstable": 0.6, "highly_stable": 0.85, "confidence": 0.95}
    assert [s["jaccard_lower"] for s in d["segments"]] == pytest.approx(blobs.segments["jaccard_lower"].tolist())


def test_first_draws_are_those_of_unique():
    from custseg.stability import _first_draws

    drawn = np.random.default_rng(3).integers(0, 500, 700)
    kept, first = _first_draws(drawn, 500)
    want_kept, want_first = np.unique(drawn, return_index=True)
    assert np.array_equal(kept, want_kept) and np.array_equal(first, want_first)
