"""The widget in a real browser: Debian's Chromium driven by Playwright, against the real stack.

One stack (action server, Rasa with the trained model, API) serves the whole folder; each test
gets a fresh browser context (its own session storage). A second origin serves a "foreign"
clinic page for the cross-origin tests. Every request the page makes is recorded, so a test can
check that nothing went to another host. Screenshots land in ``results/widget/screenshots``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from ops.services import Services
from ops.stack import free_port, private_services

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "results" / "widget" / "screenshots"
HOST_PAGES = Path(__file__).resolve().parent / "host_pages"
CHROMIUM = os.environ.get("MESO_CHROMIUM", "/usr/bin/chromium")
AXE = Path(os.environ.get("MESO_AXE", ROOT / "node_modules" / "axe-core" / "axe.min.js"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""The machine's network is closed: without the background-networking flags Chromium keeps
trying to reach Google's hosts."""


@dataclass
class Site:
    """Where things are: the API (which also serves the demo pages) and the foreign host page."""

    api: str
    host: str
    services: Services

    @property
    def var_dir(self) -> Path:
        return Path(self.services.env["MESO_VAR_DIR"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        # The foreign clinic page runs under a strict policy that allows only the API's origin.
        api = getattr(self.server, "api_origin", "")
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'self' {api}; style-src 'self' {api}; "
            f"connect-src 'self' {api}; img-src 'self' data:; frame-ancestors 'none'",
        )
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    host_port = free_port()
    host = f"http://127.0.0.1:{host_port}"
    with private_services(
        MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0",
        MESO_RATE_LIMIT_MESSAGES_PER_MINUTE="0",
        # The limit itself is unit-tested; several browser tests log in within a minute.
        MESO_LOGIN_ATTEMPTS_PER_MINUTE="0",
        MESO_WIDGET_ORIGINS=host,
    ) as services:
        api = services.env["MESO_API_URL"]
        pages = Path(tempfile.mkdtemp(prefix="meso-host-"))
        for template in HOST_PAGES.iterdir():
            text = template.read_text(encoding="utf-8").replace("{{API}}", api)
            (pages / template.name).write_text(text, encoding="utf-8")
        handler = functools.partial(_QuietHandler, directory=str(pages))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", host_port), handler)
        server.api_origin = api  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Site(api=api, host=host, services=services)
        finally:
            server.shutdown()
            server.server_close()
            shutil.rmtree(pages, ignore_errors=True)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Traffic:
    """Every request a page made, and every CSP violation and page error it reported."""

    urls: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {urlsplit(url).netloc for url in self.urls if urlsplit(url).scheme in ("http", "https")}

    def posts(self, path_part: str) -> list[str]:
        return [url for url in self.urls if url.startswith("POST ") and path_part in url]


CSP_WATCH = """
window.addEventListener('securitypolicyviolation', (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(e.violatedDirective + ' ' + e.blockedURI);
}, true);
"""
"""Added before any page script runs (Playwright injects it outside the page's CSP)."""


def open_context(browser: Browser, traffic: Traffic, **options: object) -> BrowserContext:
    context = browser.new_context(**options)  # type: ignore[arg-type]
    context.add_init_script(CSP_WATCH)

    def on_request(request: object) -> None:
        method = getattr(request, "method")
        url = getattr(request, "url")
        traffic.urls.append(url if method == "GET" else f"{method} {url}")

    context.on("request", on_request)
    return context


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def context(browser: Browser, traffic: Traffic) -> Iterator[BrowserContext]:
    context = open_context(browser, traffic, viewport={"width": 1280, "height": 860})
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext, traffic: Traffic) -> Iterator[Page]:
    page = context.new_page()
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))
    page.set_default_timeout(20_000)
    yield page
    # Whatever the test did: no script error, no blocked resource, no other host.
    assert traffic.page_errors == []
    if not page.is_closed():
        assert page.evaluate("window.__cspViolations || []") == []


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot for people to look at; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
