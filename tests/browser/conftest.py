"""A real browser for the tests: Debian's chromium, driven by Playwright's sync API.

- ``chromium_path`` (session) finds the chromium binary (``QARION_TEST_CHROMIUM``, else
  ``chromium`` on PATH, else ``/usr/bin/chromium``); it skips when there is none, and
  fails under ``CI=true``. ``make test`` installs it (``.ci/browser``); never run
  ``playwright install``: it downloads a browser of its own.
- ``browser_page`` gives each test a chromium with a fresh profile in its ``tmp_path``,
  wrapped in :class:`BrowserPage`: the Playwright ``Page``, every request URL the page
  made, and ``shot(name)`` for screenshots. Everything is closed at teardown.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import IN_CI

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright, Request

#: Root may not use chromium's sandbox; nothing may phone home or sync.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Playwright's default is 30 s; a local page that takes longer is a failure.
TIMEOUT_MS = 10_000


def _missing(msg: str) -> None:
    if IN_CI:
        pytest.fail(f"{msg} (CI=true: a missing browser is a failure)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The path of Debian's chromium binary."""
    candidates = [os.environ.get("QARION_TEST_CHROMIUM"), shutil.which("chromium")]
    candidates.append("/usr/bin/chromium")
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    _missing("chromium is not installed (as root: apt-get install chromium, or make browser)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, started once per session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        _missing("playwright is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as p:
        yield p


@dataclass
class BrowserPage:
    """A page in a fresh chromium, with the URLs it requested and a screenshot helper."""

    page: Page
    #: Every request URL the page made, in order (the file:// document included).
    requests: list[str]
    screenshots_dir: Path
    shots: list[Path] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        """The requests that were not for a ``file://`` URL."""
        return [url for url in self.requests if not url.startswith("file://")]

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a PNG screenshot ``<name>.png`` into ``screenshots_dir``; returns its path."""
        path = self.screenshots_dir / f"{name.removesuffix('.png')}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path


@pytest.fixture
def browser_page(
    playwright: Playwright, chromium_path: str, tmp_path: Path
) -> Iterator[BrowserPage]:
    """A page in a chromium with its own fresh profile (``tmp_path/chromium-profile``)."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=chromium_path,
        headless=True,
        args=CHROMIUM_ARGS,
    )
    try:
        context.set_default_timeout(TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        requests: list[str] = []

        def seen(request: Request) -> None:
            requests.append(request.url)

        page.on("request", seen)
        screenshots = tmp_path / "screenshots"
        screenshots.mkdir()
        yield BrowserPage(page, requests, screenshots)
    finally:
        context.close()
