"""The command line, through click's runner: outputs, refusals, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from custseg.cli import cli

from helpers import tiny_portfolio

SRC = Path(__file__).resolve().parents[1] / "src"
FAST = ["--k-max", "4", "--n-init", "2", "--bootstrap", "4", "--gap-refs", "2", "--quiet"]
OUTPUTS = {"segments.csv", "profiles.csv", "profiles.json", "metrics.json", "data_quality.json",
           "description.json", "model.json", "report.html", "report.md", "figures", "segments_summary.csv"}


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "cards.csv"
    tiny_portfolio(90).to_csv(path, index=False)
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_run_writes_every_output(data, tmp_path):
    out = tmp_path / "out"
    res = invoke("run", data, "--out", out, "--k", "3", "--evidence", *FAST)
    assert res.exit_code == 0, res.output
    assert OUTPUTS <= {p.name for p in out.iterdir()}
    seg = pd.read_csv(out / "segments.csv")
    assert list(seg.columns) == ["customer_id", "segment", "segment_name", "distance_to_centre"]
    assert len(seg) == 90 and seg["customer_id"].is_unique
    assert set(seg["segment"]) == {1, 2, 3}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chosen_k"] == 3
    assert [row["k"] for row in metrics["selection"]["table"]] == [2, 3, 4]
    assert len(metrics["stability"]["segments"]) == 3


def test_non_empty_out_is_refused_and_left_alone(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = invoke("run", data, "--out", out, *FAST)
    assert res.exit_code == 2
    assert "not empty" in res.output and "--force" in res.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # --force replaces an earlier run's outputs, never a folder custseg did not write
    res = invoke("run", data, "--out", out, "--k", "3", "--force", *FAST)
    assert res.exit_code == 2 and "not written by custseg" in res.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    assert invoke("run", data, "--out", out, "--k", "3", *FAST).exit_code == 0
    first = (out / "segments.csv").read_bytes()
    res = invoke("run", data, "--out", out, "--k", "3", "--force", *FAST)
    assert res.exit_code == 0, res.output
    assert (out / "segments.csv").read_bytes() == first


def _broken(tmp_path, kind):
    path = tmp_path / f"{kind}.csv"
    frame = tiny_portfolio(30)
    if kind == "missing_column":
        frame.drop(columns=["PAYMENTS"]).to_csv(path, index=False)
    elif kind == "text":
        frame["BALANCE"] = frame["BALANCE"].astype(object)
        frame.loc[4, "BALANCE"] = "unknown"
        frame.to_csv(path, index=False)
    elif kind == "duplicate_ids":
        frame.loc[9, "CUST_ID"] = frame.loc[1, "CUST_ID"]
        frame.to_csv(path, index=False)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "header_only":
        frame.iloc[:0].to_csv(path, index=False)
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    return path


@pytest.mark.parametrize("kind, words", [
    ("missing_column", "PAYMENTS"), ("text", "row 5 ('unknown')"), ("duplicate_ids", "C10002"),
    ("empty", "empty"), ("header_only", "no customer rows"), ("binary", "binary"),
])
def test_broken_files_exit_2_with_a_message_and_write_nothing(tmp_path, kind, words):
    path = _broken(tmp_path, kind)
    before = path.read_bytes()
    out = tmp_path / "out"
    res = invoke("run", path, "--out", out, *FAST)
    assert res.exit_code == 2, res.output
    assert words in res.output and str(path) in res.output
    assert "Traceback" not in res.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp folder left
    assert path.read_bytes() == before


def test_too_few_rows_for_k(tmp_path):
    path = tmp_path / "few.csv"
    tiny_portfolio(12).to_csv(path, index=False)
    res = invoke("run", path, "--out", tmp_path / "o", "--quiet")
    assert res.exit_code == 2 and "at least 20" in res.output


def test_predict_round_trip_and_refusals(data, tmp_path):
    out = tmp_path / "out"
    assert invoke("run", data, "--out", out, "--k", "3", *FAST).exit_code == 0
    new = tmp_path / "new.csv"
    tiny_portfolio(30, seed=4).to_csv(new, index=False)
    scored = tmp_path / "scored.csv"
    res = invoke("predict", out / "model.json", new, "-o", scored)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(scored)
    assert len(table) == 30 and set(table["segment"]) <= {1, 2, 3}
    _scores_without_drawing_modules(out / "model.json", new, tmp_path / "scored_alone.csv")
    # the training data scored again gets its training segments
    again = tmp_path / "again.csv"
    assert invoke("predict", out / "model.json", data, "-o", again, "-q").exit_code == 0
    assert pd.read_csv(again)["segment"].tolist() == pd.read_csv(out / "segments.csv")["segment"].tolist()
    # a column the model needs is missing
    lacking = tmp_path / "lacking.csv"
    tiny_portfolio(10).drop(columns=["CREDIT_LIMIT"]).to_csv(lacking, index=False)
    res = invoke("predict", out / "model.json", lacking, "-o", tmp_path / "x.csv")
    assert res.exit_code == 2 and "CREDIT_LIMIT" in res.output
    assert not (tmp_path / "x.csv").exists()
    # a file that is not a model
    res = invoke("predict", data, new, "-o", tmp_path / "y.csv")
    assert res.exit_code == 2 and "not a custseg model" in res.output
    # existing output
    res = invoke("predict", out / "model.json", new, "-o", scored)
    assert res.exit_code == 2 and "--force" in res.output


#: Modules only the report needs; scoring must start without them.
DRAWING_MODULES = ("matplotlib", "seaborn", "scipy.cluster", "jinja2")


def _scores_without_drawing_modules(model, data, output):
    """``custseg predict`` in a fresh process imports none of the report's modules."""
    code = ("import atexit, sys\n"
            f"atexit.register(lambda: print(sorted(m for m in {DRAWING_MODULES!r} if m in sys.modules)))\n"
            "from custseg.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "predict", str(model), str(data), "-o", str(output), "-q"],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", ["run", "predict", "sample", "demo", "compare-models"])
def test_every_command_has_help_with_examples(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0
    assert "Examples:" in res.output and "custseg " + command in res.output


def test_bad_flag_values_exit_2(data, tmp_path):
    assert invoke("run", data, "--out", tmp_path / "o", "--k", "1").exit_code == 2
    assert invoke("run", data, "--out", tmp_path / "o", "--k-min", "6", "--k-max", "3").exit_code == 2
    res = invoke("run", data, "--out", tmp_path / "o", "--features", "bogus", "-q")
    assert res.exit_code == 2 and "unknown feature set" in res.output


def test_messy_copy_runs_and_notes_what_was_changed(tmp_path):
    frame = tiny_portfolio(90)
    frame.columns = [c.lower() for c in frame.columns]
    frame = frame.rename(columns={"minimum_payments": "minimum_payment", "cust_id": "customer_id"})
    frame["customer_id"] = range(500, 590)
    frame[""] = None  # the empty column a spreadsheet export leaves
    path = tmp_path / "messy.csv"
    frame.to_csv(path, index=False, sep=";")
    out = tmp_path / "out"
    res = invoke("run", path, "--out", out, "--k", "3", *FAST)
    assert res.exit_code == 0, res.output
    dq = json.loads((out / "data_quality.json").read_text())
    assert dq["renamed"]["minimum_payment"] == "MINIMUM_PAYMENTS"
    assert dq["renamed"]["customer_id"] == "CUST_ID"
    assert dq["empty_ignored"] == ["Unnamed: 18"]
    assert "customer ids are integers" in dq["notes"]
    assert pd.read_csv(out / "segments.csv")["customer_id"].tolist()[:2] == [500, 501]


def test_input_inside_the_output_folder_is_refused_even_with_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    data = out / "cards.csv"
    tiny_portfolio(60).to_csv(data, index=False)
    before = data.read_bytes()
    res = invoke("run", data, "--out", out, "--force", *FAST)
    assert res.exit_code == 2 and "inside the output folder" in res.output
    assert data.read_bytes() == before


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import custseg.report
    from custseg.run import RunConfig, segment, write_outputs

    result = segment(tiny_portfolio(60), RunConfig(k=3, k_max=3, n_init=2, n_boot=3, n_refs=2))

    def interrupted(*args):
        raise SystemExit(143)  # what a SIGTERM becomes in custseg's CLI

    monkeypatch.setattr(custseg.report, "render_all", interrupted)
    with pytest.raises(SystemExit):
        write_outputs(result, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_sample_writes_rows_and_truth_deterministically(tmp_path):
    for name in ("a", "b"):
        res = invoke("sample", "--rows", 500, "--seed", 3, "-o", tmp_path / f"{name}.csv",
                     "--truth", tmp_path / f"{name}_truth.csv", "-q")
        assert res.exit_code == 0, res.output
    frame = pd.read_csv(tmp_path / "a.csv")
    assert len(frame) == 500 and frame["CUST_ID"].is_unique
    assert len(pd.read_csv(tmp_path / "a_truth.csv")) == 500
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    res = invoke("sample", "--rows", 10, "-o", tmp_path / "x.xlsx")
    assert res.exit_code == 2 and ".csv or .parquet" in res.output
    res = invoke("sample", "--rows", 10, "-o", tmp_path / "a.csv")
    assert res.exit_code == 2 and "--force" in res.output


def test_demo_needs_no_input(tmp_path):
    out = tmp_path / "demo"
    res = invoke("demo", "--out", out, "--rows", 1500)
    assert res.exit_code == 0, res.output
    assert "ARI" in res.output
    assert OUTPUTS | {"portfolio.csv", "truth.csv"} <= {p.name for p in out.iterdir()}
    truth = pd.read_csv(out / "truth.csv")
    assert truth["customer_id"].tolist() == pd.read_csv(out / "segments.csv")["customer_id"].tolist()


def test_compare_models_prints_and_writes_the_table(data, tmp_path):
    out = tmp_path / "cmp"
    res = invoke("compare-models", data, "--k", 3, "--bootstrap", 2, "--out", out, "-q")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "comparison.csv")
    assert table["model"].tolist() == ["KMeans", "MiniBatchKMeans", "BisectingKMeans", "GaussianMixture",
                                       "AgglomerativeWard", "HDBSCAN"]
    assert {"silhouette", "stability", "ari_vs_kmeans", "noise_share", "fit_seconds"} <= set(table.columns)
    assert table.loc[0, "ari_vs_kmeans"] == 1.0
    assert "HDBSCAN" in res.output


def test_demo_report_names_its_synthetic_source(tmp_path):
    out = tmp_path / "demo"
    assert invoke("demo", "--out", out, "--rows", 1000, "--seed", 2, "-q").exit_code == 0
    assert json.loads((out / "data_quality.json").read_text())["source"].startswith("synthetic portfolio")
    assert "&lt;DataFrame&gt;" not in (out / "report.html").read_text()


def test_eda_writes_the_data_part_alone(data, tmp_path):
    out = tmp_path / "eda"
    res = invoke("eda", data, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"eda.html", "eda.md", "eda.json", "figures"}
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        f"{n}.{ext}" for n in ("correlation", "distributions", "missing") for ext in ("png", "svg"))
    stored = json.loads((out / "eda.json").read_text())
    raw = pd.read_csv(data)
    columns = {c["column"]: c for c in stored["exploration"]["columns"]}
    assert columns["MINIMUM_PAYMENTS"]["missing"] == raw["MINIMUM_PAYMENTS"].isna().sum()
    assert columns["BALANCE"]["median"] == pytest.approx(raw["BALANCE"].median())
    html = (out / "eda.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "http" not in html
    again = invoke("eda", data, "--out", out, "--quiet")
    assert again.exit_code == 2 and "not empty" in again.output


def test_import_custseg_gives_its_stages_as_attributes():
    # the package imports its heavy stages on first use; ``custseg.run`` after ``import custseg`` still works
    code = ("import sys, custseg\n"
            "assert 'custseg.run' not in sys.modules and 'sklearn' not in sys.modules\n"
            "assert callable(custseg.run.segmenter_for) and custseg.Segmenter.__name__ == 'Segmenter'\n"
            "assert not hasattr(custseg, 'no_such_stage')")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
