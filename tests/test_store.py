"""The segment store on DuckDB, SQLite and a real PostgreSQL server: round trips, schema versions,
all-or-nothing writes (including a process killed mid-write) and two processes writing at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import tiny_portfolio
from servers import PASSWORD

import custseg
from custseg.errors import CustsegError
from custseg.sinks import store as store_module
from custseg.sinks.store import RunRecord, Store, StoreSink

SRC = str(Path(custseg.__file__).resolve().parents[1])


@pytest.fixture(params=["duckdb", "sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'store.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["duckdb", "postgresql"])
def server_or_file_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'store.duckdb'}"
    return request.getfixturevalue("postgres_url")


def make_record(n: int, seed: int = 0, source: str = "cards.csv") -> RunRecord:
    rng = np.random.default_rng(seed)
    segment = rng.integers(1, 5, n)
    names = np.array(["Dormant", "Revolvers", "Transactors", "Cash users"])
    assignments = pd.DataFrame({"customer_id": [f"C{i:08d}" for i in range(n)], "segment": segment,
                                "segment_name": names[segment - 1], "distance_to_centre": rng.random(n).round(6)})
    profiles = pd.DataFrame({"segment_name": pd.array(names, dtype="string"), "size": np.bincount(segment)[1:],
                             "share": rng.random(4), "BALANCE_mean": rng.random(4) * 1000,
                             "stability_status": pd.array(["stable", "weak", None, "unstable"], dtype="string")},
                            index=pd.Index([1, 2, 3, 4], name="segment"))
    model = json.dumps({"format": "custseg-model", "centers": rng.random((4, 3)).tolist()})
    return RunRecord(source=source, fingerprint=f"{seed:064x}", settings={"k": 4, "seed": seed}, k=4,
                     metrics={"silhouette": 0.25}, model_id=f"{seed:064x}", assignments=assignments,
                     profiles=profiles, model=model, description=json.dumps({"segments": []}))


def test_round_trip_and_history(store_url):
    store = Store(store_url)
    first = make_record(500, seed=1)
    run_id = store.record_run(first)
    second_id = store.record_predictions(make_record(50, seed=2).assignments, source="new.csv",
                                         fingerprint="f" * 64, model_id=first.model_id, k=4)
    got = store.get_run(run_id)
    pd.testing.assert_frame_equal(got.assignments, first.assignments, check_dtype=False)
    pd.testing.assert_frame_equal(got.profiles, first.profiles)
    assert (got.model, got.description, got.settings, got.metrics) == \
           (first.model, first.description, first.settings, first.metrics)
    assert got.run_id == run_id and got.k == 4 and got.kind == "run"
    history = store.history()
    assert [h.run_id for h in history] == [run_id, second_id]
    assert (history[1].kind, history[1].n_customers, history[1].model_id) == ("predict", 50, first.model_id)
    assert run_id in history[0].line() and "500 customers" in history[0].line()
    assert store.get_run(run_id[:-1]).run_id == run_id
    with pytest.raises(CustsegError, match="2 runs whose ids start with '2'"):
        store.get_run("2")


def test_unknown_run_and_masked_store_name(postgres_server, postgres_url):
    store = Store(postgres_url)
    store.record_run(make_record(10))
    with pytest.raises(CustsegError) as err:
        store.get_run("nope")
    assert "no run 'nope'" in str(err.value) and "***" in str(err.value) and PASSWORD not in str(err.value)


def test_source_labels_are_stored_masked(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    run_id = store.record_run(make_record(5, source="postgresql://bank:hunter2@db.internal/cards table t"))
    assert store.get_run(run_id).source == "postgresql://bank:***@db.internal/cards table t"


def test_schema_is_versioned_created_and_refused_when_newer(store_url):
    store = Store(store_url)
    assert store.schema_version() == store_module.SCHEMA_VERSION
    engine = sa.create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(store_module.META.update().values(value="99"))
    engine.dispose()
    with pytest.raises(CustsegError, match="schema version 99"):
        Store(store_url).history()


def test_an_unversioned_store_is_upgraded(tmp_path):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        store_module.META.create(conn)
    engine.dispose()
    store = Store(url)
    assert store.history() == [] and store.schema_version() == store_module.SCHEMA_VERSION


def test_a_failure_mid_write_leaves_no_partial_run(store_url, monkeypatch):
    monkeypatch.setattr(store_module, "WRITE_ROWS", 100)
    store = Store(store_url)
    kept = store.record_run(make_record(30, seed=3))

    class Boom:
        def update(self, n):
            raise KeyboardInterrupt  # like Ctrl-C after the first batch went in

    with pytest.raises(KeyboardInterrupt):
        store.record_run(make_record(1000, seed=4), progress=Boom())
    assert [h.run_id for h in store.history()] == [kept]
    assert _assignment_count(store) == 30


def _assignment_count(store: Store) -> int:
    engine = sa.create_engine(store.url)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(store_module.ASSIGNMENTS)).scalar_one()
    engine.dispose()
    return n


_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_store import make_record
    from custseg.sinks import store as store_module
    store_module.WRITE_ROWS = {batch}
    go = {go!r}
    while go and not __import__("os").path.exists(go):
        time.sleep(0.01)

    class Printer:
        def update(self, n):
            print("wrote", n, flush=True)
            time.sleep({pause})

    record = make_record({rows}, seed={seed})
    run_id = store_module.Store({url!r}).record_run(record, progress=Printer())
    print("done", run_id, flush=True)
""")


def _child(url: str, *, rows: int, seed: int, batch: int, pause: float = 0.0, go: str = "") -> subprocess.Popen:
    code = _CHILD.format(tests=str(Path(__file__).parent), batch=batch, go=go, pause=pause, rows=rows,
                         seed=seed, url=url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_a_run_killed_mid_write_leaves_no_trace(server_or_file_url):
    store = Store(server_or_file_url)
    kept = store.record_run(make_record(20, seed=5))
    child = _child(server_or_file_url, rows=50_000, seed=6, batch=5_000, pause=0.2)
    lines = [child.stdout.readline(), child.stdout.readline()]
    assert all(line.startswith("wrote 5000") for line in lines), (lines, child.stderr.read())
    os.kill(child.pid, signal.SIGKILL)  # two batches are in, eight to go: the transaction is open
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    after = Store(server_or_file_url)
    assert [h.run_id for h in after.history()] == [kept]
    assert _assignment_count(after) == 20
    again = after.record_run(make_record(40, seed=7))
    assert after.get_run(again).n_customers == 40


def test_two_processes_recording_at_once_both_land(server_or_file_url, tmp_path):
    Store(server_or_file_url).history()  # the schema exists; the race is on the runs themselves
    go = tmp_path / "go"
    children = [_child(server_or_file_url, rows=40_000, seed=seed, batch=10_000, go=str(go)) for seed in (8, 9)]
    time.sleep(1.0)  # both children are up (imports done) and waiting
    go.touch()
    outputs = [c.communicate(timeout=240) for c in children]
    assert [c.returncode for c in children] == [0, 0], [o[1][-2000:] for o in outputs]
    run_ids = [o[0].strip().splitlines()[-1].split()[1] for o in outputs]
    store = Store(server_or_file_url)
    assert sorted(h.run_id for h in store.history()) == sorted(run_ids)
    for seed, run_id in zip((8, 9), run_ids):
        pd.testing.assert_frame_equal(store.get_run(run_id).assignments, make_record(40_000, seed).assignments,
                                      check_dtype=False)


def test_a_busy_duckdb_store_waits_then_says_so(tmp_path):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    Store(url).history()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(tmp_path / 's.duckdb')!r}); "
                               "print('held', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(CustsegError, match="in use by another process"):
            Store(url, lock_wait=1.0).history()
        assert 1.0 <= time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()


def test_store_sink_records_a_real_run_that_renders_again(tmp_path):
    from custseg.description import from_dict, to_dict
    from custseg.jsonio import dumps
    from custseg.persist import save_model
    from custseg.report.markdown import render_markdown
    from custseg.run import profiles_csv

    result = custseg.segment(tiny_portfolio(120), custseg.RunConfig(k=3, n_boot=3, n_init=2), name="tiny")
    sink = StoreSink(f"duckdb:///{tmp_path / 's.duckdb'}")
    sink.check()
    record = sink.store.get_run(sink.write(result))
    pd.testing.assert_frame_equal(record.assignments, result.segments_table(), check_dtype=False)
    pd.testing.assert_frame_equal(record.profiles, profiles_csv(result), check_dtype=False)
    save_model(tmp_path / "model.json", result.model, segment_names=[n.name for n in result.names],
               training=result.training_info(), identities=result.identities,
               training_distribution=result.training_distribution)
    assert record.model == (tmp_path / "model.json").read_text()
    assert record.description == dumps(to_dict(result.describe()))
    assert record.k == 3 and record.source == "tiny" and record.n_customers == 120
    figures = ["segment_sizes", "profile_heatmap"]
    assert render_markdown(from_dict(json.loads(record.description)), figures) == \
        render_markdown(result.describe(), figures)
