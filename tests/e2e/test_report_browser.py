"""The HTML monitoring report in a real headless Chromium, with the network shut off.

Needs Debian's chromium at /usr/bin/chromium (`make test` installs it). Without it the tests skip
locally and fail in CI, where a skipped browser test would hide a broken offline report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, sync_playwright

from shipyard.monitoring.report import MonitoringReport
from shipyard.reporting import render_html
from tests.report_samples import bare_report, full_report

CHROMIUM = Path("/usr/bin/chromium")
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"browser tests need Debian's chromium at {CHROMIUM}; `make test` installs it"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


class OfflinePage:
    """A page that may load only the one report file; every other request is aborted and recorded."""

    def __init__(self, browser: Browser, path: Path, *, width: int = 1280) -> None:
        self.url = path.as_uri()
        self.page: Page = browser.new_page(viewport={"width": width, "height": 900})
        self.blocked: list[str] = []
        self.requested: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self) -> Page:
        self.page.goto(self.url, wait_until="load")
        return self.page


def _write(tmp_path: Path, report: MonitoringReport, name: str = "report.html") -> Path:
    path = tmp_path / name
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_report_renders_offline_with_plots_and_drifted_feature_first(browser: Browser, tmp_path: Path) -> None:
    offline = OfflinePage(browser, _write(tmp_path, full_report(extra_feature=XSS)))
    page = offline.open()

    assert page.title() == "Shipyard monitoring report: fraud"
    plots = page.locator("svg[role=img]")
    assert plots.count() >= 10
    for i in range(plots.count()):
        box = plots.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 100
    drift_chart = "Worst feature's drift per window (1 = at its threshold)"
    for name in ("Reliability curve (ECE 0.03)", "Performance per window", drift_chart):
        assert page.get_by_role("img", name=name).first.is_visible()

    first_row = page.locator("#drift table.drift-table tbody tr").first
    assert first_row.locator("th").inner_text() == "tenure_months"
    assert "DRIFT" in first_row.inner_text()
    # The hostile feature name shows as text and runs nothing.
    assert page.get_by_text(XSS, exact=True).count() >= 1
    assert offline.dialogs == []

    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert offline.blocked == []
    assert offline.requested == [offline.url]


def test_bare_report_renders_offline_and_fits_a_phone(browser: Browser, tmp_path: Path) -> None:
    offline = OfflinePage(browser, _write(tmp_path, bare_report()), width=390)
    page = offline.open()

    assert page.title() == "Shipyard monitoring report: fresh"
    assert "No labels yet" in page.locator("#performance").inner_text()
    assert "no reference profile" in page.locator("#drift").inner_text()
    # Wide tables scroll inside their box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "bare.png"), full_page=True)
    assert offline.blocked == []
    assert offline.requested == [offline.url]


def test_full_report_fits_a_phone(browser: Browser, tmp_path: Path) -> None:
    offline = OfflinePage(browser, _write(tmp_path, full_report()), width=390)
    page = offline.open()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.locator("#distributions svg").first.bounding_box()
    assert box is not None
    assert box["width"] <= 390


def test_the_offline_page_catches_any_request_beyond_the_file(browser: Browser, tmp_path: Path) -> None:
    """Guards the guard: without this, `blocked == []` above could pass because nothing was watched."""
    path = tmp_path / "leaky.html"
    path.write_text('<!DOCTYPE html><title>leaky</title><img src="https://example.invalid/pixel.png">')
    offline = OfflinePage(browser, path)
    offline.open()
    assert offline.blocked == ["https://example.invalid/pixel.png"]
