"""The choice of k on the real portfolio survives reseeding: same k, stable segments, same assignments."""

from itertools import combinations

import pytest
from sklearn.metrics import adjusted_rand_score

from custseg.load import load
from custseg.quality import validate
from custseg.segmenter import Segmenter
from custseg.stability import STABLE

SEEDS = range(5)


@pytest.fixture(scope="module")
def fits(real_data_path):
    portfolio, _ = validate(load(real_data_path), min_rows=20, min_distinct=10)
    return {seed: Segmenter(random_state=seed).fit(portfolio.frame) for seed in SEEDS}


@pytest.mark.xfail(strict=True, reason="measured: seeds 3 and 7 choose k = 5 (k = 7's least stable segment 0.69, "
                   "0.745), the others k = 7 (0.76-0.90); see docs/evidence.md section 7")
def test_every_seed_chooses_the_same_k(fits):
    ks = {seed: model.n_clusters_ for seed, model in fits.items()}
    assert len(set(ks.values())) == 1, ks


def test_every_segment_at_that_k_is_stable(fits):
    for seed, model in fits.items():
        stab = model.selection_.evidence.stability[model.n_clusters_]
        assert (stab.segments["jaccard_mean"] >= STABLE).all(), (seed, stab.segments)


@pytest.mark.xfail(strict=True, reason="follows from the seeds' different k (ARI 0.63 between k = 5 and k = 7)")
def test_assignments_agree_across_seeds(fits):
    for a, b in combinations(SEEDS, 2):
        assert adjusted_rand_score(fits[a].labels_, fits[b].labels_) >= 0.9, (a, b)


def test_flat_evidence_is_reported_as_no_clear_structure(fits):
    sel = fits[0].selection_
    assert sel.table["silhouette"].max() <= 0.25  # the real file's evidence is flat
    assert not sel.clear_structure and sel.reason.startswith("No clear structure")
    assert sel.chosen_k == max(sel.stable_ks)
    assert len(sel.drilldown) == sel.chosen_k


def test_seeds_that_choose_the_same_k_assign_the_same_segments(fits):
    by_k = {}
    for seed, model in fits.items():
        by_k.setdefault(model.n_clusters_, []).append(model.labels_)
    for same in by_k.values():
        for a, b in combinations(same, 2):
            assert adjusted_rand_score(a, b) >= 0.9
