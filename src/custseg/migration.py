"""Migration: how customers moved between segments from one assignment to the next.

Two assignments (``segments.csv`` from ``custseg run``, the output of ``custseg
predict``, or a run folder) are compared customer by customer. Segments are matched
by **identity** (:mod:`custseg.identity`) when both sides carry identities, so a
refitted model whose segment 3 is the old segment 3 is compared as such. Without
identities on both sides, segments are matched by number, and only when both sides
demonstrably come from the same model (same model centres, or else every segment
number carrying the same name on both sides); otherwise the comparison is refused.

Results (:class:`Migration`), all derived from the two tables:

* transitions: customers per (from, to) pair; ``"joined"`` as from (customers only
  in AFTER) and ``"left"`` as to (customers only in BEFORE), with row percentages
  over the from-segment's customers (so a BEFORE segment's row, leavers included,
  adds up to 100 %);
* movers (in both, segment changed), joined, left;
* net flow per segment: size before and after, stayed, moved in and out, joined,
  left, net change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import jsonio
from .atomic import temp_dir_beside
from .errors import CustsegError, DataError, ModelError
from .identity import SegmentIdentity, identities_from_state

JOINED, LEFT = "joined", "left"
SEGMENTS_FILE, MODEL_FILE = "segments.csv", "model.json"
OUTPUT_FILES = ("transitions.csv", "movers.csv", "joined.csv", "left.csv", "net_flow.csv", "migration.json")


@dataclass(frozen=True)
class Side:
    """One side of a comparison.

    Attributes
    ----------
    assignments : DataFrame
        ``customer_id``, ``segment`` (number) and, when known, ``segment_name``.
    identities : list of SegmentIdentity or None
        The identities of the model that assigned them.
    label : str
        Where it came from (shown in messages and the report).
    model_key : str or None
        A digest of the assigning model's centres, when the model is known.
    """

    assignments: pd.DataFrame
    identities: list | None
    label: str
    model_key: str | None = None


@dataclass(frozen=True)
class Migration:
    """Everything :func:`compare_assignments` found; see the module docstring.

    Attributes
    ----------
    segments : DataFrame
        One row per segment seen on either side: ``key`` (identity id, or ``#n``),
        ``segment`` (number), ``name``, ``colour``, ``in_before``, ``in_after``.
    transitions : DataFrame
        ``from_segment``, ``to_segment``, ``customers``, ``row_percent``.
    movers : DataFrame
        ``customer_id``, ``from_segment``, ``to_segment``.
    joined, left : DataFrame
        ``customer_id``, ``segment``.
    net_flow : DataFrame
        ``segment``, ``name``, ``before``, ``after``, ``stayed``, ``moved_in``,
        ``moved_out``, ``joined``, ``left``, ``net``.
    matched_by : str
        ``"identity"`` or ``"number"``.
    before_label, after_label : str
    """

    segments: pd.DataFrame
    transitions: pd.DataFrame
    movers: pd.DataFrame
    joined: pd.DataFrame
    left: pd.DataFrame
    net_flow: pd.DataFrame
    matched_by: str
    before_label: str
    after_label: str

    def to_dict(self) -> dict:
        """``migration.json``: counts, segments, transitions and net flow (not the customer lists)."""
        in_both = int(self.transitions.loc[(self.transitions.from_segment != JOINED)
                                           & (self.transitions.to_segment != LEFT), "customers"].sum())
        return jsonio.jsonable({
            "before": self.before_label,
            "after": self.after_label,
            "matched_by": self.matched_by,
            "customers": {
                "before": int(self.net_flow.before.sum()),
                "after": int(self.net_flow.after.sum()),
                "in_both": in_both,
                "stayed": int(self.net_flow.stayed.sum()),
                "moved": len(self.movers),
                "joined": len(self.joined),
                "left": len(self.left),
            },
            "segments": self.segments.to_dict(orient="records"),
            "transitions": self.transitions.to_dict(orient="records"),
            "net_flow": self.net_flow.to_dict(orient="records"),
        })


# ---------------------------------------------------------------- reading
def _read_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype={"customer_id": "str"})
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable segments table ({type(exc).__name__}: {exc}).") from None
    absent = [c for c in ("customer_id", "segment") if c not in table.columns]
    if absent:
        raise DataError(f"{path} lacks column(s) {', '.join(absent)}; give a segments.csv from custseg run or "
                        "the output of custseg predict.")
    return table


def _read_model(path: Path) -> tuple[list | None, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is damaged or not a custseg model ({type(exc).__name__}: {exc}).") from None
    return _model_text(text, str(path))


def _model_text(text: str, label: str) -> tuple[list | None, str]:
    path = label
    try:
        state = json.loads(text)
        if not isinstance(state, dict) or state.get("format") != "custseg-model":
            raise ValueError("not a custseg model file")
        centres = np.asarray(state["centers"], dtype="<f8")
        if centres.ndim != 2:
            raise ValueError("its centres are not a table")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is damaged or not a custseg model ({type(exc).__name__}: {exc}).") from None
    key = hashlib.sha256(np.ascontiguousarray(centres).tobytes()).hexdigest()
    return identities_from_state(state, source=str(path)), key


def read_side(path) -> Side:
    """Read one side: a ``segments.csv`` / predict output, or a run folder.

    A folder must hold ``segments.csv``; its ``model.json``, when present, supplies
    the identities. A CSV file beside a ``model.json`` is read with it too.

    Raises
    ------
    DataError
        Missing file, unreadable table, missing columns, bad segment numbers.
    ModelError
        A damaged ``model.json`` or damaged identities.
    """
    path = Path(path)
    table_path = path / SEGMENTS_FILE if path.is_dir() else path
    if path.is_dir() and not table_path.is_file():
        raise DataError(f"{path} is a folder without {SEGMENTS_FILE}; give a run folder or a segments file.")
    table = _read_table(table_path)
    model_path = table_path.parent / MODEL_FILE
    identities, key = _read_model(model_path) if model_path.is_file() else (None, None)
    return Side(assignments=table, identities=identities, label=str(path), model_key=key)


def side_from_stored(assignments: pd.DataFrame, model_text: str | None, label: str) -> Side:
    """One side from a stored run: its assignments and, when stored, its model.json text (for the identities)."""
    identities, key = (None, None) if model_text is None else _model_text(model_text, label)
    return Side(assignments=assignments, identities=identities, label=label, model_key=key)


# ---------------------------------------------------------------- comparing
def _check(table: pd.DataFrame, label: str) -> pd.DataFrame:
    absent = [c for c in ("customer_id", "segment") if c not in table.columns]
    if absent:
        raise DataError(f"{label} lacks column(s) {', '.join(absent)}.")
    dup = table["customer_id"].duplicated(keep=False)
    if dup.any():
        ids = ", ".join(map(str, table.loc[dup, "customer_id"].unique()[:5]))
        raise DataError(f"{label} lists customer(s) {ids} more than once; one row per customer is needed.")
    segment = pd.to_numeric(table["segment"], errors="coerce")
    bad = segment.isna() | (segment != np.round(segment)) | (segment < 1)
    if bad.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad.to_numpy())[:5])
        raise DataError(f"{label}: column 'segment' must hold segment numbers (1, 2, …); see line(s) {rows} "
                        "(counting the header as line 1).")
    out = pd.DataFrame({"customer_id": table["customer_id"].astype("str"), "segment": segment.astype("int64")})
    if "segment_name" in table.columns:
        out["segment_name"] = table["segment_name"].astype("str")
    return out


def _identity_keys(table: pd.DataFrame, identities: Sequence[SegmentIdentity], label: str) -> dict:
    by_number = {i.number: i for i in identities}
    unknown = sorted(set(table["segment"]) - set(by_number))
    if unknown:
        raise DataError(f"{label} has segment number(s) {unknown} that its model's identities do not list; "
                        "the segments file and the model file do not belong together.")
    return by_number


def _names(table: pd.DataFrame) -> dict:
    if "segment_name" not in table.columns:
        return {}
    return dict(table.drop_duplicates("segment")[["segment", "segment_name"]].itertuples(index=False))


def _same_model(before: pd.DataFrame, after: pd.DataFrame, same_model: bool | None) -> bool:
    if same_model is not None:
        return same_model
    nb, na = _names(before), _names(after)
    return all(nb[k] == na[k] for k in set(nb) & set(na))


def _segment_table(before, after, b_ids, a_ids) -> pd.DataFrame:
    """One row per segment key, numbered and named from AFTER where it exists there."""
    rows = {}
    if b_ids is not None:
        for side, ids, table in (("before", b_ids, before), ("after", a_ids, after)):
            for number in sorted(set(table["segment"])):
                ident = ids[number]
                row = rows.setdefault(ident.id, {"key": ident.id, "in_before": False, "in_after": False})
                row.update(segment=ident.number, name=ident.name, colour=ident.colour)
                row[f"in_{side}"] = True
    else:
        for side, table in (("before", before), ("after", after)):
            names = _names(table)
            for number in sorted(set(table["segment"])):
                row = rows.setdefault(f"#{number}", {"key": f"#{number}", "in_before": False, "in_after": False})
                row.update(segment=int(number), name=str(names.get(number, f"Segment {number}")),
                           colour=int(number) - 1)
                row[f"in_{side}"] = True
    table = pd.DataFrame(list(rows.values()), columns=["key", "segment", "name", "colour", "in_before", "in_after"])
    if table["segment"].duplicated().any():
        raise DataError("two different segments carry the same number on the two sides; the later model was "
                        "not fitted with --reference to the earlier one, so numbers cannot be shown unambiguously.")
    return table.sort_values("segment", kind="stable").reset_index(drop=True)


def compare_assignments(before: pd.DataFrame, after: pd.DataFrame, *,
                        before_identities: Sequence[SegmentIdentity] | None = None,
                        after_identities: Sequence[SegmentIdentity] | None = None,
                        before_label: str = "before", after_label: str = "after",
                        same_model: bool | None = None) -> Migration:
    """Compare two assignments of customers to segments.

    Parameters
    ----------
    before, after : DataFrame
        ``customer_id``, ``segment`` (number), optionally ``segment_name``.
    before_identities, after_identities : sequence of SegmentIdentity, optional
        The identities of the models that assigned each side. With both, segments
        are matched by identity id; otherwise by number.
    before_label, after_label : str
        Names of the sides in messages and outputs.
    same_model : bool, optional
        Whether both sides come from one model, when known (e.g. from the model
        files); otherwise inferred from the segment names.

    Raises
    ------
    DataError
        No customer in common; repeated customers; segments from different models
        without identities on both sides; identities with no segment in common.
    """
    b, a = _check(before, before_label), _check(after, after_label)
    common = np.intersect1d(b["customer_id"].to_numpy(dtype=str), a["customer_id"].to_numpy(dtype=str))
    if common.size == 0:
        raise DataError(f"{before_label} and {after_label} have no customer in common; compare assignments of "
                        "the same portfolio (the customer_id columns must match).")
    if before_identities is not None and after_identities is not None:
        b_ids = _identity_keys(b, before_identities, before_label)
        a_ids = _identity_keys(a, after_identities, after_label)
        if not {i.id for i in before_identities} & {i.id for i in after_identities}:
            raise DataError(f"{before_label} and {after_label} come from unrelated models (no segment identity in "
                            f"common); re-segment with --reference pointing at the earlier model.")
        matched_by = "identity"
        b_key = b["segment"].map(lambda n: b_ids[n].id)
        a_key = a["segment"].map(lambda n: a_ids[n].id)
    else:
        if not _same_model(b, a, same_model):
            raise DataError(f"{before_label} and {after_label} come from different models and carry no segment "
                            "identities, so their segment numbers mean different things; compare run folders "
                            "whose model.json has identities (re-segment with --reference).")
        b_ids = a_ids = None
        matched_by = "number"
        b_key, a_key = "#" + b["segment"].astype(str), "#" + a["segment"].astype(str)
    segments = _segment_table(b, a, b_ids, a_ids)
    number = dict(zip(segments["key"], segments["segment"]))
    b = pd.DataFrame({"customer_id": b["customer_id"], "from": b_key.map(number)})
    a = pd.DataFrame({"customer_id": a["customer_id"], "to": a_key.map(number)})
    return _migration(b, a, segments, matched_by, before_label, after_label)


def _migration(b, a, segments, matched_by, before_label, after_label) -> Migration:
    both = b.merge(a, on="customer_id", how="inner")
    left = b[~b["customer_id"].isin(a["customer_id"])].rename(columns={"from": "segment"})
    joined = a[~a["customer_id"].isin(b["customer_id"])].rename(columns={"to": "segment"})
    moved = both[both["from"] != both["to"]]
    movers = moved.rename(columns={"from": "from_segment", "to": "to_segment"})

    flows = pd.concat([
        both.rename(columns={"from": "from_segment", "to": "to_segment"})[["from_segment", "to_segment"]],
        pd.DataFrame({"from_segment": JOINED, "to_segment": joined["segment"]}),
        pd.DataFrame({"from_segment": left["segment"], "to_segment": LEFT}),
    ], ignore_index=True).astype("object")
    transitions = flows.groupby(["from_segment", "to_segment"], sort=False).size().rename("customers").reset_index()
    order = {**{n: i for i, n in enumerate(segments["segment"])}, JOINED: len(segments), LEFT: len(segments)}
    transitions = transitions.sort_values(["from_segment", "to_segment"], kind="stable",
                                          key=lambda s: s.map(order)).reset_index(drop=True)
    totals = transitions.groupby("from_segment", sort=False)["customers"].transform("sum")
    transitions["row_percent"] = np.round(100.0 * transitions["customers"] / totals, 2)
    transitions["customers"] = transitions["customers"].astype("int64")

    def count(series: pd.Series) -> pd.Series:
        return series.value_counts().reindex(segments["segment"], fill_value=0).to_numpy()

    stayed = both[both["from"] == both["to"]]
    net = pd.DataFrame({
        "segment": segments["segment"].to_numpy(), "name": segments["name"].to_numpy(),
        "before": count(b["from"]), "after": count(a["to"]), "stayed": count(stayed["from"]),
        "moved_in": count(moved["to"]), "moved_out": count(moved["from"]),
        "joined": count(joined["segment"]), "left": count(left["segment"]),
    })
    net["net"] = net["after"] - net["before"]
    ordered = lambda t: t.sort_values("customer_id", kind="stable").reset_index(drop=True)  # noqa: E731
    return Migration(segments=segments, transitions=transitions,
                     movers=ordered(movers[["customer_id", "from_segment", "to_segment"]]),
                     joined=ordered(joined[["customer_id", "segment"]]), left=ordered(left[["customer_id", "segment"]]),
                     net_flow=net, matched_by=matched_by, before_label=before_label, after_label=after_label)


def compare_sides(before: Side, after: Side) -> Migration:
    """Compare two :class:`Side` objects (from :func:`read_side` or built by the caller)."""
    same = None
    if before.model_key is not None and after.model_key is not None:
        same = before.model_key == after.model_key
    return compare_assignments(before.assignments, after.assignments, before_identities=before.identities,
                               after_identities=after.identities, before_label=before.label,
                               after_label=after.label, same_model=same)


# ---------------------------------------------------------------- writing
def write_migration(migration: Migration, out, *, force: bool = False, report: bool = True) -> list[str]:
    """Write the comparison into folder ``out``, all files or none.

    Files: ``transitions.csv``, ``movers.csv``, ``joined.csv``, ``left.csv``,
    ``net_flow.csv``, ``migration.json`` and, with ``report``, ``report.html``,
    ``report.md`` and ``figures/flow.png`` (:mod:`custseg.report.migration`).
    Everything is written into a temporary folder beside ``out`` and moved into
    place at the end. Returns the written file names.

    Raises
    ------
    CustsegError
        ``out`` is a non-empty folder and ``force`` is false, or ``out`` is a file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CustsegError(f"{out} is a file; give a folder for the comparison outputs.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CustsegError(f"{out} is not empty; choose another folder or add --force to replace its contents.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir_beside(out)
    try:
        written = write_migration_files(migration, staging, report=report)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def write_migration_files(migration: Migration, folder: Path, *, report: bool = True) -> list[str]:
    """Write the comparison's files (see :func:`write_migration`) into an existing folder; return their names."""
    folder = Path(folder)
    tables = {"transitions.csv": migration.transitions, "movers.csv": migration.movers,
              "joined.csv": migration.joined, "left.csv": migration.left, "net_flow.csv": migration.net_flow}
    for name, table in tables.items():
        table.to_csv(folder / name, index=False, lineterminator="\n")
    data = migration.to_dict()
    jsonio.write_json(folder / "migration.json", data)
    written = list(OUTPUT_FILES)
    if report:
        from .report.migration import write_report

        written += write_report(data, folder)
    return written


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.replace(staging, out)
        return
    old = temp_dir_beside(out)
    os.replace(out, old / "previous")
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(old / "previous", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
