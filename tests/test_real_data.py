"""The whole CLI on the real portfolio: content, not just existence; a rerun is byte-identical."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from custseg.cli import cli


@pytest.fixture(scope="module")
def runs(real_run, real_data_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "second"
    res = CliRunner().invoke(cli, ["run", str(real_data_path), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return [real_run, out]


def test_every_customer_assigned_once(runs, real_data_path):
    seg = pd.read_csv(runs[0] / "segments.csv")
    raw = pd.read_csv(real_data_path)
    assert len(seg) == 8950
    assert seg["customer_id"].is_unique
    assert set(seg["customer_id"]) == set(raw["CUST_ID"])
    k = json.loads((runs[0] / "metrics.json").read_text())["chosen_k"]
    assert set(seg["segment"]) == set(range(1, k + 1))
    assert seg["distance_to_centre"].ge(0).all()


def test_profiles_add_up(runs):
    prof = pd.read_csv(runs[0] / "profiles.csv")
    assert prof["size"].sum() == 8950
    # shares are written rounded to 6 significant digits, so their sum may miss 1 by that rounding per segment
    assert prof["share"].sum() == pytest.approx(1.0, abs=len(prof) * 5e-7)
    seg = pd.read_csv(runs[0] / "segments.csv")
    assert prof.set_index("segment")["size"].to_dict() == seg["segment"].value_counts().to_dict()
    assert prof["segment_name"].is_unique
    assert set(prof["stability_status"]) <= {"stable", "weak", "unstable"}


def test_data_quality_counts_equal_the_readme(runs):
    dq = json.loads((runs[0] / "data_quality.json").read_text())
    counts = {(f["check"], f["column"]): f["count"] for f in dq["findings"]}
    assert dq["missing"]["MINIMUM_PAYMENTS"] == 313
    assert dq["missing"]["CREDIT_LIMIT"] == 1
    assert counts[("missing_where_no_payment", "MINIMUM_PAYMENTS")] == 240
    assert counts[("above_one", "CASH_ADVANCE_FREQUENCY")] == 8
    assert counts[("purchase_sum_mismatch", "PURCHASES")] == 19
    assert counts[("balance_above_limit", "BALANCE")] == 227
    assert counts[("minimum_above_payments", "MINIMUM_PAYMENTS")] == 2365
    assert counts[("no_purchases", "PURCHASES")] == 2044
    assert counts[("no_cash_advance", "CASH_ADVANCE")] == 4628


def test_metrics_cover_every_k(runs):
    m = json.loads((runs[0] / "metrics.json").read_text())
    rows = m["selection"]["table"]
    assert [r["k"] for r in rows] == list(range(2, 11))
    for r in rows:
        for key in ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin"):
            assert r[key] is not None
    assert m["selection"]["reason"]


def test_report_shows_segments_and_quality(runs):
    html = (runs[0] / "report.html").read_text()
    prof = pd.read_csv(runs[0] / "profiles.csv")
    for name in prof["segment_name"]:
        assert name.replace("&", "&amp;") in html
    assert "2,365" in html or "2365" in html


def test_rerun_is_byte_identical(runs):
    first, second = runs

    def files(root: Path):
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())

    assert files(first) == files(second)
    for rel in files(first):
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_a_messy_copy_of_the_real_file_gives_the_same_counts_with_notes(real_data_path, tmp_path):
    """Lower-case headers, a renamed column, integer ids, rounded values, a junk column, semicolons."""
    raw = pd.read_csv(real_data_path)
    messy = raw.rename(columns=str.lower).rename(columns={"minimum_payments": "minimum_payment",
                                                          "cust_id": "customer_id"})
    messy["customer_id"] = raw["CUST_ID"].str[1:].astype(int)
    messy = messy.round(2)
    messy["Unnamed: 18"] = None
    path = tmp_path / "messy.csv"
    path.write_bytes(b"\xef\xbb\xbf" + messy.to_csv(index=False, sep=";").encode())
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--quiet", "--bootstrap", "5"])
    assert res.exit_code == 0, res.output
    dq = json.loads((out / "data_quality.json").read_text())
    assert dq["renamed"] == {"customer_id": "CUST_ID", "minimum_payment": "MINIMUM_PAYMENTS",
                             **{c.lower(): c for c in raw.columns if c not in ("CUST_ID", "MINIMUM_PAYMENTS")}}
    assert dq["empty_ignored"] == ["Unnamed: 18"]
    assert {"customer ids are integers", "columns are separated by semicolons"} <= set(dq["notes"])
    assert dq["missing"]["MINIMUM_PAYMENTS"] == 313
    seg = pd.read_csv(out / "segments.csv")
    assert len(seg) == 8950 and seg["customer_id"].iloc[0] == 10001
