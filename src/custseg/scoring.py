"""Score millions of customers with a saved model, batch by batch, without pandas on the way.

``custseg predict`` takes this path for a Parquet file above :data:`PREDICT_STREAM_ROWS`
rows or a CSV file above :data:`PREDICT_STREAM_BYTES` bytes (:func:`streams`). Each
batch goes

1. from the file to NumPy: pyarrow reads a Parquet file's row groups straight into
   float64 columns (other sources hand over pandas batches, converted column by column);
2. through :class:`custseg.quality.BatchValidator`: the rules, counts, messages and
   repairs of :func:`custseg.quality.validate`, rows counted over the whole file;
3. through the model's feature steps, to its nearest centre and into the drift
   counts, in compiled passes (:func:`feature_program`,
   :class:`custseg.scoring_kernels.FeatureProgram`: features bit for bit the fitted
   pipeline's, the nearest centre as :func:`custseg.score.nearest` finds it, the
   same PSI as :func:`custseg.drift.drift_report` on the whole file), and
4. into the output file (Parquet or CSV), while the next batch is read and the
   previous one written in other threads.

Two batches are computed at once (the machines this runs on have two cores), each
thread in arrays it reuses from batch to batch (:class:`custseg.scoring_kernels.Workspace`);
numba loads the compiled kernels while the file is opened and the first batches are
read; while scoring, Python's cyclic garbage collector is paused and glibc's malloc
keeps freed batch-sized memory for reuse (:func:`_keep_freed_memory`): fresh pages
cost a fault and a cleared page each, batch after batch.

The model is read with :func:`custseg.persist.load_scoring_model`; nothing on this path
imports scikit-learn or SciPy's subpackages (numba imports ``scipy.linalg``). The scores, the data-quality report (without the value
distribution, whose medians need every value at once) and the drift report equal those of
:func:`custseg.score.score_with_drift` on the whole file. Rules that depend on a whole
column are decided on the whole column: when the file turns out to hold a share on a
0–100 scale, it is scored a second time with that column divided by 100 everywhere.
An id repeated anywhere in the file is refused (by a 64-bit hash of every id, then an
exact look at the colliding ones). The output appears only when every batch was
scored and validated: a refusal leaves nothing behind.
"""

from __future__ import annotations

import gc
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .errors import CustsegError, DataError

#: Above this many rows (Parquet) or bytes (CSV), ``custseg predict`` scores the input in batches: from
#: about one batch, as scoring in one go costs twice the CPU time (scikit-learn's import, pandas' frame).
PREDICT_STREAM_ROWS = 250_000
PREDICT_STREAM_BYTES = 200 * 2**20
#: Batches computed at the same time (the machines this runs on have two cores).
COMPUTE_THREADS = 2
#: Rows per batch when scoring in batches: a column of a batch (2 MB) stays in the processor's cache.
PREDICT_BATCH_ROWS = 1 << 18


def streams(data) -> bool:
    """Whether ``custseg predict`` scores ``data`` in batches: a Parquet file above
    :data:`PREDICT_STREAM_ROWS` rows or a CSV file above :data:`PREDICT_STREAM_BYTES` bytes."""
    from .sources import FileSource

    if not isinstance(data, (str, Path, FileSource)):
        return False
    source = data if isinstance(data, FileSource) else FileSource(data)
    if not source.path.is_file():
        return False
    if _is_parquet(source.path):
        return source.count() > PREDICT_STREAM_ROWS
    return source.path.stat().st_size > PREDICT_STREAM_BYTES


@dataclass(frozen=True)
class BatchScoring:
    """What scoring a file in batches found.

    Attributes
    ----------
    counts : Series
        Customers per segment, indexed by (segment number, segment name), by number.
    quality : QualityReport
        The validation of the whole file (no value distribution).
    drift : DriftReport or None
        Drift against the training distribution; ``None`` when the model has none.
    model_id : str
        The scoring model's id.
    run_id : None
        As :class:`custseg.score.Scoring`'s; scoring in batches is never recorded in a store.
    """

    counts: pd.Series
    quality: object
    drift: object
    model_id: str
    run_id: None = None

    def warnings(self) -> list[str]:
        """Lines for standard error, as :meth:`custseg.score.Scoring.warnings`."""
        from .score import drift_warnings

        return drift_warnings(self.drift)

    def drift_dict(self) -> dict:
        """The drift JSON, as :meth:`custseg.score.Scoring.drift_dict`."""
        from .score import drift_dict

        return drift_dict(self.drift, self.model_id)


def predict_batches(model_path, data, output, *, force: bool = False, drift_json=None,
                    rows: int = PREDICT_BATCH_ROWS) -> BatchScoring:
    """Score ``data`` batch by batch with a saved model; write the assignments (.csv or .parquet) atomically.

    Parameters
    ----------
    model_path : path
        A ``model.json`` written by ``custseg run``.
    data : path or Source
        The customers to score.
    output : path
        Where the assignments go: ``customer_id``, ``segment``, ``segment_name``,
        ``distance_to_centre``, as :func:`custseg.run.predict` writes them.
    force : bool
        Overwrite existing output files.
    drift_json : path, optional
        Also write the drift report there (after the scores).
    rows : int
        Customers per batch; memory grows with it, the results do not change.

    Raises
    ------
    DataError
        What :func:`custseg.quality.validate` refuses, anywhere in the file; nothing is written.
    """
    from .atomic import replacing
    from .jsonio import write_json
    from .persist import load_scoring_model
    from .sinks.folder import check_output_file, write_failure
    from .sources import open_source

    output = Path(output)
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise CustsegError(f"{output}: the output must end in .csv or .parquet.")
    source = open_source(data)
    # the scores are a fraction of the input's size (four columns of the input's eighteen)
    size = source.path.stat().st_size if source.path is not None and source.path.is_file() else 0
    check_output_file(output, force=force, inputs=(model_path, source.path), what="scores", expected_bytes=size // 2)
    if drift_json is not None:
        if Path(drift_json).absolute() == output.absolute():
            raise CustsegError(f"--drift-json {drift_json} is the same file as the scores -o {output}; give two names.")
        check_output_file(drift_json, force=force, inputs=(model_path, source.path), what="drift report")
    model = load_scoring_model(model_path)
    state = model.state
    with _paused_collector(), ThreadPoolExecutor(1) as loader:
        _keep_freed_memory()
        program = loader.submit(_loaded_program, model)  # numba loads the kernels while the file is opened and read
        table = _Table(source, model)
        try:
            with replacing(output) as tmp:
                parquet = output.suffix.lower() == ".parquet"
                scored = _score(table, model, state, program, tmp, parquet, frozenset(), rows)
                percent = scored.validator.percent_scale()
                if percent != scored.validator.percent:  # a share on a 0–100 scale: score again, divided by 100
                    scored = _score(table, model, state, program, tmp, parquet, percent, rows)
                result = scored.result(scored.validator.report(table.portfolio(scored.integer_ids),
                                                               scored.duplicates))
                if drift_json is not None:
                    with replacing(drift_json) as json_tmp:
                        write_json(json_tmp, result.drift_dict())
        except OSError as exc:
            raise CustsegError(f"Could not write {exc.filename or output}: {write_failure(exc)}. "
                               "Nothing was written.") from None
    return result


@contextmanager
def _paused_collector():
    """Python's cyclic garbage collector paused: scoring makes no reference cycles, and each full
    collection would walk every object numba and pandas loaded, again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: glibc's ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _keep_freed_memory() -> None:
    """Let glibc's malloc reuse the memory of freed batch-sized arrays instead of handing it back.

    By default an array above a few megabytes gets fresh pages from the system and
    returns them when freed, so every batch's temporaries (validation, conversions)
    cost a page fault and a cleared page every 4 KB, again and again. Arrays up to
    32 MB are kept in malloc's heaps, and up to 256 MB of freed memory stays with the
    process. This is set for the whole process (where ``mallopt`` exists; elsewhere
    nothing changes), and the results do not depend on it.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    mallopt(_M_TRIM_THRESHOLD, 256 * 2**20)


def _loaded_program(model):
    """The model's :func:`feature_program`, with every compiled kernel of scoring loaded from numba's cache
    (scoring one customer, hashing one id, looking for a repeat)."""
    import pyarrow as pa

    from .drift import DriftCounts
    from .scoring_kernels import has_repeat

    state = model.state
    program = feature_program(model, DriftCounts(state["training_distribution"])
                              if "training_distribution" in state else None)
    program.score(np.full((len(program.columns), 1), np.nan))
    has_repeat([_hash_ids(pa.array([""], type=pa.large_string()))])
    return program


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


class _Table:
    """The source's columns matched to the schema, read batch by batch as (ids, NumPy columns)."""

    def __init__(self, source, model):
        from .load import Portfolio, _match_headers
        from .quality import _require_columns

        self.source = source
        chosen, self.renamed, self.ignored = _match_headers(source.columns(), source.label)
        self.canonical = [c.name for c in schema.COLUMNS if c.name in chosen]
        self.names = [chosen[c] for c in self.canonical]
        head = Portfolio(pd.DataFrame(columns=self.canonical), source.label, self.renamed, self.ignored)
        _require_columns(head, model.required_columns)
        self.empty_ignored = source.empty_columns(self.ignored)

    def portfolio(self, integer_ids: bool):
        """The source's description, as :func:`custseg.load.load` gives it (no rows)."""
        from .load import Portfolio

        notes = [*self.source.notes, f"customer ids are {'integers' if integer_ids else 'text'}"]
        return Portfolio(pd.DataFrame(columns=self.canonical), self.source.label, dict(self.renamed),
                         list(self.ignored), list(self.empty_ignored), notes, self.source.path)

    def batches(self, rows: int):
        """(ids, numeric columns, whether the ids are integers) per batch, in file order."""
        from .sources.columns import column_batches

        # the compute threads keep both cores busy: pyarrow's own decoding threads would cost more than they save
        return column_batches(self.source, self.canonical, self.names, rows, threads=False)

    def ids(self, rows: int = PREDICT_BATCH_ROWS):
        """The ids alone, batch by batch, as :meth:`batches` gives them."""
        from .sources.columns import column_batches

        name = self.names[self.canonical.index(schema.ID)]
        return (ids for ids, _, _ in column_batches(self.source, [schema.ID], [name], rows))


@dataclass
class _Scored:
    """One pass over the file: the validation, counts, drift and id hashes it gathered."""

    validator: object
    counts: np.ndarray
    numbers: list[int]
    names: list[str]
    drift: object
    hashes: list[np.ndarray]
    integer_ids: bool
    model_id: str
    table: _Table
    repeat: Future | None = None  # whether two hashes are equal, looked for while the last batches are written

    def duplicates(self) -> str | None:
        """:func:`custseg.quality.validate`'s message about repeated ids, or ``None`` when every id is unique."""
        if not self.repeat.result():
            return None
        return _duplicate_message(self.table)

    def result(self, quality) -> BatchScoring:
        index = pd.MultiIndex.from_arrays([self.numbers, self.names], names=["segment", "segment_name"])
        counts = pd.Series(self.counts, index=index, name="count").sort_index(level="segment", sort_remaining=False)
        return BatchScoring(counts, quality, None if self.drift is None else self.drift.report(), self.model_id)


def _score(table: _Table, model, state: dict, program, tmp: Path, parquet: bool, percent: frozenset,
           rows: int) -> _Scored:
    """One pass over the file; ``program`` is a future of :func:`_loaded_program`."""
    import pyarrow as pa

    from .drift import DriftCounts
    from .persist import segment_identities
    from .quality import BatchValidator
    from .scoring_kernels import Workspace, has_repeat

    identities = segment_identities(state)
    numbers = [i.number for i in identities]
    names = [i.name for i in identities]
    validator = BatchValidator(table.source.label, [c for c in table.canonical if c != schema.ID],
                               required=model.required_columns, percent_scale=percent)
    drift = DriftCounts(state["training_distribution"]) if "training_distribution" in state else None
    scored = _Scored(validator, np.zeros(len(names), dtype=np.int64), numbers, names, drift, [], True,
                     str(state["model_id"]), table)
    segment_of = pa.array(numbers, type=pa.int64())
    name_of = pa.array(names, type=pa.large_string())

    local = threading.local()

    def compute(batch, offset: int):
        ids, columns, integer = batch
        gathered, repaired = validator.check(ids, columns, offset)
        if not hasattr(local, "work"):  # each compute thread reuses its own arrays
            local.work = Workspace()
        work = local.work
        kernels = program.result()
        X = np.stack([repaired[c] for c in kernels.columns],
                     out=work.array("columns", (len(kernels.columns), len(ids))))
        done = kernels.score(X, work)
        where = pa.array(done.labels)
        out = pa.table({"customer_id": ids, "segment": segment_of.take(where), "segment_name": name_of.take(where),
                        "distance_to_centre": pa.array(np.round(done.distances, 6))})
        counts = np.bincount(done.labels, minlength=len(names))
        return gathered, counts, (done.counts, len(ids), done.far), _hash_ids(ids), integer, out

    def merge(result) -> None:  # in file order: the examples of the quality report are the first rows
        gathered, counts, binned, hashes, integer, out = result
        validator.merge(gathered)
        scored.counts += counts
        if drift is not None:
            drift.merge_counts(*binned)
        scored.hashes.append(hashes)
        scored.integer_ids &= integer
        writing.append(writer_pool.submit(writer.write, out))
        while len(writing) > 1:
            writing.pop(0).result()

    # two batches computed at once (the compiled kernels, NumPy and pyarrow release the GIL), one written,
    # the next read
    writing = []
    with _Writer(tmp, parquet=parquet) as writer, ThreadPoolExecutor(1) as writer_pool, \
            ThreadPoolExecutor(COMPUTE_THREADS) as pool:
        running, offset = [], 0
        for batch in table.batches(rows):
            running.append(pool.submit(compute, batch, offset))
            offset += len(batch[0])
            while len(running) > COMPUTE_THREADS:
                merge(running.pop(0).result())
        for future in running:
            merge(future.result())
        scored.repeat = pool.submit(has_repeat, scored.hashes)
        for future in writing:
            future.result()
    return scored


def feature_program(model, drift=None):
    """A model's feature steps, centres and drift bins as a :class:`custseg.scoring_kernels.FeatureProgram`
    (features bit for bit the fitted pipeline's).

    Parameters
    ----------
    model : ScoringModel
        From :func:`custseg.persist.load_scoring_model`.
    drift : DriftCounts, optional
        The training distribution's bins, counted batch by batch.
    """
    from . import scoring_kernels as k
    from .feature_catalog import FEATURES, PAYMENT_RATIO_CAP, UTILISATION_CAP

    row = {c: i for i, c in enumerate(model.required_columns)}
    recipes = {"oneoff_share": (k.SHARE, 0.0), "limit_utilisation": (k.UTILISATION, UTILISATION_CAP),
               "payment_to_minimum": (k.PAYMENT_RATIO, PAYMENT_RATIO_CAP)}
    ops, a, b, caps = [], [], [], []
    for name in model.features:  # every two-column feature is (numerator, denominator)
        sources = FEATURES[name].sources
        op, cap = (k.RAW, 0.0) if len(sources) == 1 else recipes.get(name, (k.RATIO, 0.0))
        ops.append(op)
        a.append(row[sources[0]])
        b.append(row[sources[-1]])
        caps.append(cap)
    tables = [] if drift is None else list(drift.tables)
    edges, n_edges = k.edge_table([drift.tables[key][0] for key in tables])
    inputs = list(model.model_inputs)
    return k.FeatureProgram(
        columns=model.required_columns, medians=np.asarray(model.medians, dtype=np.float64),
        minimum=row.get("MINIMUM_PAYMENTS", -1), payments=row.get("PAYMENTS", -1),
        minimum_ratio=float(model.minimum_ratio), ops=np.array(ops, dtype=np.int64),
        a=np.array(a, dtype=np.int64), b=np.array(b, dtype=np.int64), caps=np.array(caps, dtype=np.float64),
        logged=tuple(j for j, name in enumerate(model.features) if name in model.logged),
        mean=np.asarray(model.mean, dtype=np.float64), scale=np.asarray(model.scale, dtype=np.float64),
        centres=np.ascontiguousarray(model.centres, dtype=np.float64),
        column_tables=np.array([row[name] for kind, name in tables if kind == "column"], dtype=np.int64),
        feature_tables=np.array([inputs.index(name) for kind, name in tables if kind == "feature"], dtype=np.int64),
        edges=edges, n_edges=n_edges, far_beyond=np.nan if drift is None or drift.p99 is None else float(drift.p99))


def _hash_ids(ids) -> np.ndarray:
    """A 64-bit hash of each id's UTF-8 bytes and length (nulls as empty text).

    Only used to find candidate repeats quickly: a repeat is confirmed on the ids
    themselves (:func:`_duplicate_message`), so a collision costs time, never a wrong answer.
    """
    import pyarrow as pa

    from .scoring_kernels import hash_text

    ids = ids.cast(pa.large_string())
    _, offsets_buffer, data_buffer = ids.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64, count=len(ids) + 1, offset=ids.offset * 8)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    out = np.empty(len(ids), dtype=np.uint64)
    hash_text(offsets, data, out)
    return out


def _duplicate_message(table: _Table) -> str | None:
    """:func:`custseg.quality.validate`'s message about repeated ids, from the whole id column, or ``None``
    when no id repeats after all (a hash collision). Only called when the hashes repeat: slow is fine."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .quality import _quote, _rowlist

    ids = pa.chunked_array(list(table.ids()), type=pa.large_string()).combine_chunks()
    counts = pc.value_counts(ids.drop_null())
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if not len(repeated):
        return None
    rows = np.flatnonzero(np.asarray(pc.fill_null(pc.is_in(ids, value_set=repeated), False)))
    first = ids[int(rows[0])].as_py()
    where = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(ids, first), False)))
    return (f"{table.source.label}: column {schema.ID} repeats {len(repeated)} id(s) over {len(rows)} rows; "
            f"for example {_quote(first)} is in {_rowlist(where)}. Each customer must appear once: "
            "remove or merge the duplicates.")


class _Writer:
    """Append pyarrow tables to one Parquet or CSV file (CSV: what pandas' ``to_csv`` writes)."""

    def __init__(self, path: Path, *, parquet: bool):
        self.path = Path(path)
        self.parquet = parquet
        self._writer = None
        self._file = None

    def __enter__(self):
        return self

    def write(self, table) -> None:
        if self.parquet:
            import pyarrow.parquet as pq

            if self._writer is None:  # ids are unique: a dictionary of them would be wasted work
                self._writer = pq.ParquetWriter(self.path, table.schema, use_dictionary=["segment_name"])
            self._writer.write_table(table)
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv

        if self._file is None:
            self._file = open(self.path, "wb")
            self._file.write((",".join(table.column_names) + "\n").encode())
        try:  # byte for byte what pandas writes, unless an id or name holds a comma or quote: then text is quoted
            pacsv.write_csv(table, self._file, pacsv.WriteOptions(include_header=False, quoting_style="none"))
        except pa.ArrowInvalid:
            pacsv.write_csv(table, self._file, pacsv.WriteOptions(include_header=False, quoting_style="needed"))

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
