"""The database commands end to end through the CLI: load-db → run from SQL → store → history → show → report.

Against DuckDB and SQLite files and the real PostgreSQL server of ``tests/servers.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import tiny_portfolio
from servers import PASSWORD, free_port

from custseg.cli import cli
from custseg.errors import DataError
from custseg.run import query_params, stored_run
from custseg.sinks.store import Store

FAST = ["--k", "3", "--n-init", "2", "--bootstrap", "3", "--gap-refs", "2", "--quiet"]
QUERY = 'SELECT * FROM cards WHERE "TENURE" >= :t'


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture(params=["duckdb", "sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    """A database URL (with the password, on PostgreSQL) for the customers and for the store."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'bank.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bank.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def cards(tmp_path) -> Path:
    path = tmp_path / "cards.csv"
    tiny_portfolio(90).to_csv(path, index=False)
    return path


def files_under(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()]


def assert_no_password(texts_and_files) -> None:
    forms = {PASSWORD, quote(PASSWORD, safe="")}
    for item in texts_and_files:
        text = item.read_bytes().decode("utf-8", "replace") if isinstance(item, Path) else item
        for form in forms:
            assert form not in text, f"the password appears in {item if isinstance(item, Path) else 'CLI output'}"


def test_the_whole_flow_from_a_database_into_the_store_and_back(db, cards, tmp_path):
    store = db  # the customers and the store share the database
    loaded = invoke("load-db", cards, "--db", db, "--table", "cards")
    assert loaded.exit_code == 0, loaded.output
    assert "90 rows loaded" in loaded.output and "mode replace" in loaded.output

    assert invoke("run", cards, "--out", tmp_path / "csv", *FAST).exit_code == 0
    by_table = invoke("run", "--table", "cards", "--db", db, "--out", tmp_path / "table", "--store", store, *FAST)
    assert by_table.exit_code == 0, by_table.output
    by_sql = invoke("run", "--sql", QUERY, "--param", "t=0", "--db", db, "--out", tmp_path / "sql",
                    "--store", store, *FAST)
    assert by_sql.exit_code == 0, by_sql.output
    # DuckDB and SQLite keep insertion order; a freshly loaded PostgreSQL table is scanned in it too
    csv_segments = (tmp_path / "csv" / "segments.csv").read_bytes()
    assert (tmp_path / "table" / "segments.csv").read_bytes() == csv_segments
    assert (tmp_path / "sql" / "segments.csv").read_bytes() == csv_segments
    scored = invoke("predict", tmp_path / "sql" / "model.json", "--table", "cards", "--db", db,
                    "-o", tmp_path / "scored.csv", "--store", store)
    assert scored.exit_code == 0, scored.output
    assert "recorded in the store as run" in scored.output

    listed = invoke("history", "--store", store)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert len(lines) == 3
    model_id = json.loads((tmp_path / "sql" / "model.json").read_text())["model_id"]
    assert [line.split()[2] for line in lines] == ["run", "run", "predict"]
    assert all("90 customers" in line and model_id[:16] in line for line in lines)
    assert "table cards" in lines[0] and "query" in lines[1]
    run_id = lines[1].split()[0]

    shown = invoke("show", run_id[:-2], "--store", store)
    assert shown.exit_code == 0, shown.output
    assert run_id in shown.output and model_id in shown.output and "customers    90" in shown.output
    sizes = pd.read_csv(tmp_path / "sql" / "segments.csv")["segment_name"].value_counts()
    assert all(f"{name:<40} {n:>9,}" in shown.output for name, n in sizes.items())

    again = invoke("report", run_id, "--out", tmp_path / "again", "--store", store)
    assert again.exit_code == 0, again.output
    original = {p.relative_to(tmp_path / "sql"): p.read_bytes() for p in files_under(tmp_path / "sql")}
    rendered = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in files_under(tmp_path / "again")}
    assert rendered == original  # every file, the report and figures included, byte for byte

    predict_id = lines[2].split()[0]
    drift = stored_run(predict_id, store).metrics["drift"]  # the drift report is recorded with the scores
    assert drift["available"] and drift["model_id"] == model_id
    assert {c["name"] for c in drift["columns"]} >= {"PURCHASES", "BALANCE"}
    refused = invoke("report", predict_id, "--out", tmp_path / "nope", "--store", store)
    assert refused.exit_code == 2 and "scoring" in refused.output and not (tmp_path / "nope").exists()

    outputs = [loaded.output, by_table.output, by_sql.output, scored.output, listed.output, shown.output,
               again.output]
    assert_no_password(outputs + files_under(tmp_path / "table", tmp_path / "sql", tmp_path / "again")
                       + [tmp_path / "scored.csv"])
    stored = Store(store).get_run(run_id)
    assert_no_password([stored.source, stored.model, stored.description])


def test_the_real_file_segments_the_same_from_sql_as_from_the_csv(real_data_path, tmp_path):
    db = f"duckdb:///{tmp_path / 'cards.duckdb'}"
    settings = ["--k", "4", "--n-init", "2", "--bootstrap", "3", "--gap-refs", "2", "--quiet"]
    assert invoke("load-db", real_data_path, "--db", db, "--table", "cards").exit_code == 0
    assert invoke("run", real_data_path, "--out", tmp_path / "csv", *settings).exit_code == 0
    res = invoke("run", "--sql", "SELECT * FROM cards", "--db", db, "--out", tmp_path / "sql", *settings)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sql" / "segments.csv").read_bytes() == (tmp_path / "csv" / "segments.csv").read_bytes()
    assert len(pd.read_csv(tmp_path / "sql" / "segments.csv")) == 8950


@pytest.mark.parametrize("args, words", [
    ([], "none was given"),
    (["DATA", "--table", "cards"], "DATA and --table were given"),
    (["--sql", "SELECT 1", "--table", "cards"], "--sql and --table were given"),
    (["DATA", "--db", "x.duckdb"], "--db and --param go with --sql or --table"),
    (["--table", "cards", "--param", "t=1"], "--table has none"),
])
def test_exactly_one_way_to_give_the_customers(args, words, cards, tmp_path):
    args = [cards if a == "DATA" else a for a in args]
    res = invoke("run", *args, "--out", tmp_path / "out", *FAST)
    assert res.exit_code == 2, res.output
    assert words in " ".join(res.output.split())
    assert not (tmp_path / "out").exists()


def _bad_input(kind: str, request, tmp_path) -> tuple[list[str], str]:
    if kind in ("unreachable", "credentials"):
        server = request.getfixturevalue("postgres_server")
        port = free_port() if kind == "unreachable" else server.port
        url = f"postgresql://{server.user}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/postgres"
        if kind == "credentials":
            url = url.replace(quote(PASSWORD, safe=""), quote("wrong" + PASSWORD, safe=""))
        return ["--table", "cards", "--db", url], \
            "cannot reach the server" if kind == "unreachable" else "refused the credentials"
    db = f"duckdb:///{tmp_path / 'bank.duckdb'}"
    frame = tiny_portfolio(90)
    if kind == "columns":
        frame = frame.drop(columns=["BALANCE", "PURCHASES"])
    path = tmp_path / "load.csv"
    frame.to_csv(path, index=False)
    assert invoke("load-db", path, "--db", db, "--table", "cards").exit_code == 0
    return {"query": (["--sql", "SELECT * FROM cards WHERE no_such_column > 0", "--db", db], "no_such_column"),
            "table": (["--table", "crads", "--db", db], "no table 'crads'"),
            "columns": (["--table", "cards", "--db", db], "BALANCE")}[kind]


@pytest.mark.parametrize("kind", ["unreachable", "credentials", "query", "table", "columns"])
def test_bad_database_input_exits_2_naming_the_source_and_writes_nothing(kind, request, tmp_path):
    args, words = _bad_input(kind, request, tmp_path)
    store = tmp_path / "store.duckdb"
    res = invoke("run", *args, "--out", tmp_path / "out", "--store", store, *FAST)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert words in text
    assert "table cards" in text or "query" in text or "crads" in text  # names the source
    assert_no_password([res.output])
    if "postgresql" in " ".join(args):
        assert "***" in text
    assert not (tmp_path / "out").exists()
    assert not store.exists() or Store(store).history() == []


def test_a_failed_store_write_leaves_no_folder_and_a_failed_folder_no_run(cards, tmp_path, monkeypatch):
    import custseg.run
    import custseg.sinks.store

    store = tmp_path / "store.duckdb"

    def refuse(*args, **kwargs):
        raise DataError("store: disk full")

    with monkeypatch.context() as m:
        m.setattr(custseg.sinks.store, "insert_frame", refuse)
        res = invoke("run", cards, "--out", tmp_path / "a", "--store", store, *FAST)
    assert res.exit_code == 2 and "disk full" in res.output
    assert not (tmp_path / "a").exists()

    def broken(result, folder):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(custseg.run, "write_run_files", broken)
        res = invoke("run", cards, "--out", tmp_path / "b", "--store", store, *FAST)
    assert res.exit_code == 2 and "disk is full" in res.output
    assert not (tmp_path / "b").exists()
    assert Store(store).history() == []

    ok = invoke("run", cards, "--out", tmp_path / "c", "--store", store, *FAST)
    assert ok.exit_code == 0 and len(Store(store).history()) == 1


def test_a_failed_commit_after_the_folder_is_written_says_so(cards, tmp_path, monkeypatch):
    from custseg.sinks.store import Store as RealStore

    def commit_fails(self, record, *, progress=None, before_commit=None):
        before_commit()
        raise DataError(f"{self.label}: server closed the connection unexpectedly")

    monkeypatch.setattr(RealStore, "record_run", commit_fails)
    res = invoke("run", cards, "--out", tmp_path / "out", "--store", tmp_path / "s.duckdb", *FAST)
    assert res.exit_code == 2
    assert "NOT recorded" in res.output and (tmp_path / "out" / "segments.csv").exists()


def test_recording_is_opt_in_and_urls_come_from_the_environment(cards, tmp_path):
    store, db = tmp_path / "env.duckdb", f"duckdb:///{tmp_path / 'bank.duckdb'}"
    assert invoke("run", cards, "--out", tmp_path / "a", *FAST).exit_code == 0
    assert not store.exists()
    assert invoke("load-db", cards, "--table", "cards", env={"CUSTSEG_DB_URL": db}).exit_code == 0
    res = invoke("run", "--table", "cards", "--out", tmp_path / "b", *FAST,
                 env={"CUSTSEG_STORE_URL": str(store), "CUSTSEG_DB_URL": db})
    assert res.exit_code == 0, res.output
    assert [h.source for h in Store(store).history()] == [f"{db} table cards"]
    listed = invoke("history", env={"CUSTSEG_STORE_URL": str(store)})
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 1


def test_load_db_append_adds_rows_and_says_so(cards, tmp_path):
    db = tmp_path / "bank.duckdb"
    assert invoke("load-db", cards, "--db", db, "--table", "cards").exit_code == 0
    res = invoke("load-db", cards, "--db", db, "--table", "cards", "--mode", "append")
    assert res.exit_code == 0 and "mode append" in res.output
    from custseg.sources.sql import SQLSource

    assert SQLSource(f"duckdb:///{db}", table="cards").count() == 180


def test_query_params_are_typed_and_checked():
    assert query_params(["t=12", "r=0.5", "zip=01234", "name=north", "e=a=b"]) == \
        {"t": 12, "r": 0.5, "zip": "01234", "name": "north", "e": "a=b"}
    for bad in (["t"], ["1t=3"], ["t=1", "t=2"]):
        with pytest.raises(Exception, match="--param"):
            query_params(bad)


@pytest.mark.parametrize("command", ["load-db", "history", "show", "report"])
def test_database_commands_have_help_with_examples(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0
    assert "Examples:" in res.output and "custseg " + command in res.output


def test_a_run_killed_while_writing_leaves_no_run_and_no_folder(cards, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out, store = tmp_path / "out", tmp_path / "store.duckdb"
    # the run's rows are in the store's open transaction and the folder is half written when it is killed
    code = ("import sys, time, custseg.run as r\n"
            "write = r.write_run_files\n"
            "def stalled(result, folder):\n"
            "    write(result, folder); print('writing', flush=True); time.sleep(120)\n"
            "r.write_run_files = stalled\n"
            "from custseg.cli import main\n"
            f"sys.argv = ['custseg', 'run', {str(cards)!r}, '--out', {str(out)!r}, '--store', {str(store)!r}, "
            f"*{FAST!r}]\n"
            "main()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert not out.exists()
    assert Store(store).history() == []
    assert invoke("run", cards, "--out", out, "--store", store, *FAST).exit_code == 0
    assert len(Store(store).history()) == 1 and (out / "segments.csv").exists()


def test_bigquery_with_unusable_credentials_exits_2_masked_and_writes_nothing(tmp_path):
    """As far as BigQuery goes without a warehouse: the dialect loads, the key is refused, nothing leaks."""
    import base64

    pytest.importorskip("sqlalchemy_bigquery")
    key = base64.b64encode(b'{"type": "service_account", "private_key": "TOPSECRETKEY"}').decode()
    query = "SELECT * FROM `project.dataset.credit-card-information` WHERE MOD(CUST_ID, 2) = :half"
    res = invoke("run", "--db", f"bigquery://project/dataset?credentials_base64={key}", "--sql", query,
                 "--param", "half=0", "--out", tmp_path / "out", "--store", tmp_path / "s.duckdb", *FAST)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert text.startswith("Error: bigquery://project/dataset?credentials_base64=*** query 'SELECT")
    assert key not in res.output and "TOPSECRETKEY" not in res.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "s.duckdb").exists()


def test_eda_reads_a_table_as_it_reads_the_file(cards, tmp_path):
    url = f"duckdb:///{tmp_path / 'bank.duckdb'}"
    assert invoke("load-db", cards, "--db", url, "--table", "cards").exit_code == 0
    from_file = invoke("eda", cards, "--out", tmp_path / "file", "-q")
    from_table = invoke("eda", "--table", "cards", "--db", url, "--out", tmp_path / "table", "-q")
    assert from_file.exit_code == 0 and from_table.exit_code == 0, from_file.output + from_table.output
    explored = [json.loads((tmp_path / side / "eda.json").read_text())["exploration"] for side in ("file", "table")]
    assert explored[0]["n_rows"] == explored[1]["n_rows"] == 90
    assert explored[0]["columns"] == explored[1]["columns"]
    missing = invoke("eda", "--table", "nowhere", "--db", url, "--out", tmp_path / "none")
    assert missing.exit_code == 2 and "nowhere" in missing.output and not (tmp_path / "none").exists()
