"""The plain chat page: served with a strict CSP, accessible markup, safe script."""

from __future__ import annotations

import re

import pytest
from api_fakes import Harness

from api.main import STATIC_DIR

pytestmark = pytest.mark.anyio

CSP = "default-src 'self'"


async def test_chat_page_is_served_with_the_csp(h: Harness) -> None:
    response = await h.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == (STATIC_DIR / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/chat.js", "javascript"),
        ("/static/chat.css", "text/css"),
        ("/static/index.html", "text/html"),
    ],
)
async def test_static_files_are_served_with_the_csp(
    h: Harness, path: str, content_type: str
) -> None:
    response = await h.client.get(path)

    assert response.status_code == 200
    assert content_type in response.headers["content-type"]
    assert response.headers["content-security-policy"] == CSP


async def test_unknown_static_file_is_404_json(h: Harness) -> None:
    response = await h.client.get("/static/nope.js")
    assert response.status_code == 404
    assert list(response.json()) == ["detail"]


def test_page_needs_no_inline_script_or_style() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    assert scripts, "the page loads its script"
    assert all('src="/static/' in attributes and not body.strip() for attributes, body in scripts)
    assert "<style" not in html.lower()
    assert not re.search(r"\sstyle\s*=", html, flags=re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I)  # no inline event handlers
    assert "javascript:" not in html.lower()


def test_page_is_accessible() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html
    [input_id] = re.findall(r'<input[^>]*\sid="([^"]+)"', html)
    assert f'<label for="{input_id}">' in html
    assert re.search(r'aria-live="polite"', html)
    assert re.search(r'id="error"[^>]*role="alert"', html)
    assert re.search(r'id="status"[^>]*>Sending…<', html)
    assert '<button id="send" type="submit"' in html


def test_script_renders_text_safely_and_keeps_nothing_in_the_browser() -> None:
    script = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "localStorage",
        "sessionStorage",
        "indexedDB",
        "document.cookie",
    ):
        assert forbidden not in script, forbidden
    assert "textContent" in script
    assert 'createElement("button")' in script or 'element("button"' in script
    assert "/api/v1/conversations" in script
    assert "data.detail" in script  # the error line shows the API's detail
    assert 'cache: "no-store"' in script


async def test_docs_are_served_without_the_strict_csp(h: Harness) -> None:
    response = await h.client.get("/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers


async def test_docs_load_swagger_ui_from_the_api_itself(h: Harness) -> None:
    """The docs page must work where there is no internet access: no CDN."""
    page = (await h.client.get("/docs")).text
    assert "cdn" not in page.lower()
    assert "/docs-assets/swagger-ui-bundle.js" in page
    script = await h.client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert (await h.client.get("/openapi.json")).json()["paths"]
