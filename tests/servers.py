"""A real PostgreSQL server for the tests: a throw-away cluster on a free local port.

The cluster lives in a temporary folder, listens on 127.0.0.1 only, and requires a
password (SCRAM), so wrong credentials can be tested for real. ``initdb`` refuses to
run as root, so as root the server runs as the ``postgres`` user that Debian's
package creates. Without PostgreSQL the tests that need it skip, except under
``CI=true`` where they fail (``scripts/ci-system-deps.sh`` installs it).

``tests/conftest.py`` makes the fixtures visible to every test module: ``postgres_url``
gives a fresh database per test on the one server of the session.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "custseg"
PASSWORD = "s3cret-Pw:@/?"  # characters that need URL quoting, to prove the masking copes


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        from urllib.parse import quote

        pw = quote(self.password if password is None else password, safe="")
        return f"postgresql://{self.user}:{pw}@{self.host}:{self.port}/{database}"


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl``, else ``PATH``'s."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}; scripts/ci-system-deps.sh installs PostgreSQL")
    pytest.skip(f"{reason} (install Debian's postgresql to run these tests)")


@pytest.fixture(scope="session")
def postgres_server():
    """Start a PostgreSQL cluster for the session; stop it and remove its folder afterwards."""
    bindir = find_pg_bin()
    if bindir is None:
        _missing("PostgreSQL's initdb/pg_ctl were not found under /usr/lib/postgresql/*/bin or on PATH")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no 'postgres' user to run the server as")
    # not under pytest's per-user temp folder: the server user must be able to reach it
    root = Path(tempfile.mkdtemp(prefix="custseg-pg-"))
    data, pwfile, log = root / "data", root / "pw", root / "server.log"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        for path in (root, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    made = subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", USER,
                                           f"--pwfile={pwfile}", "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"]),
                          capture_output=True, text=True, timeout=120)
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed: {made.stderr}")
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    started = subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                                              "-l", str(log), "-w", "-t", "60", "start"]),
                             capture_output=True, text=True, timeout=90)
    if started.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{log.read_text() if log.exists() else ''}")
    try:
        yield PostgresServer("127.0.0.1", port, USER, PASSWORD)
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                        "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


_databases = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL (with password) of a new, empty database on the session's server."""
    import psycopg

    name = f"t{os.getpid()}_{next(_databases)}"
    with psycopg.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
                         password=postgres_server.password, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.url(name)
