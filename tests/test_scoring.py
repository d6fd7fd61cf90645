"""Scoring in batches (custseg.scoring) gives what scoring in one go gives: scores, data quality, drift, refusals."""

from __future__ import annotations

import gc
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from custseg import run as runs
from custseg import scoring
from custseg.cli import cli
from custseg.errors import DataError
from custseg.settings import Settings

from test_hostile import BAD_DATA, READABLE, Table

#: Rows per batch in these tests: the 600-customer file is scored in five batches.
ROWS = 128


@pytest.fixture(scope="module")
def real_text(real_data_path) -> str:
    with open(real_data_path, encoding="utf-8", newline="") as fh:
        return "".join(next(fh) for _ in range(601))


@pytest.fixture(scope="module")
def model(real_text, tmp_path_factory):
    """A model fitted on the first 600 customers of the real file."""
    folder = tmp_path_factory.mktemp("model")
    data = folder / "cards.csv"
    data.write_text(real_text)
    result = runs.segment(data, Settings(k=4, k_max=4, n_init=2, n_boot=2, n_refs=2))
    runs.write_run_files(result, folder)
    return folder / "model.json"


def outcome(score, data, output):
    """What scoring ``data`` gives: the refusal's message, or the scores, the quality (no distribution) and drift."""
    try:
        scored = score(data, output)
    except DataError as exc:
        return str(exc)
    read = pd.read_parquet if output.suffix == ".parquet" else pd.read_csv
    return read(output), replace(scored.quality, distribution={}), scored.drift_dict()


def same(model, data, folder, suffix=".parquet"):
    whole = outcome(lambda d, o: runs.predict_with_drift(model, d, o), data, folder / f"whole{suffix}")
    batched = outcome(lambda d, o: scoring.predict_batches(model, d, o, rows=ROWS), data, folder / f"batched{suffix}")
    assert gc.isenabled()  # paused while scoring only
    if isinstance(whole, str) or isinstance(batched, str):
        assert batched == whole
        assert not (folder / f"batched{suffix}").exists()
        return whole
    pd.testing.assert_frame_equal(batched[0], whole[0], check_exact=True)
    assert batched[1] == whole[1]
    assert batched[2] == whole[2]
    return whole


@pytest.mark.parametrize("case", [c for c in BAD_DATA if c not in ("short_row", "truncated_last_line", "long_row")])
def test_hostile_files_are_refused_or_scored_as_in_one_go(case, real_text, model, tmp_path):
    damage = BAD_DATA[case][0]
    data = tmp_path / "cards.csv"
    data.write_bytes(damage(Table(real_text)).bytes())
    same(model, data, tmp_path)


@pytest.mark.parametrize("case", READABLE)
def test_what_banks_export_scores_as_in_one_go(case, real_text, model, tmp_path):
    name, write, _ = READABLE[case]
    data = tmp_path / name
    data.write_bytes(write(Table(real_text)))
    result = same(model, data, tmp_path, ".csv")
    assert not isinstance(result, str) and len(result[0]) == 600


def test_repairs_met_only_in_later_batches_are_decided_on_the_whole_file(real_text, model, tmp_path):
    """Percentages in one column, negatives, zero limits, gaps and over-one shares, spread over the batches."""
    frame = pd.read_csv(pd.io.common.StringIO(real_text))
    frame["PRC_FULL_PAYMENT"] *= 100
    frame.loc[::97, "PAYMENTS"] = -5.0
    frame.loc[450:460, "CREDIT_LIMIT"] = 0.0
    frame.loc[500:, "MINIMUM_PAYMENTS"] = np.nan
    frame.loc[590:, "BALANCE_FREQUENCY"] = 1.2
    frame["CUST_ID"] = frame["CUST_ID"].str.replace("C", "  C") + " "
    data = tmp_path / "cards.parquet"
    frame.to_parquet(data, index=False)
    _, quality, _ = same(model, data, tmp_path)
    checks = {(f.check, f.column) for f in quality.findings}
    assert {("percent_scale", "PRC_FULL_PAYMENT"), ("negative", "PAYMENTS"), ("out_of_range", "CREDIT_LIMIT"),
            ("above_one", "BALANCE_FREQUENCY")} <= checks


def test_an_id_repeated_across_batches_is_refused_as_in_one_go(real_text, model, tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO(real_text))
    frame.loc[550, "CUST_ID"] = frame.loc[3, "CUST_ID"]
    data = tmp_path / "twice.parquet"
    frame.to_parquet(data, index=False)
    message = same(model, data, tmp_path)
    assert "repeats 1 id(s) over 2 rows" in message and "rows 4, 551" in message


def test_an_id_repeated_in_a_batch_of_longer_ids_is_refused(real_text, model, tmp_path):
    """An id's hash depends on the id alone, not on the longest id of its batch."""
    frame = pd.read_csv(pd.io.common.StringIO(real_text))
    frame.loc[550, "CUST_ID"] = frame.loc[3, "CUST_ID"]
    frame.loc[560, "CUST_ID"] = "C" + "7" * 30
    data = tmp_path / "twice.parquet"
    frame.to_parquet(data, index=False)
    message = same(model, data, tmp_path)
    assert "repeats 1 id(s) over 2 rows" in message and "rows 4, 551" in message


def test_integer_ids_and_csv_output(real_text, model, tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO(real_text))
    frame["CUST_ID"] = np.arange(7, 7 + len(frame)) * 1000
    data = tmp_path / "cards.parquet"
    frame.to_parquet(data, index=False)
    _, quality, _ = same(model, data, tmp_path, ".csv")
    assert "customer ids are integers" in quality.notes
    whole, batched = (tmp_path / "whole.csv").read_bytes(), (tmp_path / "batched.csv").read_bytes()
    assert batched == whole


def test_id_hashes_tell_ids_apart():
    ids = pa.array(["C1", "C10", "C100000000001", "C100000000002", "", "é", "C1"], type=pa.large_string())
    h = scoring._hash_ids(ids)
    assert h[0] == h[6] and len(set(h[:6].tolist())) == 6
    assert np.array_equal(scoring._hash_ids(ids.slice(2, 3)), h[2:5])
    assert scoring._hash_ids(ids.slice(0, 1))[0] == h[0]  # whatever the other ids of the batch
    assert scoring._hash_ids(pa.array([None, ""], type=pa.large_string()))[0] == h[4]


def test_cli_scores_a_large_file_in_batches_with_drift(real_text, model, tmp_path, monkeypatch):
    frame = pd.read_csv(pd.io.common.StringIO(real_text))
    frame["PURCHASES"] *= 3
    data = tmp_path / "cards.parquet"
    frame.to_parquet(data, index=False)
    runner = CliRunner()
    args = ["predict", str(model), str(data), "--quiet"]
    whole = runner.invoke(cli, [*args, "-o", str(tmp_path / "whole.parquet"), "--drift-json", str(tmp_path / "w.json")])
    monkeypatch.setattr(scoring, "PREDICT_STREAM_ROWS", 100)
    assert scoring.streams(data)
    batched = runner.invoke(cli, [*args, "-o", str(tmp_path / "batched.parquet"),
                                  "--drift-json", str(tmp_path / "b.json")])
    assert whole.exit_code == batched.exit_code == 0, batched.output
    assert "DRIFT: column PURCHASES" in batched.output and batched.output == whole.output
    assert json.loads((tmp_path / "b.json").read_text()) == json.loads((tmp_path / "w.json").read_text())


def test_streams_only_large_files(model, tmp_path, monkeypatch):
    data = tmp_path / "small.parquet"
    pd.DataFrame({"CUST_ID": ["a", "b"], "BALANCE": [1.0, 2.0]}).to_parquet(data)
    assert not scoring.streams(data)
    monkeypatch.setattr(scoring, "PREDICT_STREAM_ROWS", 1)
    assert scoring.streams(data)
    assert not scoring.streams(pd.DataFrame())


@pytest.mark.parametrize("features", ["behaviour", "notebook"])
def test_feature_program_is_the_pipeline_bit_for_bit(features, tmp_path):
    """Gaps, zero tenures and denominators, negatives: the compiled features and scores are the pipeline's."""
    from custseg import Segmenter, save_model
    from custseg.persist import load_scoring_model
    from custseg.score import nearest
    from custseg.scoring_kernels import Workspace

    from helpers import tiny_portfolio

    frame = tiny_portfolio(300, seed=4)
    fitted = Segmenter(n_clusters=3, features=features, evidence=False, n_init=2).fit(frame)
    save_model(tmp_path / "m.json", fitted, segment_names=["a", "b", "c"], training={})
    program = scoring.feature_program(load_scoring_model(tmp_path / "m.json"))
    rng = np.random.default_rng(0)
    damaged = frame.copy()
    for col in ("MINIMUM_PAYMENTS", "PAYMENTS", "CREDIT_LIMIT", "TENURE", "PURCHASES_TRX", "BALANCE"):
        damaged.loc[rng.random(len(frame)) < 0.1, col] = np.nan
    damaged.loc[::7, "TENURE"] = 0.0
    damaged.loc[::11, ["ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES"]] = 0.0
    damaged.loc[::13, "BALANCE"] = -5.0
    expected = fitted.embed(damaged)
    X = np.stack([damaged[c].to_numpy(dtype=np.float64) for c in program.columns])
    assert np.array_equal(program.embed(X.copy()).T, expected)
    work = Workspace()
    program.score(np.repeat(X, 2, axis=1), work)  # a larger batch first: the next one reuses its arrays
    reused = program.score(X.copy(), work)
    done = program.score(X)
    labels, distances = nearest(expected, fitted.cluster_centers_)
    assert np.array_equal(done.labels, labels) and np.array_equal(done.distances, distances)
    assert np.array_equal(reused.labels, labels) and np.array_equal(reused.distances, distances)
    assert done.counts.shape[0] == 0 and done.far == 0  # no training distribution: nothing counted


def test_scoring_in_batches_loads_neither_scikit_learn_nor_scipys_subpackages(real_text, model, tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO(real_text))
    data = tmp_path / "cards.parquet"
    frame.to_parquet(data, index=False)
    # numba imports scipy's package and its BLAS bindings (scipy.linalg) itself, not the subpackages below
    script = (
        "import sys\n"
        "HEAVY = {'scipy.stats', 'scipy.sparse', 'scipy.optimize', 'scipy.spatial'}\n"
        "from click.testing import CliRunner\n"
        "from custseg import scoring\n"
        "from custseg.cli import cli\n"
        "scoring.PREDICT_STREAM_ROWS = 100\n"
        f"res = CliRunner().invoke(cli, ['predict', {str(model)!r}, {str(data)!r}, '-o', {str(tmp_path / 's.parquet')!r}])\n"
        "assert res.exit_code == 0, res.output\n"
        "print(sorted({m for m in sys.modules if m.split('.')[0] == 'sklearn' or m in HEAVY}))\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == len(frame)
