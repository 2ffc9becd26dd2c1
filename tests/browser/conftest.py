"""A real browser for the tests: Debian's chromium, driven by Playwright's sync API.

- ``chromium_path`` (session) finds the chromium binary (``QARION_TEST_CHROMIUM``, else
  ``chromium`` on PATH, else ``/usr/bin/chromium``); it skips when there is none, and
  fails under ``CI=true``. ``make test`` installs it (``.ci/browser``); never run
  ``playwright install``: it downloads a browser of its own.
- ``browser`` (session): one chromium for the whole session.
- ``browser_page`` gives each test a page in a fresh browser context of it (its own
  cookies and storage), wrapped in :class:`BrowserPage`: the Playwright ``Page``, every
  request URL the page made, every console message, and ``shot(name)`` for
  screenshots. ``new_page(width=…, dark=…)`` opens more pages the same way. Everything
  is closed at teardown.
- Screenshots go to ``tests/artifacts/screenshots/`` (ignored by git), so a run leaves
  the pictures of every page to look at.
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
    from collections.abc import Callable

    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request

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
#: Where the tests leave their screenshots.
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


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


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    """One chromium for the session (each test gets its own context of it)."""
    browser = playwright.chromium.launch(
        executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class BrowserPage:
    """A page in a fresh browser context, with the URLs it requested and a screenshot helper."""

    page: Page
    #: Every request URL the page made, in order (the file:// document included).
    requests: list[str]
    screenshots_dir: Path
    shots: list[Path] = field(default_factory=list)
    #: Every console message (``type: text``), CSP violations included.
    console: list[str] = field(default_factory=list)

    def external_requests(self) -> list[str]:
        """The requests that were not for a ``file://`` URL."""
        return [url for url in self.requests if not url.startswith("file://")]

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a PNG screenshot ``<name>.png`` into ``screenshots_dir``; returns its path."""
        path = self.screenshots_dir / f"{name.removesuffix('.png')}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., BrowserPage]]:
    """Opens pages, each in a fresh context: ``new_page(width=1280, dark=False)``."""
    contexts = []

    def make(width: int = 1280, dark: bool = False) -> BrowserPage:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme="dark" if dark else "light",
        )
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        requests: list[str] = []
        console: list[str] = []

        def seen(request: Request) -> None:
            requests.append(request.url)

        def said(message: ConsoleMessage) -> None:
            console.append(f"{message.type}: {message.text}")

        page.on("request", seen)
        page.on("console", said)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return BrowserPage(page, requests, SCREENSHOTS, console=console)

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def browser_page(new_page: Callable[..., BrowserPage]) -> BrowserPage:
    """A page at 1280 px in a fresh context of the session's chromium."""
    return new_page()
