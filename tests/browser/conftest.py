"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Every page opened through ``page`` records console errors, page errors and any request that
leaves 127.0.0.1 (such requests are aborted, as they would fail on an offline intranet).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class PageLog:
    """What a page did that a test must look at."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One Chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[tuple[object, PageLog]]:
    """A fresh page and its log of errors and outside requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    pg = context.new_page()
    log = PageLog()

    def on_route(route) -> None:  # type: ignore[no-untyped-def]
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            log.outside_requests.append(route.request.url)
            route.abort()

    pg.route("**/*", on_route)
    pg.on("console", lambda msg: msg.type == "error" and log.console_errors.append(msg.text))
    pg.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    pg.on("requestfailed", lambda req: log.failed_requests.append(req.url))
    yield pg, log
    context.close()


def screenshot(pg, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot under var/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path
