import json
import pickle
import re

import numpy as np
import pytest
from click.testing import CliRunner

from custseg import Segmenter, load_model, save_model
from custseg.cli import cli
from custseg.errors import ModelError
from custseg.persist import KEYS, MAX_DEPTH, model_id, model_state

from helpers import tiny_portfolio

NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def model():
    return Segmenter(n_clusters=3, k_max=3, n_init=2, n_refs=2).fit(tiny_portfolio(60))


@pytest.fixture()
def saved(model, tmp_path):
    path = tmp_path / "m.json"
    _save(model, path)
    return path


def _save(model, path, names=NAMES, source="cards.csv"):
    save_model(path, model, segment_names=names,
               training={"source": source, "n_customers": 60, "fingerprint": "x"})


def test_round_trip_assigns_identically(model, saved):
    loaded, state = load_model(saved)
    other = tiny_portfolio(45, seed=9)
    a_lab, a_dist = model.assign(other)
    b_lab, b_dist = loaded.assign(other)
    assert (a_lab == b_lab).all()
    assert np.array_equal(a_dist, b_dist)
    assert np.array_equal(model.embed(other), loaded.embed(other))
    assert state["segment_names"] == NAMES
    assert loaded.required_columns_ == model.required_columns_
    assert loaded.get_params() == model.get_params()
    assert list(loaded.feature_names_out_) == list(model.feature_names_out_)


def test_file_is_plain_json_with_schema_versions_fingerprint_and_steps(model, saved):
    state = json.loads(saved.read_text())
    assert tuple(state) == KEYS
    assert state["format"] == "custseg-model" and state["format_version"] == 2
    assert {"scikit-learn", "numpy", "pandas"} <= set(state["versions"])
    assert state["training"]["fingerprint"] == "x"
    assert state["schema"][0]["name"] == "CUST_ID"
    assert [(s["step"], s["class"]) for s in state["pipeline"]] == [
        ("impute", "DomainImputer"), ("derive", "DeriveBehaviour"), ("log", "LogTransform"),
        ("scale", "Standardise")]
    assert state["pipeline"][3]["state"]["mean"] == model.pipeline_.named_steps["scale"].mean_.tolist()


def test_saving_twice_gives_identical_bytes(model, tmp_path):
    _save(model, tmp_path / "a.json")
    _save(model, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_model_id_identifies_the_fit_not_its_provenance(model, saved):
    state = json.loads(saved.read_text())
    assert state["model_id"] == model_id(state)
    assert len(state["model_id"]) == 64 and int(state["model_id"], 16) >= 0
    refit = Segmenter(n_clusters=3, k_max=3, n_init=2, n_refs=2).fit(tiny_portfolio(60))
    elsewhere = model_state(refit, segment_names=NAMES, training={"source": "/elsewhere/cards.csv"})
    assert elsewhere["model_id"] == state["model_id"]
    assert model_state(model, segment_names=["x", "b", "c"], training={})["model_id"] != state["model_id"]
    other = Segmenter(n_clusters=3, k_max=3, n_init=2, n_refs=2, random_state=1).fit(tiny_portfolio(60, seed=1))
    assert model_state(other, segment_names=NAMES, training={})["model_id"] != state["model_id"]


def test_a_version_1_file_is_still_read(model, saved, tmp_path):
    state = json.loads(saved.read_text())
    steps = {s["step"]: s["state"] for s in state.pop("pipeline")}
    del state["model_id"]
    state.update(format_version=1, impute=steps["impute"], log_columns=steps["log"]["columns"],
                 scale=steps["scale"])
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(state, indent=1))
    loaded, upgraded = load_model(old)
    other = tiny_portfolio(30, seed=5)
    assert np.array_equal(loaded.assign(other)[1], model.assign(other)[1])
    assert upgraded["model_id"] == json.loads(saved.read_text())["model_id"]


def _edit(change):
    """Damage a saved model's parsed state, then write it back as JSON (NaN and Infinity allowed)."""
    def damage(path):
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state, indent=1))
    return damage


def _text(change):
    def damage(path):
        path.write_text(change(path.read_text()))
    return damage


def _bytes(content):
    def damage(path):
        path.write_bytes(content)
    return damage


def _scale(state):
    return state["pipeline"][3]["state"]


DAMAGE = {
    "names list truncated": (_edit(lambda s: s["segment_names"].pop()), "'segment_names' has 2 names for 3"),
    "null name": (_edit(lambda s: s["segment_names"].__setitem__(0, None)), "no nulls"),
    "centres missing a row": (_edit(lambda s: s["centers"].pop()), "'segment_names' has 3 names for 2"),
    "centre row too short": (_edit(lambda s: s["centers"][1].pop()), "'centers' row 2 has"),
    "NaN centre": (_edit(lambda s: s["centers"][0].__setitem__(0, float("nan"))), "NaN is not a number"),
    "Infinity centre": (_edit(lambda s: s["centers"][0].__setitem__(0, float("inf"))), "Infinity is not"),
    "'Infinity' text centre": (_edit(lambda s: s["centers"][0].__setitem__(0, "Infinity")),
                               "'centers' row 1 must be a list of numbers"),
    "overflowing centre": (_text(lambda t: re.sub(r'("centers": \[\s*\[\s*)[^,\s]+', r"\g<1>1e999", t, count=1)),
                           "'centers' row 1 holds a number that is not finite"),
    "zero scale": (_edit(lambda s: _scale(s)["scale"].__setitem__(2, 0.0)), "'scale' holds 0"),
    "means shorter than scales": (_edit(lambda s: _scale(s)["mean"].pop()), "'mean' has"),
    "negative inertia": (_edit(lambda s: s.update(inertia=-1.0)), "'inertia' holds a number below 0"),
    "null param": (_edit(lambda s: s["params"].update(n_init=None)), "null"),
    "unknown param": (_edit(lambda s: s["params"].update(evil=1)), "unknown parameter"),
    "null params": (_edit(lambda s: s.update(params=None)), "'params' must be a JSON object"),
    "unknown feature name": (_edit(lambda s: s["features"].__setitem__(0, "happiness")), "unknown feature"),
    "params disagree with features": (_edit(lambda s: s["params"].update(features="notebook")), "not the one"),
    "model inputs renamed": (_edit(lambda s: s["model_inputs"].__setitem__(0, "x")), "not what the pipeline"),
    "schema for other columns": (_edit(lambda s: s["schema"].pop()), "'schema' does not list"),
    "step of an unknown class": (_edit(lambda s: s["pipeline"][0].update({"class": "os.system"})),
                                 "not a custseg step"),
    "steps out of order": (_edit(lambda s: s["pipeline"].reverse()), "pipeline step 'scale'"),
    "null versions": (_edit(lambda s: s["versions"].update(numpy=None)), "'versions'"),
    "missing key": (_edit(lambda s: s.pop("centers")), "lacks 'centers'"),
    "unexpected key": (_edit(lambda s: s.update(code="import os")), "unexpected 'code'"),
    "repeated key": (_text(lambda t: t.replace('"inertia":', '"inertia": 1.0, "inertia":', 1)), "appears twice"),
    "a centre edited": (_edit(lambda s: s["centers"][0].__setitem__(0, s["centers"][0][0] + 1e-9)),
                        "does not match its model_id"),
    "a name edited": (_edit(lambda s: s["segment_names"].__setitem__(0, "Gold")), "does not match its model_id"),
    "wrong format": (_edit(lambda s: s.update(format="other-model")), "not a custseg model"),
    "newer version": (_edit(lambda s: s.update(format_version=99)), "version 99"),
    "version 1 without its steps": (_bytes(b'{"format": "custseg-model", "format_version": 1, "features": []}'),
                                    "lacks 'impute'"),
    "deeply nested": (_bytes(b'{"format": "custseg-model", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
                      f"nested more than {MAX_DEPTH}"),
    "a pickle": (_bytes(pickle.dumps({"format": "custseg-model"})), "pickle"),
    "an empty file": (_bytes(b""), "empty"),
    "not JSON": (_bytes(b"customer,segment\n1,2\n"), "not valid JSON"),
    "truncated JSON": (_text(lambda t: t[: len(t) // 2]), "not valid JSON"),
    "binary": (_bytes(b"\xff\xfe\x00garbage"), "not UTF-8"),
    "JSON but a list": (_bytes(b"[1, 2, 3]"), "not a custseg model"),
}


@pytest.mark.parametrize("damage, words", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_model_files_are_refused(saved, damage, words):
    damage(saved)
    with pytest.raises(ModelError, match=words) as refused:
        load_model(saved)
    message = str(refused.value)
    assert str(saved) in message and "\n" not in message and "Traceback" not in message


def test_missing_model_file_and_folder(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "none.json")
    with pytest.raises(ModelError, match="is a folder"):
        load_model(tmp_path)


@pytest.mark.parametrize("damage", ["zero scale", "a pickle", "deeply nested"])
def test_predict_with_a_damaged_model_exits_2(saved, tmp_path, damage):
    DAMAGE[damage][0](saved)
    data = tmp_path / "cards.csv"
    tiny_portfolio(10).to_csv(data, index=False)
    res = CliRunner().invoke(cli, ["predict", str(saved), str(data), "-o", str(tmp_path / "s.csv")])
    assert res.exit_code == 2 and str(saved) in res.output
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("ids", [["a", "b", "c", "d"], ["a", "b", None, "a"]])
def test_fingerprint_in_blocks_is_the_whole_frame_digest(monkeypatch, ids):
    import hashlib

    import pandas as pd

    from custseg import persist

    frame = pd.DataFrame({"CUST_ID": pd.Series(ids * 3, dtype="string"), "BALANCE": [1.5, np.nan, 0.0] * 4})
    whole = hashlib.sha256("CUST_ID\x1fBALANCE".encode())
    whole.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    monkeypatch.setattr(persist, "FINGERPRINT_ROWS", 5)
    assert persist.fingerprint(frame) == whole.hexdigest()
    assert persist.fingerprint(frame.iloc[::-1]) != whole.hexdigest()


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_the_scoring_reader_refuses_every_damaged_file(saved, damage):
    from custseg.persist import load_scoring_model

    damage[0](saved)
    with pytest.raises(ModelError) as refused:
        load_scoring_model(saved)
    assert str(saved) in str(refused.value) and "\n" not in str(refused.value)


def test_the_scoring_reader_reads_what_load_model_rebuilds(model, saved):
    from custseg.persist import load_scoring_model

    read = load_scoring_model(saved)
    loaded, state = load_model(saved)
    impute, derive, log, scale = (step for _, step in loaded.pipeline_.steps)
    assert read.state == state and read.required_columns == loaded.required_columns_
    assert read.medians.tolist() == list(impute.medians_.values()) and read.minimum_ratio == impute.minimum_ratio_
    assert read.features == derive.features_ and read.logged == set(log.columns)
    assert np.array_equal(read.mean, scale.mean_) and np.array_equal(read.scale, scale.scale_)
    assert list(read.model_inputs) == list(loaded.feature_names_out_)
    assert np.array_equal(read.centres, loaded.cluster_centers_)
