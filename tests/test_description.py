"""The description is typed, versioned, built from the run's parts, and reads back as it was written."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from custseg.datasets import generate
from custseg.description import (SCHEMA_VERSION, Description, SegmentDescription, StabilitySummary, describe,
                                 from_dict, to_dict)
from custseg.errors import CustsegError
from custseg.jsonio import dumps
from custseg.report import render_all
from custseg.run import RunConfig, RunResult, segment, write_outputs


@pytest.fixture(scope="module")
def result() -> RunResult:
    frame, _ = generate(600, seed=5, quirks=True)
    return segment(frame, RunConfig(k_max=6, n_init=2, n_boot=5, n_refs=2), name="synthetic portfolio")


@pytest.fixture(scope="module")
def description(result) -> Description:
    return describe(result)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory) -> Path:
    return write_outputs(result, tmp_path_factory.mktemp("run") / "out")


def read_json(folder: Path, name: str):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def segment_numbers(obj) -> list[int]:
    """Every value under a key named "segment", anywhere in parsed JSON (a number or a list of numbers)."""
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "segment":
                found += value if isinstance(value, list) else [value]
            else:
                found += segment_numbers(value)
    elif isinstance(obj, list):
        for value in obj:
            found += segment_numbers(value)
    return found


def test_round_trip_through_json(description):
    assert from_dict(to_dict(description)) == description
    assert from_dict(json.loads(dumps(to_dict(description)))) == description


def test_to_dict_is_json_ready_in_field_order(description):
    data = to_dict(description)
    assert list(data) == [f.name for f in fields(Description)]
    assert list(data)[0] == "schema_version" and data["schema_version"] == SCHEMA_VERSION
    assert list(data["segments"][0]) == [f.name for f in fields(SegmentDescription)]
    assert list(data["metrics"]["stability"]) == [f.name for f in fields(StabilitySummary)]
    assert json.loads(dumps(data)) == data


def test_describe_reads_the_runs_parts(result, description):
    model = result.model
    k = model.n_clusters_
    assert description.metrics.chosen_k == k == len(description.segments)
    assert [s.segment for s in description.segments] == list(range(1, k + 1))
    assert [s.name for s in description.segments] == [n.name for n in result.names]
    assert sum(s.size for s in description.segments) == description.training.n_customers == 600
    assert description.features == list(model.feature_names_out_)
    for seg in description.segments:
        centre = [seg.centre[f] for f in description.features]
        np.testing.assert_allclose(centre, model.cluster_centers_[seg.segment - 1], atol=1e-9)
    assert description.metrics.selection.chosen_k == model.selection_.chosen_k
    assert [r.k for r in description.metrics.selection.table] == list(model.selection_.table.index)
    assert len(description.data_quality.findings) == len(result.quality.findings)
    assert description.custseg.config["seed"] == result.config.seed


def test_segment_stability_agrees_with_metrics(result, description):
    rows = description.metrics.stability.segments
    assert [r.segment for r in rows] == [s.segment for s in description.segments]
    for row, seg in zip(rows, description.segments):
        assert (row.jaccard_mean, row.jaccard_sd, row.status) == \
               (seg.stability.jaccard_mean, seg.stability.jaccard_sd, seg.stability.status)
        # the bootstrap's rows are the segments in ascending label order
        source = result.stability.segments.iloc[seg.segment - 1]
        assert (row.status, row.jaccard_mean) == (source["status"], pytest.approx(source["jaccard_mean"]))


def test_segments_are_numbered_from_one_in_every_output(written, description):
    k = len(description.segments)
    for name in ("description.json", "metrics.json", "profiles.json"):
        numbers = segment_numbers(read_json(written, name))
        assert numbers, name
        assert set(numbers) <= set(range(1, k + 1)), name
    data = read_json(written, "description.json")
    assert [r["segment"] for r in data["metrics"]["stability"]["segments"]] == list(range(1, k + 1))
    assert read_json(written, "metrics.json") == data["metrics"]
    assert read_json(written, "data_quality.json") == data["data_quality"]
    assert read_json(written, "profiles.json") == {"segments": data["segments"], "portfolio": data["portfolio"],
                                                   "insights": data["insights"]}


def test_stored_description_renders_the_same_report(written, tmp_path):
    stored = from_dict(read_json(written, "description.json"), source="description.json")
    render_all(stored, tmp_path)
    for name in ("report.html", "report.md", *(f"figures/{p.name}" for p in (written / "figures").glob("*.png"))):
        assert (tmp_path / name).read_bytes() == (written / name).read_bytes(), name


@pytest.mark.parametrize("version", [None, 0, SCHEMA_VERSION + 1, str(SCHEMA_VERSION), True])
def test_other_schema_versions_are_refused(description, version):
    data = to_dict(description)
    if version is None:
        del data["schema_version"]
    else:
        data["schema_version"] = version
    with pytest.raises(CustsegError, match="schema version"):
        from_dict(data, source="old.json")


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["segments"][0].update(size="many"), r"description\.segments\[0\]\.size should be an integer"),
    (lambda d: d["metrics"]["selection"].update(clear_structure=1), r"clear_structure should be true or false"),
    (lambda d: d["segments"][1]["variables"]["BALANCE"].update(ratio="2x"), r"BALANCE\.ratio should be a finite"),
    (lambda d: d["metrics"].update(inertia=float("nan")), r"metrics\.inertia should be a finite number, not nan"),
    (lambda d: d["training"].update(n_customers=None), r"training\.n_customers should be an integer"),
    (lambda d: d["metrics"]["stability"].pop("thresholds"), r"metrics\.stability has missing field\(s\) thresholds"),
    (lambda d: d["segments"][0].update(color=1), r"segments\[0\] has unknown field\(s\) color"),
    (lambda d: d["segments"][0].update(colour="red"), r"segments\[0\]\.colour should be an integer"),
    (lambda d: d["segments"][0]["actions"].update(priority=None), r"actions\.priority should be an integer"),
    (lambda d: d.update(features="log_balance"), r"description\.features should be a list"),
])
def test_malformed_fields_are_named(description, change, where):
    data = to_dict(description)
    change(data)
    with pytest.raises(CustsegError, match=where) as error:
        from_dict(data, source="run/description.json")
    assert str(error.value).startswith("run/description.json: ")


def test_optional_parts_may_be_null(description):
    data = to_dict(description)
    data["projection"] = None
    data["metrics"]["selection"]["auto_k"] = None
    data["segments"][0]["stability"]["jaccard_mean"] = None
    d = from_dict(data)
    assert d.projection is None and d.metrics.selection.auto_k is None
    assert d.segments[0].stability.jaccard_mean is None
    assert to_dict(d) == data


def test_not_an_object_is_refused():
    with pytest.raises(CustsegError, match="not a JSON object"):
        from_dict([1, 2, 3], source="list.json")


# --------------------------------------------------------------------------- insights re-derived from the files

def test_executive_summary_rows_match_the_segments(written):
    data = read_json(written, "profiles.json")
    segs = {s["segment"]: s for s in data["segments"]}
    rows = data["insights"]["executive_summary"]["rows"]
    assert [r["segment"] for r in rows] == sorted(segs)
    for r in rows:
        s = segs[r["segment"]]
        assert (r["name"], r["size"], r["stability"]) == (s["name"], s["size"], s["stability"]["status"])
        assert r["share"] == pytest.approx(s["share"])
        assert r["jaccard"] == pytest.approx(s["stability"]["jaccard_mean"])
        assert r["value_share"] == pytest.approx(s["value"]["value_share"])
        assert r["top_action"] == s["actions"]["actions"][0]["action"]
        assert r["priority"] == s["actions"]["priority"]
        assert r["risk"] == s["risk_summary"]
    assert sorted(r["priority"] for r in rows) == list(range(1, len(rows) + 1))
    assert sum(s["value"]["value_share"] for s in segs.values()) == pytest.approx(1.0)


def test_executive_paragraph_says_what_the_data_say(written):
    data = read_json(written, "description.json")
    segs = data["segments"]
    text = data["insights"]["executive_summary"]["paragraph"]
    n = data["training"]["n_customers"]
    assert text.startswith(f"The {n:,} customers form {len(segs)} segments")
    for status in ("stable", "weak", "unstable"):
        count = sum(s["stability"]["status"] == status for s in segs)
        assert (f"{count} {status}" in text) == bool(count)
    largest = sorted(segs, key=lambda s: (-s["size"], s["segment"]))[:3]
    assert "The largest are " + ", ".join(f"{s['name']} ({s['share']:.0%})" for s in largest) + "." in text
    first = min(segs, key=lambda s: s["actions"]["priority"])
    assert (f"Target first: {first['name']} (segment {first['segment']}, {first['size']:,} customers, "
            f"{first['value']['value_share']:.0%} of the estimated revenue, {first['stability']['status']})") in text
    assert first["actions"]["actions"][0]["why"] in text


def test_concentration_and_totals_add_up_from_the_segments(written):
    data = read_json(written, "description.json")
    segs, ins = data["segments"], data["insights"]
    for key in ("interest", "interchange", "cash_advance_fees", "total"):
        assert ins["value_total"][key] == pytest.approx(sum(s["value"]["total"][key] for s in segs))
    over = next(c for c in ins["concentration"] if c["signal"] == "over-limit accounts")
    counts = {s["segment"]: s["risk"]["n_over_limit"] for s in segs}
    assert over["total"] == sum(counts.values())
    assert over["count"] == counts[over["segment"]] == max(counts.values())
    assert over["sentence"].startswith(f"{over['count']} of the {over['total']} over-limit accounts")
    assert f"Main risk: {over['sentence']}" in ins["executive_summary"]["paragraph"]
    assert 0 < ins["rules"]["fidelity"] <= 1
    assert ins["rules"]["fidelity"] == pytest.approx(
        sum(s["fidelity"] * s["size"] for s in segs) / sum(s["size"] for s in segs), abs=1e-6)


def test_segments_summary_csv_matches_profiles_json(written):
    import pandas as pd

    table = pd.read_csv(written / "segments_summary.csv")
    segs = read_json(written, "profiles.json")["segments"]
    assert list(table["segment"]) == [s["segment"] for s in segs]
    assert list(table["segment_name"]) == [s["name"] for s in segs]
    assert table["value_share"].to_numpy() == pytest.approx([s["value"]["value_share"] for s in segs], rel=1e-5)
    assert list(table["rule"]) == [s["rule"] for s in segs]
    assert table["rule_fidelity"].to_numpy() == pytest.approx([s["fidelity"] for s in segs], rel=1e-5)
    profiles = pd.read_csv(written / "profiles.csv")
    assert list(profiles["top_action"]) == list(table["top_action"])


def test_replicates_give_the_mean_and_colours_default_to_the_number(description):
    for row, seg in zip(description.metrics.stability.segments, description.segments):
        assert len(row.replicates) == description.metrics.stability.n_boot
        assert np.nanmean(np.array(row.replicates, dtype=float)) == pytest.approx(row.jaccard_mean)
        assert seg.colour == seg.segment - 1


def test_choice_stability_matches_the_selection_and_reads_in_the_report(result, description):
    from custseg.report.html import _drilldown
    from custseg.stability import HIGHLY_STABLE, STABLE

    selection = result.model.selection_
    choice = description.choice
    assert [r.k for r in choice.per_k] == sorted(selection.evidence.stability)
    for row in choice.per_k:
        stab = selection.evidence.stability[row.k]
        assert row.jaccard == pytest.approx(stab.segments["jaccard_mean"].tolist())
        assert row.all_stable == all(j >= STABLE for j in row.jaccard)
        assert row.jaccard_lower == pytest.approx(stab.segments["jaccard_lower"].tolist())
        assert row.n_boot == stab.n_boot
        assert row.highly_stable == (row.n_boot >= selection.evidence.confirm_boot
                                     and all(j >= HIGHLY_STABLE for j in row.jaccard_lower))
    assert choice.stable_ks == [r.k for r in choice.per_k if r.all_stable]
    assert choice.highly_stable_ks == [r.k for r in choice.per_k if r.highly_stable]
    assert sorted(d.segment for d in choice.drilldown) == [s.segment for s in description.segments]
    for d in choice.drilldown:
        text = _drilldown(description, d.segment)
        if d.k is None:
            assert text.startswith("No stable split")
        else:
            assert sum(d.sizes) == d.n_customers and len(d.sizes) == d.k
            assert f"into {d.k} sub-segments" in text


def test_tsne_map_is_optional_and_drawn_when_asked():
    from custseg.datasets import generate
    from custseg.description import from_dict, to_dict
    from custseg.report.figures import make_figures
    from custseg.run import segment
    from custseg.settings import Settings

    frame, _ = generate(400, seed=3)
    result = segment(frame, Settings(k=3, tsne=True, n_boot=3, n_init=2, n_refs=2))
    described = describe(result)
    nmap = described.neighbours
    assert nmap.sample_size == len(nmap.x) == len(nmap.y) == len(nmap.segment) == 400
    assert set(nmap.segment) == {s.segment for s in described.segments}
    assert from_dict(to_dict(described)) == described
    assert "tsne" in make_figures(described, ["tsne"])
    assert describe(segment(frame, Settings(k=3, n_boot=3, n_init=2, n_refs=2))).neighbours is None
