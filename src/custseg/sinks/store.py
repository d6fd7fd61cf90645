"""The segment store: every run and every scoring, kept in a database.

A DuckDB file by default (one person's machine), PostgreSQL for a team; SQLite works
too. Four tables: ``runs`` (one row per run or scoring: when, which source, the data's
fingerprint, settings, k, metrics, model id, the model and the description as JSON),
``assignments`` (run, customer, segment number and name, distance), ``profiles``
(run, segment, each profile measure), and ``custseg_meta`` holding the schema version,
which the store creates or upgrades itself.

Each run is written in one transaction: a failure or a killed process leaves no part
of it. DuckDB lets one process open a file for writing at a time, so a store busy in
another process is retried with backoff for :data:`LOCK_WAIT` seconds before a clear
error; PostgreSQL and SQLite serialise writers themselves.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..credentials import STORE_URL_ENV, mask_text, mask_url, resolve_url
from ..db import create_engine, embedded_path, insert_frame, read_frame, translated
from ..errors import CustsegError
from ..progress import Progress, tick
from .base import Sink

SCHEMA_VERSION = 1
#: Seconds to keep retrying a DuckDB store that another process holds.
LOCK_WAIT = 120.0
#: Assignment rows per insert batch (and per progress tick).
WRITE_ROWS = 100_000
DEFAULT_STORE = Path("~/.local/share/custseg/store.duckdb")
#: Hex digits of a model id shown in one-line summaries (the store keeps the whole id).
MODEL_ID_SHOWN = 16
_PG_LOCK_KEY = 0x6375737473656700 >> 8  # "custseg" as a number: serialises schema creation on PostgreSQL

_meta = sa.MetaData()
META = sa.Table("custseg_meta", _meta, sa.Column("key", sa.String(64), primary_key=True),
                sa.Column("value", sa.Text, nullable=False))
RUNS = sa.Table(
    "runs", _meta,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("n_customers", sa.BigInteger, nullable=False),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("model_id", sa.String(64), nullable=False),
    sa.Column("model", sa.Text),
    sa.Column("description", sa.Text),
)
ASSIGNMENTS = sa.Table(
    "assignments", _meta,
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Column("segment", sa.Integer, nullable=False),
    sa.Column("segment_name", sa.Text, nullable=False),
    sa.Column("distance", sa.Double, nullable=False),
)
PROFILES = sa.Table(
    "profiles", _meta,
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("segment", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("measure", sa.Text, nullable=False),
    sa.Column("kind", sa.String(1), nullable=False),  # i integer, f float, t text
    sa.Column("value", sa.Double),
    sa.Column("text", sa.Text),
)
_ASSIGNMENT_COLUMNS = {"customer_id": "customer_id", "segment": "segment", "segment_name": "segment_name",
                       "distance_to_centre": "distance"}


@dataclass
class RunRecord:
    """One stored run (``kind="run"``) or scoring (``kind="predict"``), as plain data.

    ``assignments`` has the columns of segments.csv (customer_id, segment, segment_name,
    distance_to_centre); ``profiles`` is the table of profiles.csv (index ``segment``).
    ``model`` and ``description`` are the JSON texts of model.json and description.json,
    enough to render the run again; ``model_id`` is the model file's own ``model_id``.
    ``run_id`` and ``created_at`` are set when recorded.
    """

    source: str
    fingerprint: str
    settings: dict
    k: int
    metrics: dict
    model_id: str
    assignments: pd.DataFrame
    profiles: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: str | None = None
    description: str | None = None
    kind: str = "run"
    run_id: str | None = None
    created_at: str | None = None

    @property
    def n_customers(self) -> int:
        return len(self.assignments)


@dataclass(frozen=True)
class RunSummary:
    """One line of ``custseg history``."""

    run_id: str
    created_at: str
    kind: str
    source: str
    n_customers: int
    k: int
    model_id: str

    def line(self) -> str:
        return (f"{self.run_id}  {self.created_at[:19]}Z  {self.kind:<7}  {self.n_customers:>10,} customers  "
                f"k={self.k:<3} model {self.model_id[:MODEL_ID_SHOWN]}  {self.source}")


def default_store_url() -> str:
    """``CUSTSEG_STORE_URL`` if set, else the DuckDB file ``~/.local/share/custseg/store.duckdb``."""
    import os

    return os.environ.get(STORE_URL_ENV) or f"duckdb:///{DEFAULT_STORE.expanduser()}"


def new_run_id(now: datetime) -> str:
    """Sortable by time, unique across processes: ``20261128-154934-a1b2c3``."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Store:
    """A store of runs at ``url`` (default :func:`default_store_url`).

    Parameters
    ----------
    url : str or sqlalchemy URL, optional
        ``duckdb:///path/store.duckdb``, ``postgresql://user@host/db``, ``sqlite:///path``,
        or a ``.duckdb`` path.
    lock_wait : float
        Seconds to retry while another process holds a DuckDB store.
    """

    def __init__(self, url=None, *, lock_wait: float = LOCK_WAIT):
        self.url = resolve_url(url or default_store_url(), env=STORE_URL_ENV, what="store")
        self.label = f"store {mask_url(self.url)}"
        self.lock_wait = lock_wait
        self._engine: sa.Engine | None = None
        self._ready = False

    # -- writing -------------------------------------------------------------------------------

    def record_run(self, record: RunRecord, *, progress: Progress | None = None,
                   before_commit: Callable[[], object] | None = None) -> str:
        """Write ``record`` in one transaction and return its run id.

        ``progress`` (anything with ``update(n)``) advances by the assignment rows written.
        ``before_commit`` is called inside the transaction once every row is inserted: if
        it raises, nothing is recorded (a run's output folder or file is written there, so
        the store and the files land together or not at all).
        """
        now = datetime.now(timezone.utc)
        run_id = record.run_id or new_run_id(now)
        created = record.created_at or now.isoformat().replace("+00:00", "Z")
        row = {"run_id": run_id, "created_at": created, "kind": record.kind, "source": mask_text(record.source),
               "fingerprint": record.fingerprint, "n_customers": record.n_customers, "k": int(record.k),
               "settings": _json(record.settings), "metrics": _json(record.metrics), "model_id": record.model_id,
               "model": record.model, "description": record.description}
        assignments = _assignment_rows(record.assignments, run_id)
        profiles = _profile_rows(record.profiles, run_id)
        with self._transaction() as conn:
            conn.execute(RUNS.insert(), [row])
            insert_frame(conn, PROFILES, profiles)
            for start in range(0, len(assignments), WRITE_ROWS):
                part = assignments.iloc[start:start + WRITE_ROWS]
                insert_frame(conn, ASSIGNMENTS, part)
                tick(progress, len(part))
            if before_commit is not None:
                before_commit()
        return run_id

    def record_predictions(self, table: pd.DataFrame, *, source: str, fingerprint: str, model_id: str, k: int,
                           settings: dict | None = None, progress: Progress | None = None,
                           before_commit: Callable[[], object] | None = None) -> str:
        """Record a scoring (``custseg predict``): its assignments table and the model it used."""
        return self.record_run(RunRecord(source=source, fingerprint=fingerprint, settings=settings or {}, k=k,
                                         metrics={}, model_id=model_id, assignments=table, kind="predict"),
                               progress=progress, before_commit=before_commit)

    # -- reading -------------------------------------------------------------------------------

    def history(self) -> list[RunSummary]:
        """Every run and scoring, oldest first."""
        columns = [RUNS.c[c] for c in ("run_id", "created_at", "kind", "source", "n_customers", "k", "model_id")]
        with self._transaction() as conn:
            rows = conn.execute(sa.select(*columns).order_by(RUNS.c.created_at, RUNS.c.run_id)).all()
        return [RunSummary(r.run_id, r.created_at, r.kind, r.source, int(r.n_customers), int(r.k), r.model_id)
                for r in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id`` (or the one run whose id starts with it), with its tables.

        Raises
        ------
        CustsegError
            No run, or several, match.
        """
        with self._transaction() as conn:
            found = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).all()
            if not found:
                found = conn.execute(sa.select(RUNS).where(RUNS.c.run_id.startswith(run_id, autoescape=True))
                                     .limit(5)).all()
            if len(found) != 1:
                what = "no run" if not found else f"{len(found)} runs whose ids start with"
                raise CustsegError(f"{self.label}: {what} '{run_id}'; custseg history lists the runs.")
            run = found[0]
            assignments = read_frame(conn, sa.select(ASSIGNMENTS.c.customer_id, ASSIGNMENTS.c.segment,
                                                ASSIGNMENTS.c.segment_name, ASSIGNMENTS.c.distance)
                                .where(ASSIGNMENTS.c.run_id == run.run_id).order_by(ASSIGNMENTS.c.row_number))
            profiles = read_frame(conn, sa.select(PROFILES).where(PROFILES.c.run_id == run.run_id)
                             .order_by(PROFILES.c.segment, PROFILES.c.position))
        assignments = assignments.rename(columns={v: k for k, v in _ASSIGNMENT_COLUMNS.items()})
        return RunRecord(source=run.source, fingerprint=run.fingerprint, settings=json.loads(run.settings),
                         k=int(run.k), metrics=json.loads(run.metrics), model_id=run.model_id,
                         assignments=assignments, profiles=_wide_profiles(profiles), model=run.model,
                         description=run.description, kind=run.kind, run_id=run.run_id, created_at=run.created_at)

    def schema_version(self) -> int:
        with self._transaction() as conn:
            return _version(conn)

    # -- connections -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """One transaction on a store whose schema is current; committed only if the block succeeds."""
        with translated(self.url, self.label):
            if self._engine is None:
                path = embedded_path(self.url)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                self._engine = create_engine(self.url, self.label)
            conn = self._connect()
            try:
                with conn.begin():
                    if not self._ready:
                        _upgrade(conn, self.label)
                    yield conn
                self._ready = True
            finally:
                conn.close()

    def _connect(self) -> sa.Connection:
        deadline = time.monotonic() + self.lock_wait
        delay = 0.05
        while True:
            try:
                return self._engine.connect()
            except sa.exc.OperationalError as exc:
                if "lock" not in str(exc.orig).lower() or self.url.get_backend_name() != "duckdb":
                    raise
                if time.monotonic() >= deadline:
                    raise CustsegError(f"{self.label} is in use by another process (it has held it for more "
                                       f"than {self.lock_wait:.0f} s); wait for it to finish and try again, or "
                                       "use a PostgreSQL store for several writers.") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


class StoreSink(Sink):
    """Record a finished :class:`~custseg.run.RunResult` into a :class:`Store`; ``write`` returns the run id.

    ``alongside`` (e.g. a :class:`~custseg.sinks.folder.FolderSink`) is written inside the
    store's transaction, after the run's rows are inserted and before they are committed:
    if it fails nothing is recorded, and if recording fails before the commit the other
    sink is never written. Only a failure of the commit itself (the connection lost at
    that instant) can leave the other sink's output without its stored run.
    """

    def __init__(self, store: Store | str | None = None, *, progress: Progress | None = None,
                 alongside: Sink | None = None):
        self.store = store if isinstance(store, Store) else Store(store)
        self.progress = progress
        self.alongside = alongside
        self.run_id: str | None = None  # of the last run or scoring written

    def check(self, result_source=None) -> None:
        if self.alongside is not None:
            self.alongside.check(result_source)
        self.store.schema_version()

    def write(self, result) -> str:
        later = None if self.alongside is None else (lambda: self.alongside.write(result))
        return self._record(record_from_result(result), later)

    def write_predictions(self, table: pd.DataFrame, *, source: str, fingerprint: str, state: dict,
                          write: Callable[[], object] | None = None, metrics: dict | None = None) -> str:
        """Record a scoring (assignments ``table`` of ``source`` by the model whose file state is ``state``).

        ``metrics`` (e.g. ``{"drift": ...}``, the drift report) is stored as the record's metrics.
        ``write`` (writing the scores file) runs inside the transaction, as ``alongside`` does for runs.
        """
        record = RunRecord(source=source, fingerprint=fingerprint, settings={}, k=len(state["centers"]),
                           metrics=dict(metrics or {}),
                           model_id=state["model_id"], assignments=table, kind="predict")
        return self._record(record, write)

    def _record(self, record: RunRecord, write: Callable[[], object] | None) -> str:
        written = []

        def later() -> None:
            write()
            written.append(True)

        try:
            self.run_id = self.store.record_run(record, progress=self.progress,
                                                before_commit=None if write is None else later)
            return self.run_id
        except CustsegError as exc:
            if written:  # the commit itself failed after the outputs were written
                raise CustsegError(f"{exc} The outputs were written, but this {record.kind} was NOT recorded in "
                                   f"{self.store.label}; run it again to record it.") from None
            raise


def record_from_result(result) -> RunRecord:
    """The :class:`RunRecord` of a computed run: the same tables and JSON as its output folder."""
    from ..description import to_dict
    from ..jsonio import dumps, jsonable
    from ..persist import model_state
    from ..run import profiles_csv

    training = result.training_info()
    description = to_dict(result.describe())
    names = [n.name for n in result.names]
    # the exact text save_model writes, so a re-rendered model.json is the same file
    state = model_state(result.model, segment_names=names, training=training, identities=result.identities or None,
                        training_distribution=result.training_distribution)
    model_text = json.dumps(state, indent=1, allow_nan=False) + "\n"
    return RunRecord(source=result.portfolio.source, fingerprint=training["fingerprint"],
                     settings=jsonable(asdict(result.config)), k=int(result.model.n_clusters_),
                     metrics=description["metrics"], model_id=state["model_id"],
                     assignments=result.segments_table(), profiles=profiles_csv(result), model=model_text,
                     description=dumps(description))


# -- schema ------------------------------------------------------------------------------------

def _create_v1(conn: sa.Connection) -> None:
    _meta.create_all(conn, tables=[RUNS, ASSIGNMENTS, PROFILES])


#: ``_MIGRATIONS[v]`` takes a store from schema version ``v`` to ``v + 1``.
_MIGRATIONS = [_create_v1]


def _version(conn: sa.Connection) -> int:
    value = conn.execute(sa.select(META.c.value).where(META.c.key == "schema_version")).scalar_one_or_none()
    return int(value) if value is not None else 0


def _upgrade(conn: sa.Connection, label: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    _meta.create_all(conn, tables=[META])
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise CustsegError(f"{label} has schema version {version}, newer than this custseg reads "
                           f"({SCHEMA_VERSION}); upgrade custseg.")
    for step in range(version, SCHEMA_VERSION):
        _MIGRATIONS[step](conn)
    if version == 0:
        conn.execute(META.insert(), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])
    elif version < SCHEMA_VERSION:
        conn.execute(META.update().where(META.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))


# -- tables ------------------------------------------------------------------------------------

def _json(obj) -> str:
    from ..jsonio import jsonable

    return json.dumps(jsonable(obj), sort_keys=True, allow_nan=False)


def _assignment_rows(table: pd.DataFrame, run_id: str) -> pd.DataFrame:
    missing = [c for c in _ASSIGNMENT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"assignments need the columns {', '.join(_ASSIGNMENT_COLUMNS)}; missing {missing}")
    out = pd.DataFrame({"run_id": run_id, "row_number": np.arange(len(table), dtype=np.int64)})
    for ours, theirs in _ASSIGNMENT_COLUMNS.items():
        out[theirs] = table[ours].to_numpy()
    out["customer_id"] = out["customer_id"].astype("string")
    out["segment"] = out["segment"].astype(np.int64)
    out["distance"] = out["distance"].astype(np.float64)
    return out


def _profile_rows(wide: pd.DataFrame, run_id: str) -> pd.DataFrame:
    rows = []
    for segment, values in wide.iterrows():
        for position, (measure, value) in enumerate(values.items()):
            kind = wide[measure].dtype.kind
            code = "i" if kind in "iu" else "f" if kind in "fb" else "t"
            rows.append((run_id, int(segment), position, str(measure), code,
                         float(value) if code != "t" and pd.notna(value) else None,
                         None if code != "t" or pd.isna(value) else str(value)))
    return pd.DataFrame(rows, columns=[c.name for c in PROFILES.c])


def _wide_profiles(long: pd.DataFrame) -> pd.DataFrame:
    if long.empty:
        return pd.DataFrame(index=pd.Index([], name="segment", dtype=np.int64))
    order = long.drop_duplicates("measure").sort_values("position")
    columns = {}
    for measure, kind in zip(order["measure"], order["kind"]):
        part = long[long["measure"] == measure].set_index("segment")
        if kind == "t":
            columns[measure] = part["text"].astype("string")
        elif kind == "i":
            columns[measure] = part["value"].astype(np.int64)
        else:
            columns[measure] = part["value"].astype(np.float64)
    wide = pd.DataFrame(columns)
    wide.index = wide.index.astype(np.int64).rename("segment")
    return wide
