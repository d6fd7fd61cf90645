"""Segment identities: matching new segments to a reference model's, numbers, names, colours."""

from __future__ import annotations

import json

import numpy as np
import pytest

import custseg
from custseg import datasets, identity
from custseg.errors import ModelError
from custseg.identity import SegmentIdentity

N = 4000


def _fit(frame, seed, k=6):
    return custseg.Segmenter(n_clusters=k, random_state=seed, k_min=k, k_max=k).fit(frame)


def _names(frame, model) -> list[str]:
    return [n.name for n in custseg.name_segments(frame, model.labels_, model.n_clusters_)]


@pytest.fixture(scope="module")
def reference():
    frame, _ = datasets.generate(N, seed=0)
    model = _fit(frame, 0)
    return frame, model, identity.initial_identities(model.cluster_centers_, _names(frame, model))


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def _check_refit(ref_model, ref_ids, frame, new_model):
    """Every segment matched; each keeps the reference identity of the segment holding its customers."""
    ids, matching = identity.identities_for_refit(ref_model, ref_ids, new_model, frame, _names(frame, new_model))
    assert matching.new == () and matching.vanished == ()
    ref_labels = ref_model.predict(frame)
    for i, ident in enumerate(ids):
        j = ident.number - 1
        assert ident == ref_ids[j]  # same id, number, name and colour
        assert _jaccard(new_model.labels_ == i, ref_labels == j) >= 0.8
    numbers = identity.renumber(new_model.labels_, ids)
    assert (numbers == ref_labels + 1).mean() >= 0.9


def test_refit_with_another_seed_keeps_numbers_names_and_colours(reference):
    frame, model, ids = reference
    _check_refit(model, ids, frame, _fit(frame, 1))


def test_refit_on_next_month_keeps_numbers_names_and_colours():
    # Month 1 of generate_months is not generate()'s frame: build a reference on month 1 itself.
    months = datasets.generate_months(N, 2, seed=3)
    ref = _fit(months.frames[0], 0)
    ref_ids = identity.initial_identities(ref.cluster_centers_, _names(months.frames[0], ref))
    # Shuffle month 2 so the new model's segment order owes nothing to the reference.
    month2 = months.frames[1].sample(frac=1.0, random_state=0).reset_index(drop=True)
    _check_refit(ref, ref_ids, month2, _fit(month2, 7))


def test_new_and_vanished_segments():
    ref = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    # Near the first two; the third new centre is 6 from the third reference centre, whose
    # nearest neighbour is 10 away: beyond the default 0.5 x 10.
    new = np.array([[10.5, 0.0], [0.3, 0.2], [0.0, 16.0]])
    m = identity.match_segments_to_reference(new, ref)
    assert m.pairs == {0: 1, 1: 0} and m.new == (2,) and m.vanished == (2,)
    assert identity.match_segments_to_reference(new, ref, threshold=0.7).pairs == {0: 1, 1: 0, 2: 2}
    ref_ids = identity.initial_identities(ref, ["A", "B", "C"])
    ids = identity.assign_identities(m, ref_ids, new, ["x", "y", "z"])
    assert [i.number for i in ids] == [2, 1, 4]  # the vanished segment's number 3 is not reused
    assert [i.name for i in ids] == ["B", "A", "z"]
    assert [i.colour for i in ids] == [1, 0, 3]
    assert ids[2].id not in {r.id for r in ref_ids}
    assert identity.renumber(np.array([0, 1, 2, 2]), ids).tolist() == [2, 1, 4, 4]


def test_more_new_segments_than_reference_ones(reference):
    frame, model, ids = reference
    new, matching = identity.identities_for_refit(model, ids, _fit(frame, 0, k=7), frame,
                                                  [f"n{i}" for i in range(7)])
    assert len(matching.new) >= 1 and len(matching.pairs) + len(matching.new) == 7
    assert sorted(i.number for i in new) == sorted(set(i.number for i in new))
    assert max(i.number for i in new) >= 7


def test_identities_round_trip_through_json(reference):
    _, model, ids = reference
    state = json.loads(json.dumps({identity.STATE_KEY: identity.identities_to_state(ids),
                                   "centers": model.cluster_centers_.tolist()}))
    assert identity.identities_from_state(state) == ids
    assert identity.identities_from_state({}) is None
    # Same centre, same id; deterministic across runs.
    assert identity.initial_identities(model.cluster_centers_, ["a"] * 6)[0].id == ids[0].id


@pytest.mark.parametrize("records", [
    "not a list",
    [{"id": "a", "number": 1, "name": "A"}],
    [{"id": "a", "number": 0, "name": "A", "colour": 0}],
    [{"id": "a", "number": 1, "name": "A", "colour": 0}, {"id": "a", "number": 2, "name": "B", "colour": 1}],
])
def test_damaged_identities_are_refused(records):
    with pytest.raises(ModelError):
        identity.identities_from_state({identity.STATE_KEY: records})


def test_reference_features_missing_from_new_data_are_refused(reference):
    frame, model, ids = reference
    with pytest.raises(ModelError, match="PAYMENTS"):
        identity.identities_for_refit(model, ids, model, frame.drop(columns=["PAYMENTS"]), ["n"] * 6)


def test_bad_threshold_and_shapes():
    with pytest.raises(ModelError):
        identity.match_segments_to_reference(np.zeros((2, 3)), np.ones((2, 2)))
    with pytest.raises(ModelError):
        identity.match_segments_to_reference(np.zeros((2, 2)), np.ones((2, 2)), threshold=0)
    with pytest.raises(ModelError):
        SegmentIdentity.from_dict({"id": "a", "number": "x", "name": "A", "colour": 0})
