"""The choice of k on the real portfolio survives reseeding: same k, stable segments, same assignments."""

from itertools import combinations

import pytest
from sklearn.metrics import adjusted_rand_score

from custseg.load import load
from custseg.quality import validate
from custseg.segmenter import Segmenter
from custseg.stability import HIGHLY_STABLE, STABLE

SEEDS = range(5)


@pytest.fixture(scope="module")
def fits(real_data_path):
    portfolio, _ = validate(load(real_data_path), min_rows=20, min_distinct=10)
    return {seed: Segmenter(random_state=seed).fit(portfolio.frame) for seed in SEEDS}


def test_every_seed_chooses_the_same_k(fits):
    ks = {seed: model.n_clusters_ for seed, model in fits.items()}
    assert len(set(ks.values())) == 1, ks


def test_every_segment_at_that_k_is_stable(fits):
    for seed, model in fits.items():
        stab = model.selection_.evidence.stability[model.n_clusters_]
        assert (stab.segments["jaccard_mean"] >= STABLE).all(), (seed, stab.segments)


def test_assignments_agree_across_seeds(fits):
    for a, b in combinations(SEEDS, 2):
        assert adjusted_rand_score(fits[a].labels_, fits[b].labels_) >= 0.9, (a, b)


def test_flat_evidence_is_reported_as_no_clear_structure(fits):
    sel = fits[0].selection_
    assert sel.table["silhouette"].max() <= 0.25  # the real file's evidence is flat
    assert not sel.clear_structure and sel.reason.startswith("No clear structure")
    assert sel.chosen_k == max(sel.highly_stable_ks)
    assert len(sel.drilldown) == sel.chosen_k


def test_the_level_is_confirmed_and_every_larger_k_falls_short(fits):
    for seed, model in fits.items():
        sel = model.selection_
        level = sel.evidence.stability[sel.chosen_k]
        assert level.n_boot == sel.evidence.confirm_boot
        assert (level.segments["jaccard_lower"] >= HIGHLY_STABLE).all(), (seed, level.segments)
        for k, st in sel.evidence.stability.items():
            if k > sel.chosen_k:
                assert st.lower_min < HIGHLY_STABLE, (seed, k)
