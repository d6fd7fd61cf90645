"""The default pipeline recovers the generator's archetypes (issue 3, acceptance 6)."""

from __future__ import annotations

from sklearn.metrics import adjusted_rand_score

from custseg.datasets import generate
from custseg.segmenter import Segmenter

N_CUSTOMERS = 20_000
SEED = 20240
MIN_ARI = 0.8


def test_default_pipeline_recovers_archetypes(capsys):
    frame, truth = generate(N_CUSTOMERS, seed=SEED)
    model = Segmenter(n_clusters="auto", random_state=0).fit(frame)
    ari = adjusted_rand_score(truth, model.labels_)
    with capsys.disabled():
        print(f"\nrecovery: {N_CUSTOMERS:,} customers, seed {SEED}, "
              f"{len(set(truth))} archetypes, chosen k = {model.n_clusters_}, ARI = {ari:.3f}")
    assert len(model.labels_) == N_CUSTOMERS
    assert ari >= MIN_ARI, f"ARI {ari:.3f} < {MIN_ARI} at k = {model.n_clusters_}"
