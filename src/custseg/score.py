"""Score new customers with a saved model: load → validate → assign."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .load import load
from .persist import fingerprint, load_model
from .quality import QualityReport, validate


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
        ``customer_id``, ``segment`` (1-based), ``segment_name``, ``distance_to_centre``.

    Raises
    ------
    ModelError
        The model file is missing, damaged or not a custseg model.
    DataError
        ``data`` cannot be scored (unreadable, lacking a column the model needs, ...).
    """
    table, report, _, _ = score_details(model_path, data)
    return (table, report) if with_report else table


def score_details(model_path: str | Path, data) -> tuple[pd.DataFrame, QualityReport, str, dict]:
    """:func:`score`'s assignments and data-quality report, the scored data's fingerprint and the model's state.

    What the segment store records about a scoring.
    """
    model, state = load_model(model_path)
    portfolio, report = validate(load(data), required=model.required_columns_)
    labels, distances = model.assign(portfolio.frame)
    table = assignments(portfolio.frame[schema.ID], labels, distances, state["segment_names"])
    return table, report, fingerprint(portfolio.frame), state


def assignments(ids: pd.Series, labels: np.ndarray, distances: np.ndarray, names: list[str]) -> pd.DataFrame:
    """The segments.csv / predict table: id, segment (1-based), segment name, distance to its centre."""
    return pd.DataFrame({
        "customer_id": ids.to_numpy(),
        "segment": labels + 1,
        "segment_name": np.asarray(names, dtype=object)[labels],
        "distance_to_centre": np.round(distances, 6),
    })

