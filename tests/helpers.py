"""Small portfolios for fast tests (the real file is used in test_real_data.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from custseg import datasets, schema


def tiny_portfolio(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A schema-valid portfolio with three obvious behaviours: buyers, cash users, dormant."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 3
    tenure = np.where(rng.random(n) < 0.85, 12, rng.integers(6, 12, n)).astype(float)
    oneoff = np.where(kind == 0, rng.gamma(2, 400, n), 0.0)
    inst = np.where(kind == 0, rng.gamma(2, 200, n), 0.0)
    cash = np.where(kind == 1, rng.gamma(2, 1500, n), 0.0)
    limit = rng.choice([1000.0, 3000.0, 6000.0, 12000.0], n)
    balance = np.where(kind == 2, rng.gamma(1, 30, n), rng.gamma(2, 800, n))
    pf = np.where(kind == 0, rng.uniform(0.6, 1, n), np.where(kind == 1, 0.0, rng.uniform(0, 0.1, n)))
    caf = np.where(kind == 1, rng.uniform(0.3, 0.8, n), 0.0)
    payments = np.where(kind == 2, 0.0, rng.gamma(2, 600, n))
    frame = pd.DataFrame({
        schema.ID: [f"C{10001 + i}" for i in range(n)],
        "BALANCE": balance,
        "BALANCE_FREQUENCY": np.where(kind == 2, 0.3, 1.0),
        "PURCHASES": oneoff + inst,
        "ONEOFF_PURCHASES": oneoff,
        "INSTALLMENTS_PURCHASES": inst,
        "CASH_ADVANCE": cash,
        "PURCHASES_FREQUENCY": pf,
        "ONEOFF_PURCHASES_FREQUENCY": pf / 2,
        "PURCHASES_INSTALLMENTS_FREQUENCY": pf / 2,
        "CASH_ADVANCE_FREQUENCY": caf,
        "CASH_ADVANCE_TRX": np.round(caf * 12),
        "PURCHASES_TRX": np.round(pf * 30),
        "CREDIT_LIMIT": limit,
        "PAYMENTS": payments,
        "MINIMUM_PAYMENTS": np.where(payments > 0, payments / 4, np.nan),
        "PRC_FULL_PAYMENT": np.where(kind == 0, 0.8, 0.0),
        "TENURE": tenure,
    })
    return frame


def clear_moves(model, months, homes) -> pd.Series:
    """Whether each planted move of month 2 has both rows clearly placed (margin 2 delta).

    ``homes`` maps each archetype to the 0-based position of the model segment holding most of its
    month-1 customers; delta is the largest distance between an archetype's centre and its home
    segment's centre (see ``custseg.datasets.clearly_placed``). Indexed by customer id.
    """
    embedded = [model.embed(f) for f in months.frames]
    centres = datasets.archetype_centres(embedded[0], months.truth[0])
    model_centres = model.cluster_centers_[homes.loc[centres.index].to_numpy()]
    delta = np.linalg.norm(centres.to_numpy() - model_centres, axis=1).max()
    placed = [pd.Series(datasets.clearly_placed(z, t, centres, 2 * delta), index=f[schema.ID])
              for z, t, f in zip(embedded, months.truth, months.frames)]
    planted = months.events[months.events.event == "move"].customer_id
    both = placed[0][planted].to_numpy() & placed[1][planted].to_numpy()
    return pd.Series(both, index=pd.Index(planted, name="customer_id"))


def spark_marks(what: str) -> list:
    """``pytestmark`` for a module that needs Spark: skip with a reason when PySpark or Java is absent (fail
    under ``CI=true``, where the CI script installs them), and silence PySpark 4's warnings about pandas 3
    (the tests check the converted numbers themselves)."""
    import os
    import shutil

    import pytest

    try:
        import pyspark  # noqa: F401
        missing = None
    except ImportError:
        missing = "PySpark is not installed (pip install 'custseg[spark]')"
    if missing is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing = "Java is not installed (Spark 4 needs Java 17 or 21)"
    if missing and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {what} cannot be tested: {missing}", pytrace=False)
    return [
        pytest.mark.skipif(missing is not None, reason=missing or ""),
        pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
        pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    ]
