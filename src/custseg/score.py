"""Score new customers with a saved model: load → validate → assign, and check for drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .drift import DriftReport, drift_report
from .load import load
from .persist import fingerprint, load_model, segment_identities
from .quality import QualityReport, validate

#: Said when a model file predates stored training distributions.
NO_DISTRIBUTION = "this model has no training distribution; refit to enable drift checks"


@dataclass(frozen=True)
class Scoring:
    """What scoring a portfolio with a saved model found.

    Attributes
    ----------
    table : DataFrame
        ``customer_id``, ``segment`` (identity number), ``segment_name``, ``distance_to_centre``.
    quality : QualityReport
        The validation of the scored data.
    drift : DriftReport or None
        Drift against the training distribution; ``None`` when the model has none.
    model_id : str
        The scoring model's id.
    fingerprint : str
        SHA-256 of the scored (validated) data, as the segment store records it.
    state : dict
        The model file's state (what the store records about the model).
    run_id : str or None
        The store's id of this scoring, once recorded.
    """

    table: pd.DataFrame
    quality: QualityReport
    drift: DriftReport | None
    model_id: str
    fingerprint: str = ""
    state: dict = field(default_factory=dict, repr=False)
    run_id: str | None = None

    def warnings(self) -> list[str]:
        """Lines for standard error: drifted and watched columns with a hint, or why drift was not checked."""
        return drift_warnings(self.drift)

    def drift_dict(self) -> dict:
        """The drift JSON: the report, or why there is none."""
        return drift_dict(self.drift, self.model_id)


def drift_warnings(drift: DriftReport | None) -> list[str]:
    """Lines for standard error about a scoring's drift, or why drift was not checked."""
    return [f"note: {NO_DISTRIBUTION}"] if drift is None else drift.warnings()


def drift_dict(drift: DriftReport | None, model_id: str) -> dict:
    """The drift JSON of a scoring: the report, or why there is none."""
    if drift is None:
        return {"model_id": model_id, "available": False, "reason": NO_DISTRIBUTION}
    return {"model_id": model_id, "available": True, **drift.to_dict()}


def score(model_path: str | Path, data, *, with_report: bool = False):
    """Assign each customer in ``data`` to a segment of the model at ``model_path``.

    Parameters
    ----------
    model_path : path
        A ``model.json`` written by ``custseg run``; checked as a whole before use.
    data : path, DataFrame or source
        The customers to score, anything :func:`custseg.load.load` reads; validated
        exactly as in training.
    with_report : bool
        Also return the data-quality report of ``data``.

    Returns
    -------
    DataFrame
        ``customer_id``, ``segment`` (the segment's identity number: 1-based, by size
        unless the model was fitted with a reference), ``segment_name``,
        ``distance_to_centre``.

    Raises
    ------
    ModelError
        The model file is missing, damaged or not a custseg model.
    DataError
        ``data`` cannot be scored (unreadable, lacking a column the model needs, ...).
    """
    scoring = score_with_drift(model_path, data)
    return (scoring.table, scoring.quality) if with_report else scoring.table


def score_with_drift(model_path: str | Path, data) -> Scoring:
    """Like :func:`score`, and compare the scored population with the training one (:mod:`custseg.drift`)."""
    model, state = load_model(model_path)
    portfolio, report = validate(load(data), required=model.required_columns_)
    frame = portfolio.frame
    Z = model.embed(frame)
    labels, distances = nearest(Z, model.cluster_centers_)
    identities = segment_identities(state)
    table = assignments(frame[schema.ID], labels, distances, [i.name for i in identities],
                        numbers=[i.number for i in identities])
    drift = None
    if "training_distribution" in state:
        features = pd.DataFrame(Z, columns=list(model.feature_names_out_), index=frame.index)
        drift = drift_report(state["training_distribution"], frame[list(model.required_columns_)], features,
                             distances)
    return Scoring(table, report, drift, str(state["model_id"]), fingerprint(frame), state)


def assignments(ids: pd.Series, labels: np.ndarray, distances: np.ndarray, names: list[str],
                numbers=None) -> pd.DataFrame:
    """The segments.csv / predict table: id, segment number, segment name, distance to its centre.

    ``labels`` are 0-based model positions; ``numbers`` gives each position's segment
    number (default: position + 1).
    """
    labels = np.asarray(labels)
    segment = labels + 1 if numbers is None else np.asarray(numbers, dtype=np.int64)[labels]
    return pd.DataFrame({
        "customer_id": ids.to_numpy(),
        "segment": segment,
        "segment_name": np.asarray(names, dtype=object)[labels],
        "distance_to_centre": np.round(distances, 6),
    })


def nearest(Z: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (int64) of each row of ``Z`` and the exact Euclidean distance (float64) to it.

    The nearest centre is the one at the least squared distance, summed feature by
    feature (ties to the first centre); the distance is its square root
    (:func:`custseg.scoring_kernels.assign`, compiled). Scoring in one go and in batches
    both use it, so they agree to the last bit.
    """
    from .scoring_kernels import assign

    return assign(np.asarray(Z, dtype=np.float64).T, centres)
