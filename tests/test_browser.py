"""The real file's report.html in a real browser (headless Chromium): every image loads, no console
errors, no request leaves the file, every section is there; a screenshot of each section is saved.

Driven through the Chrome DevTools protocol by Playwright's Python client, with Debian's
``chromium`` (Playwright's own browser download is not used). Outside CI the test skips when
Chromium or Playwright is absent; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import needed_in_ci

SECTIONS = ("summary", "segments", "evidence", "data", "methods")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = os.environ.get("CUSTSEG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        needed_in_ci("Chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        needed_in_ci("Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


def test_real_report_in_a_browser(browser, real_run, tmp_path):
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    report = (real_run / "report.html").resolve()
    page.goto(report.as_uri(), wait_until="load")

    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
    figures = sorted((real_run / "figures").glob("*.png"))
    assert len(images) == len(figures) >= 13
    assert [alt for alt, ok in images if not ok] == []
    assert errors == []
    external = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert external == []
    shots = Path(os.environ.get("CUSTSEG_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        element = page.locator(f"section#{section}")
        assert element.count() == 1, section
        assert element.locator("h2").inner_text().strip()
        element.screenshot(path=str(shots / f"report-{section}.png"))
    page.screenshot(path=str(shots / "report.png"), full_page=True)
    assert (shots / "report-summary.png").stat().st_size > 10_000
