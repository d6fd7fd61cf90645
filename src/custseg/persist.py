"""Model files: one JSON document, readable by a person, loaded without running code.

A fitted :class:`~custseg.segmenter.Segmenter` is stored as its *state* — the
parameters, the state of each pipeline step (``step.get_state()``, restored by
``Cls.from_state``; the classes a file may name are :data:`custseg.features.STEP_TYPES`),
the segment centres — never as pickled objects, so opening a file cannot execute
anything. Floats are written with ``repr`` precision, so a loaded model assigns
exactly as the saved one. The file also carries the schema it expects, the library
versions, a fingerprint of the training data, the segment names and a
:func:`model_id`; files written since month-over-month support also carry the
segments' identities (``segment_identities``, :mod:`custseg.identity`) and the
training distribution used for drift checks (``training_distribution``,
:mod:`custseg.drift`). Files without them still load.

:func:`load_model` checks the whole file before using any of it and refuses a
damaged one with a :class:`~custseg.errors.ModelError` (exit code 2).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import schema
from .atomic import replacing
from .errors import CustsegError, ModelError
from .drift import check_bins
from .feature_catalog import FEATURES, required_columns, resolve_features, state_floats, state_keys, state_names
from .identity import STATE_KEY as IDENTITIES_KEY
from .identity import SegmentIdentity, identities_from_state, identities_to_state, initial_identities

FORMAT = "custseg-model"
FORMAT_VERSION = 2
#: Versions this custseg reads; version 1 (steps under fixed keys) is converted on load.
READS = (1, 2)
KEYS = ("format", "format_version", "model_id", "versions", "params", "schema", "training", "features",
        "model_inputs", "pipeline", "centers", "inertia", "segment_names")
#: Keys a file may carry; files written before month-over-month support lack them.
OPTIONAL_KEYS = (IDENTITIES_KEY, "training_distribution")
#: Keys that say how, where and with what a model was written, not what it is: left out of its id.
NOT_IDENTITY = ("format", "format_version", "model_id", "versions", "training")
#: A model file is tens of kilobytes and nested 5 levels deep; far beyond either it is not a model.
MAX_BYTES = 64 * 2**20
MAX_DEPTH = 20
PICKLE_START = b"\x80"
#: Longest description of what is wrong in a model file, in characters (one short paragraph).
MAX_DETAIL = 300
RERUN = "Write a new one with `custseg run`."

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from .segmenter import Segmenter


#: Rows hashed at a time by :func:`fingerprint`.
FINGERPRINT_ROWS = 500_000


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a portfolio's content (values and column names, not row order of the index).

    A row's hash depends on that row alone, so hashing the rows in blocks gives the
    digest of hashing them all at once, while only one block's ids are Python strings.
    """
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    # without missing text, pandas hashes the same without categorizing first, which only pays off for repeated
    # values (ids are unique); a missing value is hashed differently by the two
    categorize = bool(text) and bool(frame[text].isna().to_numpy().any())
    for start in range(0, len(frame), FINGERPRINT_ROWS):
        block = frame.iloc[start:start + FINGERPRINT_ROWS]
        digest.update(pd.util.hash_pandas_object(block, index=False, categorize=categorize).to_numpy().tobytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    out = {}
    for lib in ("custseg", "scikit-learn", "numpy", "pandas", "scipy"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out


def model_id(state: dict) -> str:
    """Identify a model: SHA-256 of the canonical JSON of its state without :data:`NOT_IDENTITY`.

    The same fit gives the same id whatever the library versions, the time or the
    path of the training file; any change to a parameter, a step's state, a centre
    or a segment name gives another.
    """
    content = {k: v for k, v in state.items() if k not in NOT_IDENTITY}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_state(model: Segmenter, *, segment_names: list[str], training: dict,
                identities: list[SegmentIdentity] | None = None, training_distribution: dict | None = None) -> dict:
    """The JSON-ready state of a fitted segmenter, with its :func:`model_id`.

    ``identities`` (one per centre, in model order) and ``training_distribution``
    (:func:`custseg.drift.training_bins`) are stored when given.
    """
    body = {
        "versions": versions(),
        "params": model.get_params(),
        "schema": [{"name": c, "kind": schema.BY_NAME[c].kind, "description": schema.BY_NAME[c].description}
                   for c in (schema.ID, *model.required_columns_)],
        "training": training,
        "features": list(resolve_features(model.features)),
        "model_inputs": list(model.feature_names_out_),
        "pipeline": [_step_entry(name, step) for name, step in model.pipeline_.steps],
        "centers": model.cluster_centers_.tolist(),
        "inertia": float(model.inertia_),
        "segment_names": list(segment_names),
    }
    if identities is not None:
        body[IDENTITIES_KEY] = identities_to_state(identities)
    if training_distribution is not None:
        body["training_distribution"] = training_distribution
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id(body), **body}


def _step_entry(name: str, step) -> dict:
    from .features import STEP_TYPES

    kind = type(step).__name__
    if STEP_TYPES.get(kind) is not type(step):
        raise TypeError(f"pipeline step '{name}' is a {kind}, which is not in custseg.features.STEP_TYPES "
                        "and so could not be loaded again")
    return {"step": name, "class": kind, "state": step.get_state()}


def save_model(path: str | Path, model: Segmenter, *, segment_names: list[str], training: dict,
               identities: list[SegmentIdentity] | None = None, training_distribution: dict | None = None) -> None:
    """Write a fitted model as JSON, atomically (see :func:`model_state`)."""
    state = model_state(model, segment_names=segment_names, training=training, identities=identities,
                        training_distribution=training_distribution)
    text = json.dumps(state, indent=1, allow_nan=False) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def load_model(path: str | Path) -> tuple[Segmenter, dict]:
    """Check a model file as a whole and rebuild its segmenter; returns it and the file's state.

    Checked before anything is used: that the file is JSON text of sane size and
    depth, without ``NaN``/``Infinity`` or repeated keys; its format and version;
    every required key and no unknown one; the parameters (known, none null); the
    feature names; every step's state (lengths, finite numbers, positive scales);
    that the steps' output names are the model inputs; the centres (one row per
    segment name, one finite number per input); the segment identities and the
    training distribution when present; and that the content still matches its
    ``model_id``.

    Raises
    ------
    ModelError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    state = _read_state(path)
    model = _checked(path, _rebuild, state)
    _check_id(path, state)
    return model, state


@dataclass(frozen=True)
class ScoringModel:
    """What scoring customers needs of a model file, read without scikit-learn (:func:`load_scoring_model`).

    Attributes
    ----------
    state : dict
        The file's state, as :func:`load_model` returns it.
    required_columns : tuple of str
        The input columns the features need, in schema order (the imputer's columns).
    medians : ndarray
        The imputer's median of each required column.
    minimum_ratio : float
        The imputer's ratio of minimum payments to payments.
    features : tuple of str
        The behaviour features, in model order (names of :data:`custseg.features.FEATURES`).
    logged : frozenset of str
        The features taken ``log1p`` of.
    mean, scale : ndarray
        The standardisation of each feature.
    model_inputs : tuple of str
        The features' names as the model sees them (``log_`` before the logged ones).
    centres : ndarray
        One row per segment.
    """

    state: dict
    required_columns: tuple
    medians: np.ndarray
    minimum_ratio: float
    features: tuple
    logged: frozenset
    mean: np.ndarray
    scale: np.ndarray
    model_inputs: tuple
    centres: np.ndarray


#: The feature steps of every model custseg writes (``custseg.features.make_pipeline``), in order.
SCORING_STEPS = ("DomainImputer", "DeriveBehaviour", "LogTransform", "Standardise")


def load_scoring_model(path: str | Path) -> ScoringModel:
    """Read a model file for scoring alone, without scikit-learn: every number scoring uses, checked.

    The file is refused as by :func:`load_model` when it is not sane JSON, not a
    custseg model, of another version, does not match its ``model_id``, or when any
    part scoring reads is damaged: the features and their columns, each feature
    step's numbers (finite, one per column or feature, scales above 0), the model
    inputs, the centres, the segment names and identities and the training
    distribution, and the library versions and training description (outside the id).
    The estimator's parameters and the inertia, which scoring does not read, are
    covered by the id alone.

    Raises
    ------
    ModelError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    state = _read_state(path)
    model = _checked(path, _scoring_model, state)
    _check_id(path, state)
    return model


def scoring_model(model: Segmenter) -> ScoringModel:
    """What :func:`load_scoring_model` would read from ``model``'s file, for a fitted segmenter in memory."""
    names = [f"segment {number}" for number in range(1, len(model.cluster_centers_) + 1)]
    return _scoring_model(model_state(model, segment_names=names, training={}))


def _read_state(path: Path) -> dict:
    """The model file's state (a version-1 one in the version-2 layout): JSON, format and version checked."""
    state = _parse(path, _read_text(path))
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{path} is not a custseg model file (its 'format' field is missing or different).")
    version = state.get("format_version")
    if version not in READS or isinstance(version, bool):
        raise ModelError(f"{path} is model format version {version!r}; this custseg reads versions "
                         f"{' and '.join(map(str, READS))}. Use the custseg that wrote it, or refit: {RERUN}")
    if version == 1:
        state = _checked(path, _upgrade_v1, state)
    return state


def _checked(path: Path, build, state: dict):
    """``build(state)``, its ``ValueError`` or ``CustsegError`` as the :class:`ModelError` naming ``path``."""
    try:
        return build(state)
    except (ValueError, CustsegError) as exc:
        detail = str(exc) if len(str(exc)) <= MAX_DETAIL else str(exc)[:MAX_DETAIL] + "…"
        raise ModelError(f"{path} is damaged or incomplete: {detail}. {RERUN}") from None


def _check_id(path: Path, state: dict) -> None:
    if state["model_id"] != model_id(state):
        raise ModelError(f"{path} is damaged or was edited after it was saved: its content does not match its "
                         f"model_id {str(state['model_id'])[:64]!r}, so it is not the model that was fitted. {RERUN}")


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file.") from None
    if path.is_dir():
        raise ModelError(f"{path} is a folder; give the model.json that `custseg run` wrote.")
    if size == 0:
        raise ModelError(f"{path} is empty (0 bytes), so it holds no model. {RERUN}")
    if size > MAX_BYTES:
        raise ModelError(f"{path} is {size:,} bytes, far larger than any model file (at most {MAX_BYTES:,}); "
                         "it is not a custseg model.")
    raw = path.read_bytes()
    if raw.startswith(PICKLE_START):
        raise ModelError(f"{path} looks like a Python pickle, not a custseg model file; custseg never unpickles "
                         "files, because opening a pickle can run any code. Give the model.json that "
                         "`custseg run` wrote.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not a custseg model file (not UTF-8 text; it looks binary).") from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` outside strings, found without parsing."""
    steps = [1 if b in "[{" else -1 for b in _BRACKET.findall(_STRING.sub("", text))]
    return int(np.cumsum(steps).max(initial=0))


def _parse(path: Path, text: str):
    if _depth(text) > MAX_DEPTH:
        raise ModelError(f"{path} is not a custseg model file: its JSON is nested more than {MAX_DEPTH} levels "
                         "deep (a model needs 5).")
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_repeats)
    except ValueError as exc:  # JSONDecodeError is a ValueError, as are the hooks' refusals
        raise ModelError(f"{path} is not a custseg model file (not valid JSON: {exc}).") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _refuse_repeats(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = [k for k, _ in pairs]
        raise ValueError(f"the key {next(k for k in seen if seen.count(k) > 1)!r} appears twice in one object")
    return out


def _checked_features(state: dict) -> tuple[list[str], tuple[str, ...]]:
    """The keys, versions, training, features and schema of a version-2 state checked (ValueError naming the
    part); the features and the columns they need."""
    state_keys(state, KEYS + tuple(k for k in OPTIONAL_KEYS if k in state), "the model")
    _check_versions(state["versions"])
    if not isinstance(state["training"], dict):
        raise ValueError("'training' must be a JSON object")
    features = state_names(state["features"], "'features'", unique=True)
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"'features' names unknown feature(s) {', '.join(unknown)}")
    columns = required_columns(features)
    _check_schema(state["schema"], columns)
    return features, columns


def _rebuild(state: dict) -> Segmenter:
    """Check every part of a version-2 state (ValueError naming the part) and build its segmenter."""
    from .segmenter import Segmenter

    features, columns = _checked_features(state)
    params = _params(state["params"], features)
    pipeline = _pipeline(state["pipeline"], columns)
    inputs = state_names(state["model_inputs"], "'model_inputs'", unique=True)
    produced = list(pipeline.get_feature_names_out())
    if inputs != produced:
        raise ValueError(f"'model_inputs' are not what the pipeline produces ({_difference(inputs, produced)})")
    centers = _centers(state["centers"], len(inputs))
    names = state_names(state["segment_names"], "'segment_names'", length=len(centers))
    inertia = float(state_floats([state["inertia"]], "'inertia'", lower=0.0)[0])
    _check_identities(state, names)
    if "training_distribution" in state:
        check_bins(state["training_distribution"], columns, inputs)
    model = Segmenter(**params)
    model.pipeline_ = pipeline
    model.required_columns_ = columns
    model.cluster_centers_ = centers
    model.n_clusters_ = len(names)
    model.inertia_ = inertia
    model.feature_names_out_ = np.asarray(inputs, dtype=object)
    model.n_features_in_ = len(columns)
    return model


def _scoring_model(state: dict) -> ScoringModel:
    """Check the parts of a version-2 state that scoring reads (ValueError naming the part) and gather them."""
    features, columns = _checked_features(state)
    steps = state["pipeline"]
    if not isinstance(steps, list) or not all(isinstance(e, dict) for e in steps) \
            or [e.get("class") for e in steps] != list(SCORING_STEPS):
        raise ValueError(f"'pipeline' must hold the steps {', '.join(SCORING_STEPS)}, in that order")
    for number, entry in enumerate(steps, 1):
        state_keys(entry, ("step", "class", "state"), f"pipeline step {number}")
    impute, derive, log, scale = (entry["state"] for entry in steps)
    state_keys(impute, ("columns", "medians", "minimum_ratio"), "the imputer's state")
    if state_names(impute["columns"], "the imputer's 'columns'") != list(columns) \
            or not isinstance(impute["medians"], dict) or list(impute["medians"]) != list(columns):
        raise ValueError("the imputer must give one median per column the features need, in schema order")
    medians = state_floats(list(impute["medians"].values()), "the imputer's 'medians'")
    ratio = float(state_floats([impute["minimum_ratio"]], "'minimum_ratio'", lower=0.0)[0])
    state_keys(derive, ("features",), "the feature step's state")
    if state_names(derive["features"], "the feature step's 'features'") != features:
        raise ValueError("the feature step does not compute the model's 'features'")
    state_keys(log, ("columns",), "the log step's state")
    logged = frozenset(state_names(log["columns"], "the log step's 'columns'", unique=True, empty=True))
    if not logged <= set(features):
        raise ValueError("the log step names columns that are not features")
    state_keys(scale, ("mean", "scale", "var", "n_samples_seen"), "the scaler's state")
    mean = state_floats(scale["mean"], "'mean'", length=len(features))
    spread = state_floats(scale["scale"], "'scale'", length=len(features), positive=True)
    inputs = tuple(f"log_{f}" if f in logged else f for f in features)
    if state_names(state["model_inputs"], "'model_inputs'", unique=True) != list(inputs):
        raise ValueError(f"'model_inputs' are not what the pipeline produces "
                         f"({_difference(state['model_inputs'], list(inputs))})")
    centres = _centers(state["centers"], len(inputs))
    names = state_names(state["segment_names"], "'segment_names'", length=len(centres))
    _check_identities(state, names)
    if "training_distribution" in state:
        check_bins(state["training_distribution"], columns, inputs)
    return ScoringModel(state, columns, medians, ratio, tuple(features), logged, mean, spread, inputs, centres)


def _check_identities(state: dict, names: list[str]) -> None:
    identities = identities_from_state(state, source="the model")
    if identities is not None and [i.name for i in identities] != list(names):
        raise ValueError(f"'{IDENTITIES_KEY}' do not carry the names in 'segment_names'")


def segment_identities(state: dict) -> list[SegmentIdentity]:
    """The identities of a loaded model's segments, in model order.

    A file written before identities existed numbers its segments by position (1 =
    first centre), as it always did; those identities are derived from its centres.
    """
    stored = identities_from_state(state)
    if stored is not None:
        return stored
    return initial_identities(np.asarray(state["centers"], dtype=np.float64), state["segment_names"])


def _check_versions(value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                              for k, v in value.items()):
        raise ValueError("'versions' must map each library to its version as text")


def _params(params, features: list[str]) -> dict:
    if not isinstance(params, dict):
        raise ValueError("'params' must be a JSON object")
    from .segmenter import Segmenter

    known = Segmenter().get_params()
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ValueError(f"'params' has unknown parameter(s) {', '.join(unknown)}")
    nulls = [k for k, v in params.items() if v is None and known[k] is not None]
    if nulls:
        raise ValueError(f"'params' has no value (null) for {', '.join(nulls)}")
    if "features" in params:
        try:
            chosen = resolve_features(params["features"])
        except (CustsegError, TypeError):
            raise ValueError(f"'params' has an unknown feature set {params['features']!r}") from None
        if list(chosen) != features:
            raise ValueError("the feature set in 'params' is not the one in 'features'")
    return params


def _check_schema(entries, columns: tuple[str, ...]) -> None:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("'schema' must be a list of columns")
    names = [e.get("name") for e in entries]
    expected = [schema.ID, *columns]
    if names != expected:
        raise ValueError(f"'schema' does not list the columns the features need ({_difference(names, expected)})")


def _difference(found: list, expected: list) -> str:
    """What a list lacks and has too many of, in a few words (not both lists in full)."""
    lacking = [str(c)[:40] for c in expected if c not in found]
    extra = [str(c)[:40] for c in found if c not in expected]
    parts = [f"{label} {', '.join(items[:5])}{' and more' if len(items) > 5 else ''}"
             for label, items in (("lacks", lacking), ("has unexpected", extra)) if items]
    return "; ".join(parts) or "same names, another order or repeated"


def _pipeline(entries, columns: tuple[str, ...]) -> Pipeline:
    """The fitted feature pipeline, each step rebuilt from its own state for the names the step before gives."""
    from sklearn.pipeline import Pipeline

    from .features import STEP_TYPES

    if not isinstance(entries, list) or not entries:
        raise ValueError("'pipeline' must be a non-empty list of steps")
    steps, names_in = [], columns
    for number, entry in enumerate(entries, 1):
        state_keys(entry, ("step", "class", "state"), f"pipeline step {number}")
        name, kind = entry["step"], entry["class"]
        if not isinstance(name, str) or not name or name in dict(steps):
            raise ValueError(f"pipeline step {number} has no name, or one already used")
        cls = STEP_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"pipeline step '{name}' names the class {kind!r}, which is not a custseg step "
                             f"(known: {', '.join(STEP_TYPES)})")
        try:
            step = cls.from_state(entry["state"], names_in)
        except ValueError as exc:
            raise ValueError(f"pipeline step '{name}' ({kind}): {exc}") from None
        steps.append((name, step))
        names_in = tuple(step.get_feature_names_out())
    return Pipeline(steps).set_output(transform="pandas")


def _centers(rows, width: int) -> np.ndarray:
    if not isinstance(rows, list) or not rows:
        raise ValueError("'centers' must be a non-empty list of segment centres")
    return np.vstack([state_floats(row, f"'centers' row {i}", length=width) for i, row in enumerate(rows, 1)])


def _upgrade_v1(state: dict) -> dict:
    """A version-1 state (steps' states under fixed keys, no id) in the version-2 layout."""
    old = dict(state)
    try:
        pipeline = [
            {"step": "impute", "class": "DomainImputer", "state": old.pop("impute")},
            {"step": "derive", "class": "DeriveBehaviour", "state": {"features": old.get("features")}},
            {"step": "log", "class": "LogTransform", "state": {"columns": old.pop("log_columns")}},
            {"step": "scale", "class": "Standardise", "state": old.pop("scale")},
        ]
    except KeyError as exc:
        raise ValueError(f"the model lacks {exc}") from None
    body = {k: v for k, v in old.items() if k not in ("format", "format_version")}
    body["pipeline"] = pipeline
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id(body), **body}
