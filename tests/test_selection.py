"""Known-answer tests for choosing k: true k on clear blobs, no structure on noise."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_samples
from threadpoolctl import threadpool_limits

from custseg.errors import CustsegError
from custseg.core import KMeansCore
from custseg.selection import (COLUMNS, Evidence, Selection, choose_k, drill_down, evaluate_k,
                               fixed_k_without_evidence, gap_rule, kneedle, n_steps, select_k,
                               silhouette_samples_many)

FAST = {"n_init": 3, "stability_boot": 10}


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny fits: threads only add start-up cost and contention.
    with threadpool_limits(1):
        yield


def blobs(true_k, seed, n=240, p=4):
    """Well-separated spherical blobs: centres at least 8 sd apart."""
    rng = np.random.default_rng(seed)
    while True:
        centres = rng.uniform(-12, 12, size=(true_k, p))
        gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(true_k, 1)]
        if gaps.min() >= 8:
            break
    X, _ = make_blobs(n_samples=n, centers=centres, cluster_std=1.0, random_state=seed)
    return X


@pytest.mark.parametrize("true_k", [3, 4, 6])
def test_auto_rule_finds_true_k_on_clear_blobs(true_k):
    sel = select_k(blobs(true_k, seed=true_k), range(2, 9), **FAST)
    assert sel.clear_structure
    assert sel.auto_k == sel.chosen_k == true_k
    assert f"k = {true_k}" in sel.reason


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("p", [2, 6])
def test_auto_rule_reports_no_structure_on_uniform_noise(seed, p):
    X = np.random.default_rng(seed).uniform(size=(240, p))
    sel = select_k(X, range(2, 9), **FAST)
    assert not sel.clear_structure
    assert sel.auto_k == sel.chosen_k in sel.table.index  # still a usable level
    assert sel.reason.startswith("No clear structure")
    stab = sel.evidence.stability[sel.chosen_k]
    # the usable level is the largest highly stable k, or the most stable one when none is
    if sel.highly_stable_ks:
        assert stab.all_highly_stable and sel.chosen_k == max(sel.highly_stable_ks)
        assert stab.n_boot == sel.evidence.confirm_boot == 3 * FAST["stability_boot"]
    else:
        assert stab.lower_min == max(st.lower_min for st in sel.evidence.stability.values())
    assert sel.headline.startswith("no clear structure")


def test_evidence_table_and_centres():
    X = blobs(3, seed=1)
    ev = evaluate_k(X, [2, 3, 5], **FAST)
    assert isinstance(ev, Evidence)
    assert list(ev.table.columns) == list(COLUMNS)
    assert ev.table.index.name == "k" and list(ev.table.index) == [2, 3, 5]
    assert {k: c.shape for k, c in ev.centres.items()} == {2: (2, 4), 3: (3, 4), 5: (5, 4)}
    assert ev.silhouette_sample_size is None
    assert ev.table["silhouette_se"].isna().all()
    assert (ev.table["gap_se"] > 0).all()
    assert not hasattr(ev, "models") and not hasattr(ev, "labels")  # nothing n-long is kept
    assert sorted(ev.stability) == [2, 3, 5]
    assert ev.stability[3].all_stable  # three clear blobs reproduce
    # the largest highly stable k is confirmed on three times the refits; the others keep theirs, except
    # k = 5 (a blob cut in two), which stops once a segment's mean can no longer reach 0.75
    assert {k: st.n_boot for k, st in ev.stability.items() if k != 5} == {2: 10, 3: 30} and ev.confirm_boot == 30
    five = ev.stability[5]
    assert five.stopped_early and five.n_planned == 10 and 2 <= five.n_boot < 10 and not five.all_stable
    full = evaluate_k(X, [2, 3, 5], **FAST, full_ks=[5]).stability[5]  # the same refits, all of them
    assert full.n_boot == 10 and not full.all_stable
    np.testing.assert_array_equal(five.replicates, full.replicates[:five.n_boot])
    reason = choose_k(ev).reason  # says which k stopped, after how many refits, and why
    assert f"k = 5 after {five.n_boot} of 10" in reason and "could no longer reach" in reason
    assert "stopped early" not in choose_k(ev, [2, 3]).reason  # only the ks the rule weighed
    assert ev.stability[3].sample_size == len(X)


def test_the_final_fit_finds_the_evidence_centres():
    X = blobs(4, seed=2)
    ev = evaluate_k(X, [3, 4], n_init=3, seed=8)
    core = KMeansCore(n_clusters=4, n_init=3, random_state=8).fit(X)
    np.testing.assert_array_equal(core.cluster_centers_, ev.centres[4])
    assert core.inertia_ == ev.table.at[4, "inertia"]


def test_choose_k_is_a_step_of_its_own():
    X = blobs(3, seed=1)
    ev = evaluate_k(X, range(2, 7), **FAST)
    whole = choose_k(ev)
    assert isinstance(whole, Selection) and whole.evidence is ev
    assert whole.chosen_k == whole.auto_k == 3
    narrow = choose_k(ev, [4, 5, 6])  # the rule among fewer candidates, same evidence
    assert narrow.chosen_k in (4, 5, 6) and narrow.evidence is ev
    with pytest.raises(CustsegError, match="no evidence for k = 8"):
        choose_k(ev, [2, 8])
    with pytest.raises(CustsegError, match="no evidence for k = 9"):
        choose_k(ev, fixed_k=9)


def test_fixed_k_outside_range_is_evaluated_but_does_not_vote():
    X = blobs(3, seed=1)
    sel = select_k(X, range(2, 6), fixed_k=7, **FAST)
    assert sel.chosen_k == 7
    assert sel.auto_k == 3
    assert 7 in sel.table.index and 7 in sel.evidence.centres
    assert "fixed" in sel.reason and "the rule would choose k = 3" in sel.reason
    assert sel.headline.startswith("k = 7 fixed;") and "no clear structure" not in sel.headline
    assert len(sel.drilldown) == 7  # the drill-down follows the k used


def test_fixed_k_without_evidence_says_so():
    sel = fixed_k_without_evidence(5)
    d = sel.to_dict()
    assert d["chosen_k"] == 5 and d["auto_k"] is None and d["clear_structure"] is None
    assert d["reason"] == ("k = 5 was fixed; the evidence for other k was not computed "
                           "(pass --evidence to compute it).")
    assert d["table"] == [] and d["votes"] == {} and d["baseline"] == {}
    assert list(sel.table.columns) == list(COLUMNS)
    json.dumps(d, allow_nan=False)


def test_silhouette_matches_scikit_learn():
    X, _ = make_blobs(300, n_features=3, centers=4, random_state=0)
    labels = [KMeans(k, n_init=2, random_state=0).fit(X).labels_ for k in (2, 4, 7)]
    labels.append(np.r_[np.zeros(299, int), 1])  # a singleton segment scores 0
    ours = silhouette_samples_many(X, labels)
    for lab, s in zip(labels, ours):
        np.testing.assert_allclose(s, silhouette_samples(X, lab), atol=1e-5)


def test_silhouette_sampled_above_max_n():
    X = blobs(3, seed=2, n=300)
    sel = select_k(X, [2, 3], silhouette_max_n=150, **FAST)
    assert sel.silhouette_sample_size == 150
    assert (sel.table["silhouette_se"] > 0).all()
    exact = select_k(X, [2, 3], **FAST).table["silhouette"]
    assert np.all(np.abs(sel.table["silhouette"] - exact) < 4 * sel.table["silhouette_se"] + 0.02)


def test_deterministic_and_json_safe():
    X = np.random.default_rng(5).normal(size=(150, 3))
    a = select_k(X, range(2, 6), silhouette_max_n=100, **FAST)
    b = select_k(X, range(2, 6), silhouette_max_n=100, **FAST)
    assert a.table.equals(b.table)
    assert a.to_dict() == b.to_dict()
    other = select_k(X, range(2, 6), silhouette_max_n=100, random_state=1, **FAST)
    assert not other.table["silhouette"].equals(a.table["silhouette"])  # the sample follows the seed
    gen = select_k(X, range(2, 6), silhouette_max_n=100, random_state=np.random.default_rng(3), **FAST)
    assert list(gen.table.index) == [2, 3, 4, 5]
    d = a.to_dict()
    assert list(d) == ["chosen_k", "auto_k", "clear_structure", "reason", "silhouette_sample_size", "votes",
                       "baseline", "table"]
    json.dumps(d, allow_nan=False)
    assert [row["k"] for row in d["table"]] == [2, 3, 4, 5]


def test_too_few_rows_raises_with_counts():
    X = np.random.default_rng(0).normal(size=(15, 2))
    with pytest.raises(CustsegError, match=r"15 customers.*10 segments.*20 rows"):
        select_k(X, range(2, 11))


@pytest.mark.parametrize("bad", [np.ones(10), np.array([[1.0, np.nan]] * 30)])
def test_bad_input_raises(bad):
    with pytest.raises(CustsegError):
        select_k(bad, [2, 3])


def test_k_below_two_raises():
    with pytest.raises(CustsegError, match="at least 2"):
        select_k(np.random.default_rng(0).normal(size=(50, 2)), [1, 2])


def test_progress_counts_every_step():
    class Count:
        n = 0

        def update(self, n=1):
            self.n += n

    bar = Count()
    select_k(blobs(3, seed=1), [2, 3, 4], fixed_k=6, progress=bar, **FAST)
    assert bar.n == n_steps([2, 3, 4], fixed_k=6, evidence=True) == 20
    assert n_steps([2, 3, 4]) == 15
    assert n_steps([2, 3, 4], fixed_k=6) == 0  # a fixed k skips the evidence unless asked


def test_kneedle_and_gap_rule_on_textbook_curves():
    ks = [1, 2, 3, 4, 5, 6]
    assert ks[kneedle(ks, [100, 60, 20, 18, 16, 15])] == 3
    # gap rises to a plateau at 4: smallest k within one s of the best
    assert gap_rule(ks, [0.0, 0.3, 0.8, 1.2, 1.21, 1.19], [0.05] * 6) == 4
    # Gap(1) within 2 s (and 0.1) of the best: no evidence against one group
    assert gap_rule(ks, [0.10, 0.12, 0.13, 0.11, 0.09, 0.1], [0.02] * 6) == 1


def test_gap_and_bic_at_the_edge_of_the_range_do_not_vote():
    import pandas as pd

    from custseg.selection import _auto_rule

    ks = [2, 3, 4, 5]
    table = pd.DataFrame(
        {
            "inertia": [60.0, 45.0, 38.0, 33.0],
            "silhouette": [0.30, 0.26, 0.24, 0.20],
            "silhouette_se": np.nan,
            "calinski_harabasz": 1.0,
            "davies_bouldin": 1.0,
            "gap": [0.5, 0.7, 0.9, 1.2],  # still rising at k = 5
            "gap_se": 0.01,
            "gmm_bic": [40.0, 30.0, 20.0, 10.0],  # still falling at k = 5
        },
        index=pd.Index(ks, name="k"),
    )
    only_2_stable = {k: _stability([0.9] * 2 if k == 2 else [0.9, 0.5] + [0.9] * (k - 2)) for k in ks}
    votes, k, clear, why = _auto_rule(table, {"inertia": 100.0, "gap": 0.0, "gap_se": 0.01}, only_2_stable, 20)
    assert votes["gap"] == votes["bic"] == 5
    assert not clear and k == 2
    # gap + BIC at the edge would otherwise outvote and flag k = 5's unstable segment
    assert "still improving at k = 5" in why and "at k = 5 only" not in why


def test_reason_does_not_claim_disagreement_when_two_criteria_agree():
    import pandas as pd

    from custseg.selection import _auto_rule

    ks = [2, 3, 4, 5]
    table = pd.DataFrame({
        "inertia": [50.0, 20.0, 18.0, 17.0],          # knee at 3
        "silhouette": [0.40, 0.55, 0.45, 0.42],       # best at 3
        "gap": [1.02, 1.01, 1.00, 0.99],              # best at k = 2 (index 0), no lift over Gap(1)
        "gap_se": [0.01] * 4,
        "gmm_bic": [10.0, 5.0, 7.0, 8.0],             # best at 3
    }, index=pd.Index(ks, name="k"))
    stability = {2: _stability([0.9, 0.8]), 3: _stability([0.9, 0.8, 0.7]), 4: _stability([0.9] * 4),
                 5: _stability([0.9, 0.8, 0.76, 0.5, 0.9])}
    votes, k, clear, why = _auto_rule(table, {"inertia": 100.0, "gap": 1.0, "gap_se": 0.01}, stability, 20)
    assert votes["gap"] == 1 and not clear
    assert "does not reject a single homogeneous group" in why
    assert "no two criteria agree" not in why
    assert "at k = 3 only 2 of 3 segments reproduce" in why
    assert k == 4  # no clear structure: the largest k whose segments are all highly stable
    assert "k = 4 is the largest number of segments that are all highly stable" in why
    assert f"lower bound of the least stable segment at k = 5: {stability[5].lower_min:.2f}" in why


def test_clear_candidate_that_does_not_reproduce_is_not_clear_structure():
    import pandas as pd

    from custseg.selection import _auto_rule

    table = pd.DataFrame({
        "inertia": [50.0, 20.0, 18.0],
        "silhouette": [0.40, 0.55, 0.45],
        "gap": [0.5, 0.9, 0.85],
        "gap_se": [0.01] * 3,
        "gmm_bic": [10.0, 5.0, 7.0],
    }, index=pd.Index([2, 3, 4], name="k"))
    baseline = {"inertia": 100.0, "gap": 0.0, "gap_se": 0.01}
    reproduces = {2: _stability([0.9, 0.9]), 3: _stability([0.9, 0.8, 0.95]), 4: _stability([0.9] * 4)}
    assert _auto_rule(table, baseline, reproduces, 20)[1:3] == (3, True)  # the criteria's k, stable: chosen
    shaky = {**reproduces, 3: _stability([0.9, 0.6, 0.95])}
    votes, k, clear, why = _auto_rule(table, baseline, shaky, 20)
    assert (k, clear) == (4, False) and why.startswith("No clear structure")
    nothing = {k: _stability([0.9] + [0.5 + k / 100] * (k - 1)) for k in (2, 3, 4)}
    votes, k, clear, why = _auto_rule(table, baseline, {**nothing, 3: _stability([0.9, 0.6, 0.95])}, 20)
    assert (k, clear) == (3, False) and "No k from 2 to 4 has all its segments highly stable" in why


def test_a_level_needs_its_confirmation_refits_and_every_lower_bound_at_085():
    import pandas as pd

    from custseg.selection import _auto_rule

    table = pd.DataFrame({"inertia": [50.0, 40.0, 35.0], "silhouette": [0.2, 0.21, 0.22], "gap": [0.1, 0.1, 0.1],
                          "gap_se": [0.01] * 3, "gmm_bic": [10.0, 9.0, 8.0]}, index=pd.Index([2, 3, 4], name="k"))
    baseline = {"inertia": 60.0, "gap": 0.1, "gap_se": 0.01}
    # k = 4's means all clear 0.85 but one segment dissolves in 2 of 20 refits: its lower bound does not
    dissolving = _stability([0.95] * 4, replicates=np.c_[np.r_[np.full(18, 0.95), 0.3, 0.3], np.full((20, 3), 0.95)])
    ks = {2: _stability([0.97, 0.96]), 3: _stability([0.95, 0.9, 0.92]), 4: dissolving}
    assert ks[4].segments["jaccard_mean"].min() > 0.85 and not ks[4].all_highly_stable
    assert _auto_rule(table, baseline, ks, 20)[1:3] == (3, False)
    assert _auto_rule(table, baseline, ks, 40)[1] == 2  # nothing confirmed on 40 refits: the most stable k
    assert _auto_rule(table, baseline, {**ks, 4: _stability([0.95] * 4)}, 20)[1] == 4


def test_confirm_levels_adds_refits_only_where_the_verdict_is_open():
    from custseg.selection import confirm_levels

    calls = []

    def refit(k, st, n_boot):
        calls.append((k, n_boot))
        return _stability(st.segments["jaccard_mean"].tolist(), n_boot=n_boot)

    stability = {2: _stability([0.97, 0.96]), 3: _stability([0.95, 0.9, 0.92]), 4: _stability([0.95, 0.6, 0.9, 0.9]),
                 5: _stability([0.9, 0.88, 0.86, 0.95, 0.9], sd=0.3)}
    assert confirm_levels(stability, [2, 3, 4, 5], 60, refit) == 3
    # k = 5: means clear 0.85, so refits go up to 60, where its wide spread fails; k = 4 has a mean below 0.85
    # and gets none; k = 3 is confirmed on 60; k = 2 is not needed
    assert calls == [(5, 40), (5, 60), (3, 40), (3, 60)]
    assert {k: st.n_boot for k, st in stability.items()} == {2: 20, 3: 60, 4: 20, 5: 60}


def test_drill_down_splits_only_segments_with_stable_sub_segments():
    rng = np.random.default_rng(0)
    two_blobs = np.vstack([rng.normal(size=(80, 6)), rng.normal(size=(80, 6)) + 12])
    one_blob = rng.normal(size=(150, 6)) + 40  # round in 6-D: any cut of it is arbitrary
    X = np.vstack([two_blobs, one_blob])
    labels = np.r_[np.zeros(160, int), np.ones(150, int)]
    first, second = drill_down(X, labels, n_init=3, seed=0, n_boot=10)
    assert first.k == 2 and first.n_customers == 160
    assert first.stability[2].all_stable and np.bincount(first.labels).tolist() == [80, 80]
    assert second.k is None and second.labels is None
    assert not any(st.all_stable for st in second.stability.values())
    assert sorted(second.stability) == [2, 3, 4]  # no split holds: every one was tried
    # an arbitrary cut stops refitting once a sub-segment can no longer reach 0.75 on average
    assert any(st.stopped_early for st in second.stability.values())
    d = first.to_dict()
    assert d["sizes"] == [80, 80] and d["stability"]["n_boot"] == 10
    # tried from 4 down: 4 and 3 cut a blob, 2 holds and ends the search
    assert [t["k"] for t in d["tried"]] == [2, 3, 4] and [t["all_stable"] for t in d["tried"]] == [True, False, False]
    four = np.vstack([rng.normal(size=(40, 6)) + 12 * np.eye(6)[i] for i in range(4)])
    top = drill_down(four, np.zeros(160, int), n_init=3, seed=0, n_boot=10)[0]
    assert top.k == 4 and sorted(top.stability) == [4]  # four blobs hold: 2 and 3 could not change that
    json.dumps([first.to_dict(), second.to_dict()], allow_nan=False)


def _stability(jaccards, *, n_boot=20, sd=0.05, replicates=None):
    """Bootstrap stability with these means and spread (or these replicates)."""
    import pandas as pd

    from custseg.stability import Stability, lower_bound, status

    if replicates is None:
        replicates = np.tile(jaccards, (n_boot, 1)) + sd * np.resize([1.0, -1.0], n_boot)[:, None]
    jaccards = np.nanmean(replicates, axis=0)
    table = pd.DataFrame({"jaccard_mean": jaccards, "jaccard_sd": np.nanstd(replicates, axis=0, ddof=1),
                          "jaccard_lower": lower_bound(replicates), "status": [status(j) for j in jaccards]},
                         index=pd.Index(range(len(jaccards)), name="segment"))
    return Stability(segments=table, mean_ari=0.8, n_boot=len(replicates), replicates=replicates, sample_size=100,
                     replicate_ari=np.full(len(replicates), 0.8))


def test_evidence_and_drill_down_do_not_depend_on_the_threads(monkeypatch):
    import custseg.selection as selection

    X = np.random.default_rng(4).normal(size=(300, 4))
    runs = []
    for threads in (1, 2):
        monkeypatch.setattr(selection, "available_cores", lambda: threads)
        runs.append(select_k(X, range(2, 6), silhouette_max_n=200, **FAST))
    one, two = runs
    assert one.table.to_numpy().tobytes() == two.table.to_numpy().tobytes()
    assert one.stability_to_dict() == two.stability_to_dict()
    for k, st in one.evidence.stability.items():
        assert st.replicates.tobytes() == two.evidence.stability[k].replicates.tobytes()
    assert [d.to_dict() for d in one.drilldown] == [d.to_dict() for d in two.drilldown]


def test_a_fit_after_others_draws_the_children_they_left():
    from custseg.selection import _after

    seq = np.random.SeedSequence(9, spawn_key=(2,))
    used = np.random.SeedSequence(9, spawn_key=(2,))
    used.spawn(6)
    later = _after(seq, 6)
    assert seq.n_children_spawned == 0
    assert [c.spawn_key for c in later.spawn(2)] == [c.spawn_key for c in used.spawn(2)] == [(2, 6), (2, 7)]
