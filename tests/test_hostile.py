"""Hostile but fair use: every case ends in exit 0 with correct outputs, or exit 2 with one short
paragraph that says what is wrong and where, and nothing of the user's is changed.

Each case runs the command line (click's runner; a real process where a signal or a second
process is the point) and asserts the exit code, the key words of the message (file, column,
rows, what to do), that there is no traceback, that no output was written, and that every file
and folder under the test's folder, inputs included, is byte-identical afterwards.

Data cases use the first 600 customers of the real file (``head -601 cc_general.csv``), as the
issue that listed them did.

Permissions: the tests run as root, for whom the kernel ignores a folder's write bits. The
read-only cases therefore ``chmod`` the folder *and* replace ``os.access`` with a check of the
mode bits, which is what a non-root user gets, so the pre-check runs as it would for them. A
full disk is simulated twice: ``shutil.disk_usage`` reporting 1 MB free (the pre-check), and an
``OSError(ENOSPC)``/``OSError(EROFS)`` raised halfway through writing (the mid-write path).
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import custseg.report.drawing
from custseg.cli import cli
from custseg.persist import model_id

from helpers import tiny_portfolio

FAST = ["--k-max", "4", "--n-init", "2", "--bootstrap", "3", "--gap-refs", "2", "--quiet"]
#: "One short paragraph": the longest refusal message accepted, in characters.
MAX_MESSAGE = 700
SRC = Path(__file__).resolve().parents[1] / "src"


# --------------------------------------------------------------------------- helpers


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(root: Path) -> dict:
    """Every file (bytes), folder and link under ``root``, hidden ones included."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                out[key] = ("link", os.readlink(path))
            elif path.is_dir():
                out[key] = "dir"
            else:
                out[key] = path.read_bytes()
    return out


def assert_refused(res, words, root: Path, before: dict, *, code: int = 2) -> None:
    """Exit ``code``, a short message holding ``words``, no traceback, and ``root`` exactly as before."""
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert len(res.output) <= MAX_MESSAGE, res.output
    for word in words:
        assert str(word) in res.output, f"{word!r} not in {res.output!r}"
    after = snapshot(root)
    assert after.keys() == before.keys(), sorted(after.keys() ^ before.keys())
    assert after == before


class Table:
    """The 600-customer copy of the real file as text cells, to damage one way or another."""

    def __init__(self, text: str):
        lines = list(csv.reader(io.StringIO(text)))
        self.header, self.rows = lines[0], lines[1:]

    def col(self, name: str) -> int:
        return self.header.index(name)

    def set(self, row: int, column: str, value: str) -> Table:
        self.rows[row][self.col(column)] = value
        return self

    def fill(self, column: str, value: str) -> Table:
        for r in self.rows:
            r[self.col(column)] = value
        return self

    def text(self, sep: str = ",") -> str:
        return "".join(sep.join(r) + "\n" for r in [self.header, *self.rows])

    def bytes(self, sep: str = ",", encoding: str = "utf-8") -> bytes:
        return self.text(sep).encode(encoding)


@pytest.fixture(scope="module")
def real_text(real_data_path) -> str:
    with open(real_data_path, encoding="utf-8", newline="") as fh:
        return "".join(next(fh) for _ in range(601))


@pytest.fixture()
def table(real_text) -> Table:
    return Table(real_text)


@pytest.fixture(scope="module")
def model_dir(real_text, tmp_path_factory) -> Path:
    """A model trained on the 600 customers (library calls: no report needed), and their scores."""
    from custseg.persist import save_model
    from custseg.run import RunConfig, segment

    folder = tmp_path_factory.mktemp("model")
    data = folder / "cards.csv"
    data.write_text(real_text)
    result = segment(data, RunConfig(k=4, k_max=4, n_init=2, n_boot=2, n_refs=2))
    save_model(folder / "model.json", result.model, segment_names=[n.name for n in result.names],
               training=result.training_info())
    result.segments_table().to_csv(folder / "segments.csv", index=False, lineterminator="\n")
    return folder


@pytest.fixture()
def no_figures(monkeypatch):
    """Skip drawing the PNG figures (most of a small run's time) where the report is not the point."""
    monkeypatch.setattr(custseg.report.drawing.Drawing, "start", lambda self, *args, **kwargs: self)


# --------------------------------------------------------------------------- bad data: run refuses


def _dup(t: Table, n: int, distinct: int) -> Table:
    t.rows = [[f"C{90000 + i}", *t.rows[i % distinct][1:]] for i in range(n)]
    return t


def _footer(t: Table, cells) -> Table:
    t.rows.append(cells)
    return t


def _drop(t: Table, column: str) -> Table:
    i = t.col(column)
    t.header.pop(i)
    for r in t.rows:
        r.pop(i)
    return t


def _short_row(t: Table, row: int, missing: int) -> Table:
    t.rows[row] = t.rows[row][:-missing]
    return t


BAD_DATA = {
    # name: (damage, extra flags, key words of the message besides the file name)
    "inf": (lambda t: t.set(4, "BALANCE", "inf"), [], ["BALANCE", "row 5", "infinite"]),
    "minus_inf": (lambda t: t.set(4, "PAYMENTS", "-inf"), [], ["PAYMENTS", "row 5", "-inf"]),
    "Infinity": (lambda t: t.set(9, "PURCHASES", "Infinity"), [], ["PURCHASES", "row 10", "inf"]),
    "inf_in_a_share": (lambda t: t.set(2, "PRC_FULL_PAYMENT", "inf"), [], ["PRC_FULL_PAYMENT", "row 3"]),
    "inf_everywhere": (lambda t: t.fill("BALANCE", "inf"), [], ["BALANCE", "600", "row 1"]),
    "overflow_1e400": (lambda t: t.set(7, "CASH_ADVANCE", "1e400"), [], ["CASH_ADVANCE", "row 8"]),
    "1e308_credit_limit": (lambda t: t.set(4, "CREDIT_LIMIT", "1e308"), [], ["CREDIT_LIMIT", "row 5", "1e+308"]),
    "minus_1e300": (lambda t: t.set(0, "BALANCE", "-1e300"), [], ["BALANCE", "row 1"]),
    "absurd_tenure": (lambda t: t.set(5, "TENURE", "99999"), [], ["TENURE", "row 6"]),
    "100_identical": (lambda t: _dup(t, 100, 1), [], ["100", "identical"]),
    "all_values_empty": (lambda t: [r.__setitem__(slice(1, None), [""] * 17) for r in t.rows] and t, [],
                         ["every numeric value is empty"]),
    "empty_TENURE": (lambda t: t.fill("TENURE", ""), [], ["TENURE", "no value"]),
    "empty_CREDIT_LIMIT": (lambda t: t.fill("CREDIT_LIMIT", ""), [], ["CREDIT_LIMIT", "no value"]),
    "every_TENURE_0": (lambda t: t.fill("TENURE", "0"), [], ["TENURE", "no usable value", "below 1"]),
    "every_CREDIT_LIMIT_0": (lambda t: t.fill("CREDIT_LIMIT", "0"), [], ["CREDIT_LIMIT", "no usable value"]),
    "debts_as_negatives": (lambda t: [r.__setitem__(1, "-" + r[1]) for r in t.rows if float(r[1])] and t, [],
                           ["BALANCE", "negative in", "sign"]),
    "footer_total_blank": (lambda t: _footer(t, ["Total"] + [""] * 17), [], ["row 601", "Total", "footer"]),
    "footer_total_sums": (lambda t: _footer(t, ["TOTAL:"] + ["123456.7"] * 17), [], ["row 601", "TOTAL"]),
    "footer_blank_row": (lambda t: _footer(t, [""] * 18), [], ["row 601"]),
    "blank_id": (lambda t: t.set(2, "CUST_ID", ""), [], ["CUST_ID", "row 3"]),
    "duplicate_id": (lambda t: t.set(9, "CUST_ID", "C10002"), [], ["C10002", "rows 2, 10"]),
    "duplicate_header": (lambda t: t.header.append("BALANCE") or [r.append("5") for r in t.rows] and t, [],
                         ["BALANCE", "twice", "columns 2 and 19"]),
    "two_headers_one_meaning": (lambda t: t.header.append("balance_amount") or [r.append("5") for r in t.rows] and t,
                                [], ["balance_amount", "BALANCE"]),
    "header_again_midfile": (lambda t: t.rows.insert(300, list(t.header)) or t, [],
                             ["row 301", "repeats the header"]),
    "text_in_every_column": (lambda t: t.rows.__setitem__(3, [t.rows[3][0]] + ["x"] * 17) or t, [],
                             ["row 4", "'x'", "more columns"]),
    "short_row": (lambda t: _short_row(t, 10, 3), [], ["row 11", "15", "18"]),
    "truncated_last_line": (lambda t: _short_row(t, 599, 9), [], ["row 600", "9", "18"]),
    "long_row": (lambda t: t.rows[10].append("7") or t, [], ["line 12", "19"]),
    "text_in_a_number": (lambda t: t.set(4, "BALANCE", "unknown"), [], ["BALANCE", "row 5", "'unknown'"]),
    "share_ambiguous_scale": (lambda t: t.set(4, "PRC_FULL_PAYMENT", "50"), [], ["PRC_FULL_PAYMENT", "row 5"]),
    "frequency_ambiguous_scale": (lambda t: t.set(0, "PURCHASES_FREQUENCY", "80"), [],
                                  ["PURCHASES_FREQUENCY", "row 1"]),
    "missing_column": (lambda t: _drop(t, "PAYMENTS"), [], ["PAYMENTS", "lacks"]),
    "misspelt_column": (lambda t: t.header.__setitem__(t.col("PAYMENTS"), "PAYMNTS") or t, [],
                        ["PAYMNTS", "PAYMENTS"]),
    "few_rows": (lambda t: setattr(t, "rows", t.rows[:5]) or t, [], ["5 customer rows", "--k-max"]),
    "five_profiles_k8": (lambda t: _dup(t, 100, 5), ["--k", "8", "--k-max", "8"], ["5 distinct", "--k"]),
    "header_only": (lambda t: setattr(t, "rows", []) or t, [], ["no customer rows"]),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_is_refused_before_anything_is_written(case, table, tmp_path):
    damage, flags, words = BAD_DATA[case]
    data = tmp_path / "cards.csv"
    data.write_bytes(damage(table).bytes())
    before = snapshot(tmp_path)
    res = invoke("run", data, "--out", tmp_path / "out", *FAST, *flags)
    assert_refused(res, [data, *words], tmp_path, before)


RAW_FILES = {
    # name: (file name, bytes, key words)
    "empty_file": ("cards.csv", b"", ["empty", "0 bytes"]),
    "json_array": ("cards.json", json.dumps([{"CUST_ID": f"C{i}", "BALANCE": i} for i in 
                                               range(3000)]).encode(), ["JSON"]),
    "json_named_csv": ("cards.csv", json.dumps({"rows": [[i, i] for i in range(3000)]}).encode(), ["JSON"]),
    "200000_columns": ("wide.csv", (",".join(f"c{i}" for i in range(200_000)) + "\n1\n").encode(),
                       ["columns", "right file"]),
    "one_line_no_breaks": ("flat.csv", b"1," * 600_000, ["columns", "own line"]),
    "one_line_no_delimiters": ("flat.csv", b"1" * 600_000, ["line break"]),
    "binary": ("cards.csv", bytes(range(256)) * 40, ["binary"]),
    "xlsx": ("cards.csv", b"PK\x03\x04" + bytes(2000), ["Excel", "CSV"]),
    "pdf": ("cards.csv", b"%PDF-1.7\n" + bytes(100), ["PDF"]),
    "pickle": ("cards.csv", b"\x80\x04\x95" + bytes(100), ["binary"]),
    "corrupt_gzip": ("cards.csv.gz", b"\x1f\x8b\x08\x00" + b"garbage" * 50, ["gzip"]),
    "corrupt_parquet": ("cards.parquet", b"PAR1" + b"garbage" * 50, ["Parquet"]),
    "utf16_garbage": ("cards.csv", b"\xff\xfe" + bytes(range(1, 256)) * 8, ["UTF-16"]),
    "only_a_title": ("cards.csv", b"Portfolio export\n", ["CUST_ID"]),
}


@pytest.mark.parametrize("case", RAW_FILES)
def test_files_that_are_no_portfolio_are_refused_in_a_few_lines(case, tmp_path):
    name, content, words = RAW_FILES[case]
    data = tmp_path / name
    data.write_bytes(content)
    before = snapshot(tmp_path)
    res = invoke("run", data, "--out", tmp_path / "out", *FAST)
    assert_refused(res, [data, *words], tmp_path, before)


def test_missing_file_and_folder_as_data(tmp_path):
    before = snapshot(tmp_path)
    assert_refused(invoke("run", tmp_path / "nope.csv", "--out", tmp_path / "o", *FAST),
                   ["nope.csv", "no such file"], tmp_path, before)
    (tmp_path / "d").mkdir()
    before = snapshot(tmp_path)
    assert_refused(invoke("run", tmp_path / "d", "--out", tmp_path / "o", *FAST), ["d"], tmp_path, before)


@pytest.mark.parametrize("command", ["predict", "compare-models"])
@pytest.mark.parametrize("case", ["inf", "Infinity", "all_values_empty", "empty_CREDIT_LIMIT", "short_row",
                                  "footer_total_blank", "1e308_credit_limit", "missing_column", "every_TENURE_0",
                                  "debts_as_negatives"])
def test_predict_and_compare_models_validate_as_run_does(command, case, table, model_dir, tmp_path):
    damage, _, words = BAD_DATA[case]
    data = tmp_path / "cards.csv"
    data.write_bytes(damage(table).bytes())
    before = snapshot(tmp_path)
    if command == "predict":
        res = invoke("predict", model_dir / "model.json", data, "-o", tmp_path / "scores.csv")
    else:
        res = invoke("compare-models", data, "--out", tmp_path / "cmp", *FAST)
    assert_refused(res, [data, *words], tmp_path, before)


# --------------------------------------------------------------------------- what banks export: read right


def _european(t: Table, thousands: bool) -> bytes:
    def cell(i, v):
        if i == 0 or not v:
            return v
        number = float(v)
        if thousands:
            text = f"{number:,.6f}".rstrip("0").rstrip(".")
            return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return v.replace(".", ",")
    t.rows = [[cell(i, v) for i, v in enumerate(r)] for r in t.rows]
    return t.bytes(";", "cp1252")


READABLE = {
    # name: (file name, how to write it, note expected in data_quality notes or None)
    "tab_separated": ("cards.tsv", lambda t: t.bytes("\t"), "tabs"),
    "pipe_separated": ("cards.txt", lambda t: t.bytes("|"), "pipes"),
    "semicolon_decimal_comma": ("cards.csv", lambda t: _european(t, False), "decimal comma"),
    "excel_european_sep_line": ("cards.csv", lambda t: b"sep=;\n" + _european(t, True), "1.234,56"),
    "gzip": ("cards.csv.gz", lambda t: gzip.compress(t.bytes(), mtime=0), "gzip"),
    "utf16_le_bom": ("cards.csv", lambda t: t.bytes(encoding="utf-16"), "UTF-16"),
    "utf16_be_bom": ("cards.csv", lambda t: b"\xfe\xff" + t.bytes(encoding="utf-16-be"), "UTF-16"),
    "utf8_bom": ("cards.csv", lambda t: b"\xef\xbb\xbf" + t.bytes(), "byte-order mark"),
    "cp1252_title_line": ("cards.csv", lambda t: "Kundenübersicht März 2024\n".encode("cp1252") + t.bytes(), "cp1252"),
    "crlf": ("cards.csv", lambda t: t.text().replace("\n", "\r\n").encode(), None),
    "quoted_everything": ("cards.csv", lambda t: "".join(",".join(f'"{v}"' for v in r) + "\n"
                                                        for r in [t.header, *t.rows]).encode(), None),
    "lower_case_reordered_extra": ("cards.csv", lambda t: _reordered(t), None),
    "percent_PRC_FULL_PAYMENT": ("cards.csv", lambda t: _percent(t, "PRC_FULL_PAYMENT"), None),
    "percent_PURCHASES_FREQUENCY": ("cards.csv", lambda t: _percent(t, "PURCHASES_FREQUENCY"), None),
}


def _reordered(t: Table) -> bytes:
    frame = pd.DataFrame(t.rows, columns=[h.lower() for h in t.header])
    frame["branch"] = "north"
    frame[""] = ""
    return frame[frame.columns[::-1]].to_csv(index=False).encode()


def _percent(t: Table, column: str) -> bytes:
    i = t.col(column)
    for r in t.rows:
        r[i] = f"{float(r[i]) * 100:.4f}"
    return t.bytes()


@pytest.mark.parametrize("case", READABLE)
def test_what_banks_export_scores_like_the_plain_file(case, table, model_dir, tmp_path):
    name, write, note = READABLE[case]
    data = tmp_path / name
    data.write_bytes(write(table))
    before = data.read_bytes()
    out = tmp_path / "scores.csv"
    res = invoke("predict", model_dir / "model.json", data, "-o", out)
    assert res.exit_code == 0, res.output
    assert data.read_bytes() == before
    got, want = pd.read_csv(out), pd.read_csv(model_dir / "segments.csv")
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    assert got["segment"].tolist() == want["segment"].tolist()
    assert got["distance_to_centre"].to_numpy() == pytest.approx(want["distance_to_centre"].to_numpy(), abs=1e-5)
    if case.startswith("percent_"):
        column = case.removeprefix("percent_")
        assert f"{column} is on a 0–100 scale" in res.output and "divided by 100" in res.output


def test_run_summary_names_the_repairs_and_data_quality_counts_them(table, tmp_path, no_figures):
    data = tmp_path / "cards.csv"
    data.write_bytes(_percent(table, "PRC_FULL_PAYMENT"))
    out = tmp_path / "out"
    res = invoke("run", data, "--out", out, *FAST)
    assert res.exit_code == 0, res.output
    assert "data changed before use" in res.stderr
    assert "PRC_FULL_PAYMENT is on a 0–100 scale" in res.stderr and "MINIMUM_PAYMENTS empty" in res.stderr
    findings = json.loads((out / "data_quality.json").read_text())["findings"]
    percent = [f for f in findings if f["check"] == "percent_scale"]
    assert percent and percent[0]["column"] == "PRC_FULL_PAYMENT" and percent[0]["count"] == 600


# --------------------------------------------------------------------------- flags checked before computing


BAD_FLAGS = {
    "seed_minus_1": (["run", "{data}", "--out", "{tmp}/o", "--seed", "-1"], ["--seed", "-1"]),
    "seed_2_32": (["run", "{data}", "--out", "{tmp}/o", "--seed", str(2**32)], ["--seed", str(2**32)]),
    "sample_seed_minus_1": (["sample", "-o", "{tmp}/s.csv", "--seed", "-1"], ["--seed"]),
    "sample_seed_2_32": (["sample", "-o", "{tmp}/s.csv", "--seed", str(2**32)], ["--seed"]),
    "demo_seed_minus_1": (["demo", "-o", "{tmp}/d", "--seed", "-1"], ["--seed"]),
    "demo_seed_2_32": (["demo", "-o", "{tmp}/d", "--seed", str(2**32)], ["--seed"]),
    "compare_seed_2_32": (["compare-models", "{data}", "--seed", str(2**32)], ["--seed"]),
    "features_trailing_comma": (["run", "{data}", "--out", "{tmp}/o", "--features", "balance,"],
                                ["1 feature", "balance"]),
    "features_repeated": (["run", "{data}", "--out", "{tmp}/o", "--features", "balance,balance"],
                          ["balance", "more than once"]),
    "features_only_commas": (["run", "{data}", "--out", "{tmp}/o", "--features", ",,"], ["0 features"]),
    "features_unknown": (["run", "{data}", "--out", "{tmp}/o", "--features", "balance,bogus"], ["bogus"]),
    "features_empty": (["run", "{data}", "--out", "{tmp}/o", "--features", ""], ["feature set"]),
    "k_1": (["run", "{data}", "--out", "{tmp}/o", "--k", "1"], ["--k"]),
    "k_text": (["run", "{data}", "--out", "{tmp}/o", "--k", "many"], ["--k"]),
    "k_min_above_k_max": (["run", "{data}", "--out", "{tmp}/o", "--k-min", "6", "--k-max", "3"], ["--k-min"]),
    "bootstrap_1": (["run", "{data}", "--out", "{tmp}/o", "--bootstrap", "1"], ["--bootstrap"]),
    "sample_rows_0": (["sample", "-o", "{tmp}/s.csv", "--rows", "0"], ["--rows"]),
    "sample_bad_suffix": (["sample", "-o", "{tmp}/s.xlsx"], [".csv or .parquet"]),
    "predict_bad_suffix": (["predict", "{model}", "{data}", "-o", "{tmp}/s.xlsx"], [".csv or .parquet"]),
}


@pytest.mark.parametrize("case", BAD_FLAGS)
def test_bad_flags_are_refused_before_computing(case, table, model_dir, tmp_path):
    args, words = BAD_FLAGS[case]
    data = tmp_path / "cards.csv"
    data.write_bytes(table.bytes())
    before = snapshot(tmp_path)
    fill = {"data": data, "tmp": tmp_path, "model": model_dir / "model.json"}
    res = invoke(*[a.format(**fill) for a in args])
    assert_refused(res, words, tmp_path, before)


# --------------------------------------------------------------------------- outputs: nothing of the user's destroyed


@pytest.fixture()
def data(tmp_path) -> Path:
    path = tmp_path / "cards.csv"
    tiny_portfolio(90).to_csv(path, index=False)
    return path


def test_force_never_empties_a_folder_custseg_did_not_write(data, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("secret")
    (home / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    res = invoke("run", data, "--out", home, "--force", *FAST)
    assert_refused(res, [home, "not written by custseg", "--force"], tmp_path, before)


def test_force_keeps_a_users_file_added_to_an_earlier_output_folder(data, tmp_path, no_figures):
    out = tmp_path / "out"
    assert invoke("run", data, "--out", out, "--k", "3", *FAST).exit_code == 0
    (out / "my_notes.txt").write_text("written by hand after the run")
    before = snapshot(tmp_path)
    res = invoke("run", data, "--out", out, "--k", "3", "--force", *FAST)
    assert_refused(res, [out, "my_notes.txt"], tmp_path, before)


def test_force_replaces_an_earlier_run(data, tmp_path, no_figures):
    out = tmp_path / "out"
    assert invoke("run", data, "--out", out, "--k", "3", *FAST).exit_code == 0
    first = snapshot(out)
    res = invoke("run", data, "--out", out, "--k", "3", "--force", *FAST)
    assert res.exit_code == 0, res.output
    assert snapshot(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv", "out"]


@pytest.mark.parametrize("where", [".", "..", "cwd_parent_force"])
def test_out_dot_and_dotdot_are_refused(where, data, tmp_path, monkeypatch):
    work = tmp_path / "work" / "sub"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    flags = ["--force"] if where.endswith("force") else []
    out = ".." if where != "." else "."
    res = invoke("run", data, "--out", out, *flags, *FAST)
    assert_refused(res, ["current folder"], tmp_path, before)


def test_out_folder_holding_the_input_is_refused_even_with_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".custseg-output").write_text("{}")
    data = out / "cards.csv"
    tiny_portfolio(60).to_csv(data, index=False)
    before = snapshot(tmp_path)
    assert_refused(invoke("run", data, "--out", out, "--force", *FAST), ["inside the output folder"], tmp_path, before)


def test_out_that_is_a_file_is_refused(data, tmp_path):
    (tmp_path / "out").write_text("a file")
    before = snapshot(tmp_path)
    assert_refused(invoke("run", data, "--out", tmp_path / "out", "--force", *FAST), ["is a file"], tmp_path, before)


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_symlinked_out_is_refused_and_both_ends_kept(force, data, tmp_path, no_figures):
    real = tmp_path / "real"
    assert invoke("run", data, "--out", real, "--k", "3", *FAST).exit_code == 0
    (tmp_path / "link").symlink_to(real)
    before = snapshot(tmp_path)
    res = invoke("run", data, "--out", tmp_path / "link", *force, *FAST)
    assert_refused(res, ["symbolic link", str(real)], tmp_path, before)


def _mode_bits_access(path, mode, *args, **kwargs):
    """``os.access`` as a non-root user sees it: the owner's write bit decides."""
    st = os.stat(path)
    return not (mode & os.W_OK) or bool(st.st_mode & 0o200)


@pytest.fixture()
def read_only(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    monkeypatch.setattr(os, "access", _mode_bits_access)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("command", ["run", "predict", "sample", "demo", "compare-models"])
def test_read_only_output_folder_is_refused_first(command, read_only, data, model_dir, tmp_path):
    before = snapshot(tmp_path)
    res = invoke(*{
        "run": ["run", data, "--out", read_only / "out", *FAST],
        "predict": ["predict", model_dir / "model.json", data, "-o", read_only / "s.csv"],
        "sample": ["sample", "-n", "50", "-o", read_only / "s.csv"],
        "demo": ["demo", "-o", read_only / "d", "-q"],
        "compare-models": ["compare-models", data, "--out", read_only / "c", *FAST],
    }[command])
    assert_refused(res, [read_only, "not writable"], tmp_path, before)


@pytest.mark.parametrize("command", ["run", "predict", "sample", "demo"])
def test_full_disk_is_refused_before_computing(command, data, model_dir, tmp_path, monkeypatch):
    import shutil

    from custseg.sinks import folder as folder_module

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(folder_module.shutil, "disk_usage", lambda p: usage._replace(free=0))
    before = snapshot(tmp_path)
    res = invoke(*{
        "run": ["run", data, "--out", tmp_path / "out", *FAST],
        "predict": ["predict", model_dir / "model.json", data, "-o", tmp_path / "s.csv"],
        "sample": ["sample", "-n", "100000", "-o", tmp_path / "s.csv"],
        "demo": ["demo", "-o", tmp_path / "d", "-q"],
    }[command])
    assert_refused(res, ["MB free", "has only 0 MB"], tmp_path, before)


def _fail_midway(err: int):
    def write(*args, **kwargs):
        path = next((a for a in args if isinstance(a, (str, Path))), kwargs.get("path_or_buf", "x"))
        Path(path).write_text("half")
        raise OSError(err, os.strerror(err), str(path))
    return write


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                        (errno.EIO, "Input/output error")])
def test_run_failing_midway_through_writing_leaves_nothing(err, words, data, tmp_path, monkeypatch, no_figures):
    import custseg.run

    monkeypatch.setattr(custseg.run, "save_model", _fail_midway(err))
    before = snapshot(tmp_path)
    assert_refused(invoke("run", data, "--out", tmp_path / "out", "--k", "3", *FAST), [words], tmp_path, before)


def test_run_failing_midway_keeps_the_earlier_run(data, tmp_path, monkeypatch, no_figures):
    import custseg.run

    out = tmp_path / "out"
    assert invoke("run", data, "--out", out, "--k", "3", *FAST).exit_code == 0
    monkeypatch.setattr(custseg.run, "save_model", _fail_midway(errno.ENOSPC))
    before = snapshot(tmp_path)
    assert_refused(invoke("run", data, "--out", out, "--k", "3", "--force", *FAST), ["disk is full"], tmp_path, before)


def test_predict_failing_midway_leaves_nothing(data, model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(pd.DataFrame, "to_csv", _fail_midway(errno.ENOSPC))
    before = snapshot(tmp_path)
    assert_refused(invoke("predict", model_dir / "model.json", data, "-o", tmp_path / "s.csv"),
                   ["s.csv", "disk is full"], tmp_path, before)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sample_failing_midway_leaves_nothing(suffix, tmp_path, monkeypatch):
    import custseg.datasets

    write = custseg.datasets._TableWriter.write
    calls = []

    def fail_on_the_third_chunk(self, frame):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        write(self, frame)

    monkeypatch.setattr(custseg.datasets._TableWriter, "write", fail_on_the_third_chunk)
    monkeypatch.setattr(custseg.datasets, "CHUNK_ROWS", 100)
    (tmp_path / "old.csv").write_text("keep me\n")
    before = snapshot(tmp_path)
    res = invoke("sample", "-n", "300", "-o", tmp_path / f"p{suffix}", "--truth",
                 tmp_path / "old.csv", "--force", "-q")
    assert_refused(res, [f"p{suffix}", "disk is full"], tmp_path, before)


OUTPUT_FILES = {
    # name: (args, key words); {data} is the input, {model} the model
    "predict_into_missing_folder": (["predict", "{model}", "{data}", "-o", "{tmp}/missing_dir/x.csv"],
                                    ["missing_dir", "does not exist"]),
    "predict_over_its_input": (["predict", "{model}", "{data}", "-o", "{data}", "--force"],
                               ["cards.csv", "input"]),
    "predict_over_its_input_other_spelling": (["predict", "{model}", "{data}", "-o", "{tmp}/./sub/../cards.csv",
                                               "--force"], ["input"]),
    "predict_over_its_input_via_link": (["predict", "{model}", "{data}", "-o", "{tmp}/alias.csv", "--force"],
                                        ["input"]),
    "predict_over_the_model": (["predict", "{model}", "{data}", "-o", "{model}", "--force"], [".csv or .parquet"]),
    "predict_existing_output": (["predict", "{model}", "{data}", "-o", "{tmp}/old.csv"], ["old.csv", "--force"]),
    "predict_into_a_folder": (["predict", "{model}", "{data}", "-o", "{tmp}/sub"], ["sub"]),
    "sample_into_missing_folder": (["sample", "-n", "10", "-o", "/nonexistent/s.csv"], ["/nonexistent"]),
    "sample_truth_is_output": (["sample", "-n", "10", "-o", "{tmp}/s.csv", "--truth", "{tmp}/s.csv"],
                               ["--truth", "same file"]),
    "sample_truth_is_output_other_spelling": (["sample", "-n", "10", "-o", "{tmp}/s.csv", "--truth",
                                               "{tmp}/sub/../s.csv", "--force"], ["--truth", "same file"]),
    "sample_truth_over_existing": (["sample", "-n", "10", "-o", "{tmp}/s.csv", "--truth", "{tmp}/old.csv"],
                                   ["old.csv", "--force"]),
    "sample_over_data_via_link": (["sample", "-n", "10", "-o", "{tmp}/alias.csv", "--force"],
                                  ["alias.csv", "symbolic link"]),
    "predict_over_a_link": (["predict", "{model}", "{data}", "-o", "{tmp}/other_link.csv", "--force"],
                            ["other_link.csv", "symbolic link"]),
}


@pytest.mark.parametrize("case", OUTPUT_FILES)
def test_output_files_never_overwrite_inputs_or_unasked_files(case, data, model_dir, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "old.csv").write_text("keep me\n")
    (tmp_path / "alias.csv").symlink_to(data)
    (tmp_path / "other_link.csv").symlink_to(tmp_path / "old.csv")
    args, words = OUTPUT_FILES[case]
    fill = {"data": data, "tmp": tmp_path, "model": model_dir / "model.json"}
    model_before = (model_dir / "model.json").read_bytes()
    before = snapshot(tmp_path)
    res = invoke(*[a.format(**fill) for a in args])
    assert_refused(res, words, tmp_path, before)
    assert (model_dir / "model.json").read_bytes() == model_before


# --------------------------------------------------------------------------- damaged model files


def _restamp(state: dict) -> dict:
    state["model_id"] = model_id(state)
    return state


def _edit(change, restamp: bool = True):
    def damage(text: str) -> str:
        state = json.loads(text)
        change(state)
        return json.dumps(_restamp(state) if restamp else state)
    return damage


def _step(state: dict, name: str) -> dict:
    return next(s for s in state["pipeline"] if s["step"] == name)["state"]


DAMAGED_MODELS = {
    # name: (damage to the text of model.json, key words)
    "names_shorter_than_centres": (_edit(lambda s: s["segment_names"].pop()), ["segment_names"]),
    "null_names": (_edit(lambda s: s.__setitem__("segment_names", None)), ["segment_names"]),
    "a_null_name": (_edit(lambda s: s["segment_names"].__setitem__(0, None)), ["segment_names"]),
    "null_params": (_edit(lambda s: s.__setitem__("params", None)), ["params"]),
    "a_null_param": (_edit(lambda s: s["params"].__setitem__("n_init", None)), ["params", "n_init"]),
    "nan_centre": (lambda t: _centre_text(t, "NaN"), ["NaN"]),
    "1e400_centre": (lambda t: _centre_text(t, "1e400"), ["centers"]),
    "null_centre": (_edit(lambda s: s["centers"][0].__setitem__(0, None)), ["centers"]),
    "text_centre": (_edit(lambda s: s["centers"][0].__setitem__(0, "1.5")), ["centers"]),
    "ragged_centres": (_edit(lambda s: s["centers"][1].pop()), ["centers"]),
    "no_centres": (_edit(lambda s: s.__setitem__("centers", [])), ["centers"]),
    "zero_scale": (_edit(lambda s: _step(s, "scale")["scale"].__setitem__(0, 0.0)), ["scale"]),
    "negative_scale": (_edit(lambda s: _step(s, "scale")["scale"].__setitem__(1, -2.0)), ["scale"]),
    "short_scale": (_edit(lambda s: _step(s, "scale")["scale"].pop()), ["scale"]),
    "unknown_step_class": (_edit(lambda s: s["pipeline"][0].__setitem__("class", "os.system")), ["os.system"]),
    "no_pipeline": (_edit(lambda s: s.__setitem__("pipeline", [])), ["pipeline"]),
    "deeply_nested": (lambda t: "[" * 100_000 + "]" * 100_000, ["nested"]),
    "nested_inside_model": (_edit(lambda s: s.__setitem__("training", json.loads("[" * 50 + "]" * 50))),
                            ["nested"]),
    "missing_key": (_edit(lambda s: s.pop("centers")), ["centers"]),
    "unknown_key": (_edit(lambda s: s.__setitem__("extra", 1)), ["extra"]),
    "repeated_key": (lambda t: t.replace('"inertia":', '"inertia": 1, "inertia":', 1), ["inertia", "twice"]),
    "wrong_format": (_edit(lambda s: s.__setitem__("format", "sklearn")), ["not a custseg model"]),
    "future_version": (_edit(lambda s: s.__setitem__("format_version", 99)), ["version 99"]),
    "unknown_feature": (_edit(lambda s: s["features"].__setitem__(0, "bogus")), ["bogus"]),
    "negative_inertia": (_edit(lambda s: s.__setitem__("inertia", -1.0)), ["inertia"]),
    "edited_without_new_id": (_edit(lambda s: s["segment_names"].__setitem__(0, "VIP"), restamp=False),
                              ["model_id", "edited"]),
    "truncated": (lambda t: t[: len(t) // 2], ["not valid JSON"]),
    "empty": (lambda t: "", ["empty"]),
    "a_list": (lambda t: "[1, 2, 3]", ["not a custseg model"]),
    "a_number": (lambda t: "42", ["not a custseg model"]),
    "csv_instead": (lambda t: "CUST_ID,BALANCE\nC1,5\n", ["not valid JSON"]),
}


def _centre_text(text: str, literal: str) -> str:
    state = json.loads(text)
    state["centers"][0][0] = 12345.5
    return json.dumps(_restamp(state)).replace("12345.5", literal)


@pytest.mark.parametrize("case", DAMAGED_MODELS)
def test_damaged_model_is_refused_whole(case, model_dir, table, tmp_path):
    damage, words = DAMAGED_MODELS[case]
    model = tmp_path / "model.json"
    model.write_text(damage((model_dir / "model.json").read_text()))
    data = tmp_path / "cards.csv"
    data.write_bytes(table.bytes())
    before = snapshot(tmp_path)
    res = invoke("predict", model, data, "-o", tmp_path / "scores.csv")
    assert_refused(res, [model, *words], tmp_path, before)


@pytest.mark.parametrize("case", ["pickle", "binary", "huge", "folder", "missing", "utf16"])
def test_files_that_are_no_model_are_refused(case, table, tmp_path):
    model = tmp_path / "model.json"
    if case == "pickle":
        model.write_bytes(b"\x80\x04\x95\x10\x00cos\nsystem\n")
    elif case == "binary":
        model.write_bytes(bytes(range(256)))
    elif case == "huge":
        with open(model, "wb") as fh:
            fh.truncate(65 * 2**20)  # sparse: no disk used
    elif case == "folder":
        model.mkdir()
    elif case == "utf16":
        model.write_bytes('{"format": "custseg-model"}'.encode("utf-16"))
    data = tmp_path / "cards.csv"
    data.write_bytes(table.bytes())
    before = snapshot(tmp_path)
    res = invoke("predict", model, data, "-o", tmp_path / "scores.csv")
    assert_refused(res, [model], tmp_path, before)


# --------------------------------------------------------------------------- two runs, one folder


def test_a_run_that_finishes_second_does_not_replace_the_first(data, tmp_path, monkeypatch, no_figures):
    """Run B starts and finishes while run A computes; A then refuses instead of replacing B's results."""
    import custseg.run

    out = tmp_path / "out"
    segment = custseg.run.segment
    inner = {}

    def segment_while_another_run_writes(*args, **kwargs):
        result = segment(*args, **kwargs)
        if not inner:
            inner["res"] = None
            inner["res"] = invoke("run", data, "--out", out, "--k", "2", *FAST)
        return result

    monkeypatch.setattr(custseg.run, "segment", segment_while_another_run_writes)
    res = invoke("run", data, "--out", out, "--k", "3", *FAST)
    assert inner["res"].exit_code == 0, inner["res"].output
    assert res.exit_code == 2 and "changed while this run was computing" in res.output
    assert json.loads((out / "metrics.json").read_text())["chosen_k"] == 2  # B's results, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv", "out"]


#: In the child: say on standard error when the computing starts, so a test can interrupt it there.
ANNOUNCE = """
import sys, custseg.run as r
segment = r.segment
def announced(*args, **kwargs):
    print("computing", file=sys.stderr, flush=True)
    return segment(*args, **kwargs)
r.segment = announced
"""


def _cli_process(*args, stdin=None, figures: bool = True, announce: bool = False) -> subprocess.Popen:
    code = ("import custseg.report.drawing as d; d.Drawing.start = lambda self, *a, **k: self\n" if not figures
            else "") + \
        (ANNOUNCE if announce else "") + "from custseg.cli import main; main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parent)])}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=stdin or subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def test_two_concurrent_runs_into_one_new_folder_cannot_both_succeed(data, tmp_path):
    out = tmp_path / "out"
    procs = [_cli_process("run", data, "--out", out, "--k", str(k), *FAST, figures=False) for k in (2, 3)]
    results = [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "Traceback" not in loser and ("not empty" in loser or "changed while" in loser)
    winner_k = (2, 3)[[code for code, _ in results].index(0)]
    assert json.loads((out / "metrics.json").read_text())["chosen_k"] == winner_k
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv", "out"]


def _wait_for(predicate, proc, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _staging(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.glob(".out.*") if (p / ".custseg-staging").exists()]


def test_staging_of_a_killed_run_is_swept_by_the_next(data, tmp_path, no_figures):
    proc = _cli_process("run", data, "--out", tmp_path / "out", "--k", "3", *FAST)
    _wait_for(lambda: _staging(tmp_path), proc)
    proc.kill()
    proc.wait(timeout=60)
    left = [p.name for p in tmp_path.glob(".out.*")]
    assert left and not (tmp_path / "out").exists()
    res = invoke("run", data, "--out", tmp_path / "out", "--k", "3", *FAST)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv", "out"]


def test_staging_of_a_live_run_is_not_swept(data, tmp_path, no_figures):
    live = tmp_path / ".out.live"
    live.mkdir()
    (live / ".custseg-staging").write_text(str(os.getpid()))
    assert invoke("run", data, "--out", tmp_path / "out", "--k", "3", *FAST).exit_code == 0
    assert live.is_dir()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_exits_with_the_signal_code_and_leaves_nothing(sig, code, data, tmp_path):
    proc = _cli_process("run", data, "--out", tmp_path / "out", "--k", "3", *FAST, announce=True)
    assert proc.stderr.readline() == b"computing\n"
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    err = proc.stderr.read().decode()
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv"]


def test_interrupt_while_writing_leaves_nothing(data, tmp_path):
    proc = _cli_process("run", data, "--out", tmp_path / "out", "--k", "3", *FAST)
    _wait_for(lambda: _staging(tmp_path), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert "Traceback" not in proc.stderr.read().decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards.csv"]


def test_piped_input_is_read_and_library_warnings_stay_quiet(real_text, tmp_path):
    proc = _cli_process("run", "/dev/stdin", "--out", tmp_path / "out", "--k", "3", *FAST, stdin=subprocess.PIPE)
    _, err = proc.communicate(real_text.encode(), timeout=300)
    code, err = proc.returncode, err.decode()
    assert code == 0, err
    assert "Warning" not in err and "Traceback" not in err
    notes = json.loads((tmp_path / "out" / "data_quality.json").read_text())["notes"]
    assert any("pipe" in n for n in notes)
    assert len(pd.read_csv(tmp_path / "out" / "segments.csv")) == 600


def test_empty_pipe_is_named_as_a_pipe(tmp_path):
    proc = _cli_process("run", "/dev/stdin", "--out", tmp_path / "out", *FAST)
    code = proc.wait(timeout=120)
    err = proc.stderr.read().decode()
    assert code == 2 and "pipe" in err and "0 bytes" not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
