"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API.

Every page opened through the ``page`` fixture records console errors, page errors, local
responses with an error status, and every request that leaves 127.0.0.1/localhost: such a
request is aborted (it would fail on an offline intranet) and recorded. Playwright's own
browser download is never used (``playwright install`` is not run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response, Route

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "screenshots"  # git-ignored
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOCAL_SCHEMES = ("data:", "blob:", "about:")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PageLog:
    """What a page did that a test must look at (all lists empty for a healthy page)."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, list[str]]:
        """The non-empty lists, by name (failed requests that were outside ones left out)."""
        failed = [u for u in self.failed_requests if u not in self.outside_requests]
        found = {
            "console_errors": self.console_errors,
            "page_errors": self.page_errors,
            "outside_requests": self.outside_requests,
            "failed_requests": failed,
            "bad_responses": self.bad_responses,
        }
        return {k: v for k, v in found.items() if v}


def is_local(url: str) -> bool:
    """True for URLs served by this machine (or needing no network at all)."""
    if url.startswith(LOCAL_SCHEMES):
        return True
    return (urlparse(url).hostname or "") in LOCAL_HOSTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (set-up does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, admin_token: str) -> Iterator[tuple[Page, PageLog]]:
    """A fresh page (own context, 1280x860, zh-CN) signed in as the test admin (the page
    cookie), and the log of what went wrong on it."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    context.add_cookies(
        [{"name": "wangge_token", "value": admin_token, "domain": "127.0.0.1", "path": "/"}]
    )
    record = PageLog()

    def on_route(route: Route) -> None:
        url = route.request.url
        if is_local(url):
            route.continue_()
        else:
            record.outside_requests.append(url)
            route.abort("blockedbyclient")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            record.bad_responses.append(f"{response.status} {response.url}")

    def on_failed(request: Request) -> None:
        record.failed_requests.append(request.url)

    context.route("**/*", on_route)
    pg = context.new_page()
    pg.on("console", lambda msg: msg.type == "error" and record.console_errors.append(msg.text))
    pg.on("pageerror", lambda exc: record.page_errors.append(str(exc)))
    pg.on("response", on_response)
    pg.on("requestfailed", on_failed)
    try:
        yield pg, record
    finally:
        context.close()


def screenshot(pg: Page, name: str) -> Path:
    """Save a screenshot of the page as ``var/screenshots/<name>.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    log.info("screenshot %s", path)
    return path
