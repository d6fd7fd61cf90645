"""Results must not move by accident: a small fixed input against its saved results.

``tests/data/golden`` holds a 500-customer portfolio and what custseg made of it; a
change that moves them must regenerate them deliberately (``make_golden.py``).
"""

import importlib.util
import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("golden") / "out"
    make_golden.run_golden(folder)
    return folder


@pytest.mark.parametrize("name", make_golden.KEPT_FILES)
def test_files_are_byte_identical_to_the_golden_copy(out, name):
    assert (out / name).read_bytes() == (GOLDEN / name).read_bytes(), (
        f"{name} changed; if deliberate, run tests/data/golden/make_golden.py and say why in the commit")


def test_k_inertia_and_unresampled_evidence_are_unchanged(out):
    expected = json.loads((GOLDEN / "expected.json").read_text())
    assert make_golden.fixed_numbers(out) == expected
