"""Model files: one JSON document, readable by a person, loaded without running code.

A fitted :class:`~custseg.segmenter.Segmenter` is stored as its *state* — the feature
set, the imputation values, the scaler's means and scales, the segment centres —
never as pickled objects, so opening a file cannot execute anything. Floats are
written with ``repr`` precision, so a loaded model assigns exactly as the saved one.
The file also carries the schema it expects, the library versions, a fingerprint
of the training data, and the segment names.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from . import schema
from .atomic import replacing
from .errors import ModelError
from .features import DeriveBehaviour, DomainImputer, LogTransform, make_pipeline, resolve_features
from .segmenter import Segmenter

FORMAT = "custseg-model"
FORMAT_VERSION = 1


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a portfolio's content (values and column names, not row order of the index)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    out = {}
    for lib in ("custseg", "scikit-learn", "numpy", "pandas", "scipy"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out


def model_state(model: Segmenter, *, segment_names: list[str], training: dict) -> dict:
    """The JSON-ready state of a fitted segmenter."""
    steps = model.pipeline_.named_steps
    impute, derive, log, scale = steps["impute"], steps["derive"], steps["log"], steps["scale"]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": versions(),
        "params": model.get_params(),
        "schema": [{"name": c, "kind": schema.BY_NAME[c].kind, "description": schema.BY_NAME[c].description}
                   for c in (schema.ID, *model.required_columns_)],
        "training": training,
        "features": list(derive.features_),
        "model_inputs": list(model.feature_names_out_),
        "impute": {"columns": list(impute.feature_names_in_), "medians": impute.medians_,
                   "minimum_ratio": impute.minimum_ratio_},
        "log_columns": list(log.columns),
        "scale": {"mean": scale.mean_.tolist(), "scale": scale.scale_.tolist(), "var": scale.var_.tolist(),
                  "n_samples_seen": int(scale.n_samples_seen_)},
        "centers": model.cluster_centers_.tolist(),
        "inertia": model.inertia_,
        "segment_names": list(segment_names),
    }


def save_model(path: str | Path, model: Segmenter, *, segment_names: list[str], training: dict) -> None:
    """Write a fitted model as JSON, atomically."""
    text = json.dumps(model_state(model, segment_names=segment_names, training=training), indent=1,
                      allow_nan=False) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def load_model(path: str | Path) -> tuple[Segmenter, dict]:
    """Rebuild a segmenter from a model file; returns it and the file's full state.

    Raises
    ------
    ModelError
        The file is missing, not JSON, not a custseg model, or inconsistent.
    """
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not a custseg model file (not JSON: {exc}).") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{path} is not a custseg model file (its 'format' field is missing or different).")
    if state.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path} is model format version {state.get('format_version')}; this custseg reads "
                         f"version {FORMAT_VERSION}.")
    try:
        return _rebuild(state), state
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path} is damaged or incomplete ({type(exc).__name__}: {exc}).") from None


def _rebuild(state: dict) -> Segmenter:
    features = resolve_features(state["features"])
    pipeline = make_pipeline(features)
    impute: DomainImputer = pipeline.named_steps["impute"]
    impute.feature_names_in_ = np.asarray(state["impute"]["columns"], dtype=object)
    impute.n_features_in_ = len(impute.feature_names_in_)
    impute.medians_ = {k: float(v) for k, v in state["impute"]["medians"].items()}
    impute.minimum_ratio_ = float(state["impute"]["minimum_ratio"])
    derive: DeriveBehaviour = pipeline.named_steps["derive"]
    derive.feature_names_in_ = impute.feature_names_in_
    derive.n_features_in_ = impute.n_features_in_
    derive.features_ = features
    log: LogTransform = pipeline.named_steps["log"]
    log.columns = tuple(state["log_columns"])
    log.feature_names_in_ = np.asarray(features, dtype=object)
    log.n_features_in_ = len(features)
    scale: StandardScaler = pipeline.named_steps["scale"]
    scale.mean_ = np.asarray(state["scale"]["mean"], dtype=np.float64)
    scale.scale_ = np.asarray(state["scale"]["scale"], dtype=np.float64)
    scale.var_ = np.asarray(state["scale"]["var"], dtype=np.float64)
    scale.n_samples_seen_ = int(state["scale"]["n_samples_seen"])
    scale.feature_names_in_ = log.get_feature_names_out()
    scale.n_features_in_ = len(features)
    centers = np.asarray(state["centers"], dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != len(features):
        raise ValueError(f"centres have shape {centers.shape} but there are {len(features)} features")
    params = {k: v for k, v in state["params"].items() if k in Segmenter().get_params()}
    model = Segmenter(**params)
    model.pipeline_ = pipeline
    model.required_columns_ = tuple(c for c in impute.feature_names_in_)
    model.cluster_centers_ = centers
    model.n_clusters_ = centers.shape[0]
    model.inertia_ = float(state["inertia"])
    model.feature_names_out_ = np.asarray(state["model_inputs"], dtype=object)
    model.n_features_in_ = len(model.required_columns_)
    return model
