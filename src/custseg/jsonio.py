"""JSON that is deterministic and safe: NaN becomes null, NumPy scalars become Python."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FLOAT_DIGITS = 10


def jsonable(obj):
    """Convert nested results (dicts, lists, NumPy/pandas values) into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray, pd.Index)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return round(f, FLOAT_DIGITS) if np.isfinite(f) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def dumps(obj) -> str:
    return json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, obj) -> None:
    Path(path).write_text(dumps(obj), encoding="utf-8")
