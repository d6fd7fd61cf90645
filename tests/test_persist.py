import json

import numpy as np
import pytest

from custseg import Segmenter, load_model, save_model
from custseg.errors import ModelError

from helpers import tiny_portfolio


@pytest.fixture(scope="module")
def model():
    return Segmenter(n_clusters=3, k_max=3, n_init=2, n_refs=2).fit(tiny_portfolio(60))


def _save(model, path):
    save_model(path, model, segment_names=["a", "b", "c"], training={"n_customers": 60, "fingerprint": "x"})


def test_round_trip_assigns_identically(model, tmp_path):
    path = tmp_path / "m.json"
    _save(model, path)
    loaded, state = load_model(path)
    other = tiny_portfolio(45, seed=9)
    a_lab, a_dist = model.assign(other)
    b_lab, b_dist = loaded.assign(other)
    assert (a_lab == b_lab).all()
    assert np.array_equal(a_dist, b_dist)
    assert state["segment_names"] == ["a", "b", "c"]
    assert loaded.required_columns_ == model.required_columns_


def test_file_is_plain_json_with_schema_versions_and_fingerprint(model, tmp_path):
    path = tmp_path / "m.json"
    _save(model, path)
    state = json.loads(path.read_text())
    assert state["format"] == "custseg-model"
    assert {"scikit-learn", "numpy", "pandas"} <= set(state["versions"])
    assert state["training"]["fingerprint"] == "x"
    assert state["schema"][0]["name"] == "CUST_ID"


def test_saving_twice_gives_identical_bytes(model, tmp_path):
    _save(model, tmp_path / "a.json")
    _save(model, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


@pytest.mark.parametrize("content, words", [
    (b"\x80\x04\x95pickle", "not a custseg model"),
    (b'{"hello": 1}', "not a custseg model"),
    (b'{"format": "custseg-model", "format_version": 99}', "version 99"),
    (b'{"format": "custseg-model", "format_version": 1, "features": ["balance"]}', "damaged"),
])
def test_bad_model_files_are_refused(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=words):
        load_model(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "none.json")
