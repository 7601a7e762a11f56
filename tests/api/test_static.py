"""The widget's files and the demo clinic site: served with a strict CSP, no inline script or
style anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_fakes import Harness

from api.main import DEMO_DIR, STATIC_DIR, WIDGET_DIR

pytestmark = pytest.mark.anyio

CSP = "default-src 'self'"
DEMO_PAGES = sorted(DEMO_DIR.glob("*.html"))


async def test_the_demo_home_page_is_served_at_the_root_with_the_csp(h: Harness) -> None:
    response = await h.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == (DEMO_DIR / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/widget/widget.js", "javascript"),
        ("/widget/widget.css", "text/css"),
        ("/demo/treatments.html", "text/html"),
        ("/demo/index.html", "text/html"),
        ("/demo/", "text/html"),
        ("/static/summary.css", "text/css"),
    ],
)
async def test_widget_and_demo_files_are_served_with_the_csp(
    h: Harness, path: str, content_type: str
) -> None:
    response = await h.client.get(path)

    assert response.status_code == 200
    assert content_type in response.headers["content-type"]
    assert response.headers["content-security-policy"] == CSP


@pytest.mark.parametrize("path", ["/widget/nope.js", "/demo/nope.html", "/static/chat.js"])
async def test_unknown_files_are_404_json(h: Harness, path: str) -> None:
    response = await h.client.get(path)
    assert response.status_code == 404
    assert list(response.json()) == ["detail"]


def test_there_are_demo_pages_and_widget_files() -> None:
    assert {p.name for p in DEMO_PAGES} >= {"index.html", "treatments.html"}
    assert {p.name for p in WIDGET_DIR.iterdir()} >= {"widget.js", "widget.css"}
    assert not (STATIC_DIR / "index.html").exists(), "the old chat page is gone"


@pytest.mark.parametrize("page", DEMO_PAGES, ids=[p.name for p in DEMO_PAGES])
def test_demo_pages_need_no_inline_script_or_style(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    assert scripts, "the page embeds the widget"
    assert all(re.search(r'\ssrc="[^"]+"', attrs) and not body.strip() for attrs, body in scripts)
    assert any('src="/widget/widget.js"' in attrs for attrs, _ in scripts)
    assert "<style" not in html.lower()
    assert not re.search(r"\sstyle\s*=", html, flags=re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I)  # no inline event handlers
    assert "javascript:" not in html.lower()
    assert '<html lang="en">' in html


async def test_docs_are_served_without_the_strict_csp(start: Callable[..., Any]) -> None:
    async with start(api_docs=True) as h:
        response = await h.client.get("/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers


async def test_docs_load_swagger_ui_from_the_api_itself(start: Callable[..., Any]) -> None:
    """The docs page must work where there is no internet access: no CDN."""
    async with start(api_docs=True) as h:
        page = (await h.client.get("/docs")).text
        assert "cdn" not in page.lower()
        assert "/docs-assets/swagger-ui-bundle.js" in page
        script = await h.client.get("/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        assert (await h.client.get("/openapi.json")).json()["paths"]
