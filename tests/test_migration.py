"""Migration between two assignments: exact answers on generated months, bad input, outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import custseg
from custseg import datasets, identity, migration
from custseg.errors import CustsegError, DataError, ModelError
from custseg.report import migration as report
from custseg.score import assignments

from helpers import clear_moves

N, SEED = 4000, 0
#: Floor on the share of all planted moves the six-segment pipeline recovers with the right from- and
#: to-segment, clear or not (measured 0.855 here; docs/migration.md).
ALL_MOVES_FLOOR = 0.8


@pytest.fixture(scope="module")
def months():
    return datasets.generate_months(N, 2, seed=SEED, move_share=0.1, join_share=0.03, leave_share=0.02)


@pytest.fixture(scope="module")
def scored(months):
    """A user's path: segment month 1, score month 2 with the same model."""
    f1, f2 = months.frames
    model = custseg.Segmenter(n_clusters=6, random_state=0, k_min=6, k_max=6).fit(f1)
    names = [f"Segment {i + 1}" for i in range(6)]
    ids = identity.initial_identities(model.cluster_centers_, names)
    sides = [assignments(f[custseg.schema.ID], *model.assign(f), names) for f in (f1, f2)]
    result = migration.compare_assignments(*sides, before_identities=ids, after_identities=ids)
    return model, sides, result


def _truth_side(frame, truth) -> pd.DataFrame:
    codes = truth.cat.codes.to_numpy()
    return pd.DataFrame({"customer_id": frame[custseg.schema.ID], "segment": codes + 1,
                         "segment_name": np.asarray(truth.cat.categories)[codes]})


def test_truth_as_segments_gives_exactly_the_planted_events(months):
    before, after = (_truth_side(f, t) for f, t in zip(months.frames, months.truth))
    result = migration.compare_assignments(before, after)
    events = months.moves(2)
    code = {name: i + 1 for i, name in enumerate(datasets.ARCHETYPES)}
    planted = events[events.event == "move"]
    expected = pd.DataFrame({"customer_id": planted.customer_id, "from_segment": planted.from_archetype.map(code),
                             "to_segment": planted.to_archetype.map(code)}).sort_values("customer_id")
    got = result.movers.astype({"from_segment": "int64", "to_segment": "int64"})
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    assert set(result.joined.customer_id) == set(events.customer_id[events.event == "join"])
    assert set(result.left.customer_id) == set(events.customer_id[events.event == "leave"])


def test_pipeline_reports_exactly_the_planted_joins_and_leaves(months, scored):
    _, _, result = scored
    events = months.moves(2)
    assert result.joined.customer_id.tolist() == sorted(events.customer_id[events.event == "join"])
    assert result.left.customer_id.tolist() == sorted(events.customer_id[events.event == "leave"])
    assert len(result.joined) == round(0.03 * N) and len(result.left) == round(0.02 * N)


def test_pipeline_reports_no_mover_that_was_not_planted(months, scored):
    _, _, result = scored
    planted = set(months.events.customer_id[months.events.event == "move"])
    assert set(result.movers.customer_id) <= planted
    assert result.to_dict()["customers"]["moved"] == len(result.movers) > 0


def test_pipeline_reports_exactly_the_clearly_separated_moves(months, scored):
    model, sides, result = scored
    home = pd.crosstab(months.truth[0].to_numpy(), sides[0].segment.to_numpy()).idxmax(axis=1)
    assert home.is_unique  # six archetypes, six segments: one each
    clear = clear_moves(model, months, home - 1)
    planted = months.events[months.events.event == "move"].set_index("customer_id")
    expected = pd.DataFrame({"from_segment": planted.from_archetype.map(home),
                             "to_segment": planted.to_archetype.map(home)})
    reported = result.movers.set_index("customer_id")
    assert reported.index.isin(planted.index).all()  # no reported move that was not planted
    assert clear.sum() >= 0.6 * len(planted)  # most moves are clear: the check is not vacuous
    pd.testing.assert_frame_equal(reported.reindex(clear.index[clear]).astype("float64"),
                                  expected[clear].astype("float64"))
    right = (reported.reindex(expected.index) == expected).all(axis=1)
    assert right.mean() >= ALL_MOVES_FLOOR


def test_transitions_add_up(scored):
    _, sides, result = scored
    t = result.transitions
    before = t[t.from_segment != migration.JOINED].groupby("from_segment").customers.sum()
    assert before.to_dict() == sides[0].segment.value_counts().to_dict()
    after = t[t.to_segment != migration.LEFT].groupby("to_segment").customers.sum()
    assert after.to_dict() == sides[1].segment.value_counts().to_dict()
    rows = t.groupby("from_segment").row_percent.sum()
    assert np.allclose(rows, 100, atol=0.05)
    net = result.net_flow
    assert (net.after - net.before == net.moved_in - net.moved_out + net.joined - net.left).all()
    assert (net.stayed + net.moved_out + net.left == net.before).all()


def test_segments_are_matched_by_identity_not_number():
    ids_before = [identity.SegmentIdentity("seg-a", 1, "Dormant", 0),
                  identity.SegmentIdentity("seg-b", 2, "Revolvers", 1)]
    # A later model that found the same two segments in the other order and a new third.
    ids_after = [identity.SegmentIdentity("seg-b", 2, "Revolvers", 1),
                 identity.SegmentIdentity("seg-a", 1, "Dormant", 0),
                 identity.SegmentIdentity("seg-c", 3, "Premium", 2)]
    before = pd.DataFrame({"customer_id": ["x", "y", "z"], "segment": [1, 2, 2]})
    after = pd.DataFrame({"customer_id": ["x", "y", "z"], "segment": [1, 2, 3]})
    result = migration.compare_assignments(before, after, before_identities=ids_before,
                                           after_identities=ids_after)
    assert result.matched_by == "identity"
    assert result.movers.values.tolist() == [["z", 2, 3]]
    assert result.segments.set_index("segment").loc[3, "in_before"] == False  # noqa: E712 (numpy bool)


def test_no_customer_in_common_is_refused():
    a = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, 2]})
    b = pd.DataFrame({"customer_id": ["c", "d"], "segment": [1, 2]})
    with pytest.raises(DataError, match="no customer in common"):
        migration.compare_assignments(a, b)


def test_different_models_without_identities_are_refused():
    a = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, 2], "segment_name": ["Dormant", "Premium"]})
    b = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, 2], "segment_name": ["Premium", "Dormant"]})
    with pytest.raises(DataError, match="different models"):
        migration.compare_assignments(a, b)


def test_unrelated_identities_are_refused():
    a = pd.DataFrame({"customer_id": ["a"], "segment": [1]})
    with pytest.raises(DataError, match="unrelated models"):
        migration.compare_assignments(a, a, before_identities=[identity.SegmentIdentity("seg-1", 1, "A", 0)],
                                      after_identities=[identity.SegmentIdentity("seg-2", 1, "A", 0)])


def test_repeated_customer_is_refused():
    a = pd.DataFrame({"customer_id": ["a", "a"], "segment": [1, 2]})
    with pytest.raises(DataError, match="more than once"):
        migration.compare_assignments(a, a)


def _run_folder(path, table, centres, identities=None):
    path.mkdir()
    table.to_csv(path / "segments.csv", index=False)
    state = {"format": "custseg-model", "centers": centres}
    if identities is not None:
        state[identity.STATE_KEY] = identity.identities_to_state(identities)
    (path / "model.json").write_text(json.dumps(state))
    return path


def test_read_side_and_write_outputs(tmp_path, scored):
    model, sides, _ = scored
    ids = identity.initial_identities(model.cluster_centers_, [f"Segment {i + 1}" for i in range(6)])
    centres = model.cluster_centers_.tolist()
    before = migration.read_side(_run_folder(tmp_path / "m1", sides[0], centres, ids))
    after = migration.read_side(_run_folder(tmp_path / "m2", sides[1], centres, ids) / "segments.csv")
    assert before.identities == ids and before.model_key == after.model_key
    result = migration.compare_sides(before, after)
    written = migration.write_migration(result, tmp_path / "cmp")
    assert set(written) >= {"transitions.csv", "movers.csv", "migration.json", "report.html", "report.md",
                            "figures/flow.png"}
    movers = pd.read_csv(tmp_path / "cmp" / "movers.csv", dtype={"customer_id": str})
    assert list(movers.columns) == ["customer_id", "from_segment", "to_segment"]
    assert len(movers) == len(result.movers)
    data = json.loads((tmp_path / "cmp" / "migration.json").read_text())
    assert data["customers"]["joined"] == len(result.joined)
    assert "Segment migration" in (tmp_path / "cmp" / "report.md").read_text()
    assert (tmp_path / "cmp" / "figures" / "flow.png").read_bytes() == report.flow_png(result.to_dict())
    with pytest.raises(CustsegError, match="not empty"):
        migration.write_migration(result, tmp_path / "cmp")


def test_sides_from_different_model_files_without_identities_are_refused(tmp_path):
    table = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, 2], "segment_name": ["A", "B"]})
    before = migration.read_side(_run_folder(tmp_path / "m1", table, [[0.0], [1.0]]))
    after = migration.read_side(_run_folder(tmp_path / "m2", table, [[0.0], [2.0]]))
    with pytest.raises(DataError, match="different models"):
        migration.compare_sides(before, after)


def test_damaged_model_file_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    pd.DataFrame({"customer_id": ["a"], "segment": [1]}).to_csv(folder / "segments.csv", index=False)
    (folder / "model.json").write_text('{"format": "custseg-model", "centers": ')
    with pytest.raises(ModelError, match="damaged"):
        migration.read_side(folder)


def test_segments_file_without_segment_column_is_refused(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"customer_id": ["a"], "cluster": [1]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="segment"):
        migration.read_side(path)


def test_bad_input_writes_nothing(tmp_path):
    a = pd.DataFrame({"customer_id": ["a"], "segment": [1]})
    b = pd.DataFrame({"customer_id": ["b"], "segment": [1]})
    with pytest.raises(DataError):
        migration.write_migration(migration.compare_assignments(a, b), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_segment_numbers_are_refused():
    a = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, None]})
    with pytest.raises(DataError, match="line"):
        migration.compare_assignments(a, a, before_label="s.csv")


def test_outputs_are_byte_identical(tmp_path, scored):
    _, _, result = scored
    for name in ("one", "two"):
        migration.write_migration(result, tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(files) == 9
    for f in files:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f
