"""Property-based tests: generated malformed portfolios and damaged model files never crash custseg.

Each generated example goes through the command line and must end in **exit 0 with valid
outputs** or **exit 2 with one short message and nothing written**, its inputs unchanged
byte for byte — never exit 1, never a traceback.

- Tables: a small valid portfolio damaged by a random list of edits (columns dropped,
  renamed, repeated or shuffled; text, blanks, infinities, huge and negative numbers in
  cells; repeated ids, footer rows, short and long rows, shares on a 0–100 scale, a title
  line), written with a random delimiter, line ending, encoding (UTF-8 with or without BOM,
  UTF-16, Windows-1252), number format (decimal comma) and compression (gzip). Scored with
  ``custseg predict`` (reading and validation as in ``run``), and segmented with ``custseg
  run`` for a smaller number of examples (figures not drawn: they take most of a small run's
  time and do not read the input).
- Models: a valid ``model.json`` damaged by random edits of its JSON tree (keys deleted,
  values replaced by null, text, NaN, infinities, huge numbers, empty or deeply nested
  containers, lists shortened or lengthened), its ``model_id`` recomputed half the time so
  that the structural checks, not only the id, are exercised; or its text cut or spliced.

Budget: a fixed seed (``derandomize=True``, no example database), no per-example deadline;
``max_examples`` is 80 (predict on tables), 16 (run on tables) and 150 (models), about
45 s in all on the project's 2-core machine. Raise ``HYPOTHESIS_BUDGET`` (a multiplier,
e.g. ``HYPOTHESIS_BUDGET=10``) for a longer search; CI uses the default of 1.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import custseg.report.drawing
from custseg.cli import cli
from custseg.persist import model_id

from helpers import tiny_portfolio

BUDGET = float(os.environ.get("HYPOTHESIS_BUDGET", "1"))
FAST = ["--k-max", "3", "--n-init", "2", "--bootstrap", "2", "--gap-refs", "2", "--quiet"]
MAX_MESSAGE = 700


def _settings(examples: int):
    return settings(max_examples=max(1, int(examples * BUDGET)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def snapshot(root: Path) -> dict:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = "dir" if path.is_dir() else path.read_bytes()
    return out


def check_outcome(res, root: Path, before: dict, written: set[str]) -> bool:
    """Exit 0 (returns True; the caller checks the outputs) or exit 2 with nothing written."""
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        f"exit {res.exit_code}: {res.exception!r}\n{res.output}"
    assert res.exit_code in (0, 2), res.output
    assert "Traceback" not in res.output
    event(f"exit {res.exit_code}")
    after = snapshot(root)
    for name, content in before.items():
        assert after.get(name) == content, f"{name} changed"
    if res.exit_code == 2:
        message = res.output.strip().splitlines()
        assert message and message[-1].startswith("Error:") or "Usage:" in res.output, res.output
        assert len(res.output) <= MAX_MESSAGE, res.output
        assert after.keys() == before.keys(), sorted(after.keys() - before.keys())
        return False
    new = {k.split(os.sep)[0] for k in after.keys() - before.keys()}
    assert new <= written, new
    return True


# --------------------------------------------------------------------------- malformed tables

BASE = tiny_portfolio(60, seed=5)
HEADER = list(BASE.columns)
CELLS = [[str(v) if not (isinstance(v, float) and math.isnan(v)) else "" for v in row]
         for row in BASE.astype(object).itertuples(index=False)]

bad_cell = st.sampled_from(["", " ", "abc", "n/a", "NULL", "-", "inf", "-inf", "Infinity", "nan", "1e400", "1e308",
                            "-1e308", "1e15", "-5", "0", "150", "1,5", "$100", "12%", "1.234,56", '"', "'", "Total",
                            "\u2014", "\u00e9t\u00e9", "0x10", "1_000", "  7  ", "+3", ".5", "5.", "99999999999", "1e10",
                            "1e-300", "a\nb", "x" * 500])
column = st.sampled_from(HEADER)
edit = st.one_of(
    st.tuples(st.just("drop"), column),
    st.tuples(st.just("rename"), column, st.sampled_from(["lower", "spaces", "junk", "same_as_other"])),
    st.tuples(st.just("repeat_column"), column),
    st.tuples(st.just("shuffle"), st.randoms(use_true_random=False)),
    st.tuples(st.just("cell"), st.integers(0, 59), column, bad_cell),
    st.tuples(st.just("blank_column"), column),
    st.tuples(st.just("fill_column"), column, bad_cell),
    st.tuples(st.just("scale"), column, st.sampled_from([100.0, -1.0, 1e6, 1e-6])),
    st.tuples(st.just("duplicate_row"), st.integers(0, 59)),
    st.tuples(st.just("duplicate_id"), st.integers(0, 59), st.integers(0, 59)),
    st.tuples(st.just("footer"), st.sampled_from(["Total", "", "Sum:", "average"]), st.booleans()),
    st.tuples(st.just("short_row"), st.integers(0, 59), st.integers(1, 17)),
    st.tuples(st.just("long_row"), st.integers(0, 59)),
    st.tuples(st.just("keep_rows"), st.integers(0, 60)),
    st.tuples(st.just("identical"), st.integers(1, 6)),
)
dialect = st.fixed_dictionaries({
    "sep": st.sampled_from([",", ";", "\t", "|"]),
    "newline": st.sampled_from(["\n", "\r\n"]),
    "encoding": st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    "decimal_comma": st.booleans(),
    "gzip": st.booleans(),
    "title": st.sampled_from([None, "Portfolio export", "sep=;"]),
})


def damaged_table(edits, how) -> bytes:
    header, rows = list(HEADER), [list(r) for r in CELLS]
    for e in edits:
        kind = e[0]
        name = e[2] if kind == "cell" else e[1]
        if kind in ("drop", "rename", "repeat_column", "blank_column", "fill_column", "scale", "cell") \
                and name not in header:
            continue
        i = header.index(name) if isinstance(name, str) and name in header else None
        if kind == "drop" and len(header) > 1:
            header.pop(i)
            for r in rows:
                if len(r) > i:
                    r.pop(i)
        elif kind == "rename":
            header[i] = {"lower": header[i].lower(), "spaces": f" {header[i].replace('_', ' ')} ",
                         "junk": header[i] + "_X9", "same_as_other": header[(i + 1) % len(header)]}[e[2]]
        elif kind == "repeat_column":
            header.append(header[i])
            for r in rows:
                r.append(r[i] if len(r) > i else "")
        elif kind == "shuffle":
            order = list(range(len(header)))
            e[1].shuffle(order)
            header = [header[j] for j in order]
            rows = [[r[j] if j < len(r) else "" for j in order] for r in rows]
        elif kind == "cell" and e[1] < len(rows) and i < len(rows[e[1]]):
            rows[e[1]][i] = e[3]
        elif kind in ("blank_column", "fill_column"):
            for r in rows:
                if len(r) > i:
                    r[i] = "" if kind == "blank_column" else e[2]
        elif kind == "scale":
            for r in rows:
                try:
                    r[i] = repr(float(r[i]) * e[2])
                except (ValueError, IndexError):
                    pass
        elif kind == "duplicate_row" and e[1] < len(rows):
            rows.insert(e[1], list(rows[e[1]]))
        elif kind == "duplicate_id" and max(e[1], e[2]) < len(rows):
            rows[e[1]][0] = rows[e[2]][0]
        elif kind == "footer":
            rows.append([e[1]] + (["999999"] if e[2] else [""]) * (len(header) - 1))
        elif kind == "short_row" and e[1] < len(rows):
            rows[e[1]] = rows[e[1]][:max(1, len(rows[e[1]]) - e[2])]
        elif kind == "long_row" and e[1] < len(rows):
            rows[e[1]].append("7")
        elif kind == "keep_rows":
            rows = rows[:e[1]]
        elif kind == "identical":
            rows = [[r[0], *rows[j % e[1]][1:]] for j, r in enumerate(rows)]
    sep = how["sep"]
    comma = how["decimal_comma"] and sep != ","

    def cell(v: str) -> str:
        return v.replace(".", ",") if comma and v.replace(".", "", 1).lstrip("-").isdigit() else v

    lines = ([how["title"]] if how["title"] else []) + [sep.join(header)] + [sep.join(map(cell, r)) for r in rows]
    text = how["newline"].join(lines) + how["newline"]
    data = text.encode(how["encoding"], errors="replace")
    return gzip.compress(data, mtime=0) if how["gzip"] else data


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from custseg.persist import save_model
    from custseg.run import RunConfig, segment

    folder = tmp_path_factory.mktemp("trained")
    result = segment(tiny_portfolio(90), RunConfig(k=3, k_max=3, n_init=2, n_boot=2, n_refs=2))
    save_model(folder / "model.json", result.model, segment_names=[n.name for n in result.names],
               training=result.training_info())
    return folder / "model.json"


def _valid_scores(path: Path, n_segments: int) -> None:
    table = pd.read_csv(path)
    assert list(table.columns) == ["customer_id", "segment", "segment_name", "distance_to_centre"]
    assert len(table) > 0 and table["customer_id"].is_unique
    assert table["segment"].between(1, n_segments).all()
    assert np.isfinite(table["distance_to_centre"]).all() and (table["distance_to_centre"] >= 0).all()


@given(edits=st.lists(edit, max_size=4), how=dialect)
@_settings(80)
def test_predict_on_malformed_tables_exits_0_or_2(trained, edits, how):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / ("cards.csv.gz" if how["gzip"] else "cards.csv")
        data.write_bytes(damaged_table(edits, how))
        before = snapshot(root)
        res = CliRunner().invoke(cli, ["predict", str(trained), str(data), "-o", str(root / "scores.csv"), "-q"])
        if check_outcome(res, root, before, {"scores.csv"}):
            _valid_scores(root / "scores.csv", 3)


@given(edits=st.lists(edit, max_size=3), how=dialect)
@_settings(16)
def test_run_on_malformed_tables_exits_0_or_2(edits, how):
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(custseg.report.drawing.Drawing, "start", lambda self, *args, **kwargs: self):
        root = Path(tmp)
        data = root / ("cards.csv.gz" if how["gzip"] else "cards.csv")
        data.write_bytes(damaged_table(edits, how))
        before = snapshot(root)
        res = CliRunner().invoke(cli, ["run", str(data), "--out", str(root / "out"), *FAST])
        if check_outcome(res, root, before, {"out"}):
            k = json.loads((root / "out" / "metrics.json").read_text())["chosen_k"]
            _valid_scores(root / "out" / "segments.csv", k)
            assert (root / "out" / "model.json").is_file() and (root / "out" / "report.html").is_file()


# --------------------------------------------------------------------------- damaged model files

replacement = st.sampled_from([None, "x", "", True, 0, -1, 1e-300, 10**400, float("nan"), float("inf"),
                               float("-inf"), [], {}, [[]], [None], ["a", "b"], {"a": 1}, "1.5",
                               json.loads("[" * 30 + "1" + "]" * 30)])
model_edit = st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=6),
                       st.sampled_from(["delete", "replace", "shorten", "lengthen", "wrap", "negate"]),
                       replacement)


def _walk(node, path):
    """The container and key reached by following ``path`` (indices taken modulo the container's size)."""
    parent, key = None, None
    for step in path:
        if isinstance(node, dict) and node:
            key = sorted(node)[step % len(node)]
        elif isinstance(node, list) and node:
            key = step % len(node)
        else:
            break
        parent, node = node, node[key]
    return parent, key


def damaged_model(text: str, edits, restamp: bool, cut: int | None) -> str:
    state = json.loads(text)
    for path, action, value in edits:
        parent, key = _walk(state, path)
        if parent is None:
            continue
        target = parent[key]
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = value
        elif action == "shorten" and isinstance(target, (list, str)) and target:
            parent[key] = target[:-1]
        elif action == "lengthen" and isinstance(target, list) and target:
            target.append(target[-1])
        elif action == "wrap":
            parent[key] = [target]
        elif action == "negate" and isinstance(target, (int, float)) and not isinstance(target, bool):
            parent[key] = -target
    if restamp:
        try:
            state["model_id"] = model_id(state)
        except (ValueError, TypeError, AttributeError):
            pass  # NaN/inf, or the top level is no longer an object: keep the old id
    out = json.dumps(state, indent=1)
    return out if cut is None else out[: cut % max(1, len(out))]


@given(edits=st.lists(model_edit, min_size=1, max_size=3), restamp=st.booleans(),
       cut=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 10**6)))
@_settings(150)
def test_predict_with_damaged_models_exits_0_or_2(trained, edits, restamp, cut):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "model.json"
        model.write_text(damaged_model(trained.read_text(), edits, restamp, cut))
        data = root / "cards.csv"
        tiny_portfolio(30, seed=8).to_csv(data, index=False)
        before = snapshot(root)
        res = CliRunner().invoke(cli, ["predict", str(model), str(data), "-o", str(root / "scores.csv"), "-q"])
        if check_outcome(res, root, before, {"scores.csv"}):
            state = json.loads(model.read_text())
            _valid_scores(root / "scores.csv", len(state["centers"]))
        else:
            assert str(model) in res.output or str(data) in res.output
