"""The browser rig itself: a real chromium opens a local page, clicks, is screenshotted,
and its request counter sees a request for an external script."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, BrowserPage

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>smoke</title></head>
<body>
  <svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" role="img" aria-label="bars">
    <rect x="0" y="10" width="80" height="20" fill="steelblue"/>
  </svg>
  <button id="reveal" type="button">Show details</button>
  <pre id="details" hidden>rows: 42</pre>
  <script>
    document.getElementById("reveal").addEventListener("click", () => {
      document.getElementById("details").hidden = false;
    });
  </script>
</body>
</html>
"""


def test_local_page_clicks_and_makes_no_network_requests(
    browser_page: BrowserPage, tmp_path: Path
) -> None:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    page = browser_page.page

    page.goto(html.as_uri())
    details = page.locator("#details")
    expect(details).to_be_hidden()
    expect(page.locator("svg rect")).to_have_count(1)
    page.click("#reveal")
    expect(details).to_be_visible()
    expect(details).to_have_text("rows: 42")

    assert browser_page.requests == [html.as_uri()]
    assert browser_page.external_requests() == []

    png = browser_page.shot("smoke")
    assert png.parent == SCREENSHOTS
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 100


def test_request_counter_sees_an_external_script(browser_page: BrowserPage, tmp_path: Path) -> None:
    html = tmp_path / "external.html"
    html.write_text(
        '<!doctype html><html><head><script src="https://example.invalid/x.js"></script>'
        "</head><body><p>external</p></body></html>",
        encoding="utf-8",
    )
    browser_page.page.goto(html.as_uri())

    assert browser_page.external_requests() == ["https://example.invalid/x.js"]
