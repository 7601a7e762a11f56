"""The API's edge: whose X-Forwarded-* count (MESO_TRUSTED_PROXIES), HSTS when the public
URL is https, and the API documentation only with MESO_API_DOCS."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.proxies import TrustedProxies
from api.settings import Settings

pytestmark = pytest.mark.anyio

PEER = "203.0.113.7"
"""The address every request of the test harness comes from (api_fakes.running_app)."""
CLIENT = "198.51.100.20"


# --- MESO_TRUSTED_PROXIES ------------------------------------------------------------------


def echo_app(trusted: list[str]) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        client = request.client.host if request.client else None
        return JSONResponse({"client": client, "scheme": request.url.scheme})

    app = Starlette(routes=[Route("/", echo)])
    app.state.runtime = SimpleNamespace(settings=Settings(trusted_proxies=trusted))
    app.add_middleware(TrustedProxies)
    return app


async def seen(trusted: list[str], headers: dict[str, str], peer: str = PEER) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=echo_app(trusted), client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return dict((await client.get("/", headers=headers)).json())


FORWARDED = {"x-forwarded-for": CLIENT, "x-forwarded-proto": "https"}


async def test_by_default_no_forwarded_header_counts() -> None:
    assert await seen([], FORWARDED) == {"client": PEER, "scheme": "http"}


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    assert await seen(["10.0.0.0/8", "127.0.0.1"], FORWARDED) == {"client": PEER, "scheme": "http"}


@pytest.mark.parametrize("trusted", [[PEER], ["203.0.113.0/24"], ["10.0.0.1", "203.0.113.0/28"]])
async def test_forwarded_headers_from_a_trusted_proxy_are_used(trusted: list[str]) -> None:
    assert await seen(trusted, FORWARDED) == {"client": CLIENT, "scheme": "https"}


async def test_what_the_client_wrote_itself_is_not_believed() -> None:
    """nginx appends the peer it saw: the left part is the client's own, possibly forged."""
    headers = {"x-forwarded-for": f"1.2.3.4, {CLIENT}"}
    assert (await seen([PEER], headers))["client"] == CLIENT


async def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    headers = {"x-forwarded-for": f"1.2.3.4, {CLIENT}, 10.0.0.9", "x-forwarded-proto": "http, https"}
    assert await seen([PEER, "10.0.0.0/8"], headers) == {"client": CLIENT, "scheme": "https"}


async def test_an_unusable_forwarded_value_keeps_the_peer() -> None:
    headers = {"x-forwarded-for": "not-an-address", "x-forwarded-proto": "gopher"}
    assert await seen([PEER], headers) == {"client": PEER, "scheme": "http"}


async def test_ipv6_proxies_and_mapped_addresses() -> None:
    assert (await seen(["::1"], FORWARDED, peer="::1"))["client"] == CLIENT
    assert (await seen([PEER], FORWARDED, peer=f"::ffff:{PEER}"))["client"] == CLIENT


async def test_the_rate_limit_counts_the_forwarded_client_only_behind_a_trusted_proxy(
    start: Callable[..., Any],
) -> None:
    """New conversations are limited per client address (one a minute here)."""

    async def statuses(**settings: Any) -> list[int]:
        async with start(rate_limit_conversations_per_minute=1, **settings) as h:
            return [
                (await h.client.post("/api/v1/conversations", headers={"x-forwarded-for": ip},
                                     json={"consent": True})).status_code
                for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.2")
            ]

    # Untrusted: all three come from the harness's one address; trusted: two clients.
    assert await statuses() == [201, 429, 429]
    assert await statuses(trusted_proxies=[PEER]) == [201, 201, 429]


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("MESO_TRUSTED_PROXIES", " 10.0.0.5, 10.1.0.0/16 ,::1,192.168.1.7/24")
    assert Settings().trusted_proxies == ["10.0.0.5/32", "10.1.0.0/16", "::1/128", "192.168.1.0/24"]
    monkeypatch.setenv("MESO_TRUSTED_PROXIES", "10.0.0.5, *")
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings()


# --- HSTS when the public URL is https -----------------------------------------------------

HSTS = "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("path", ["/", "/api/v1/widget/config", "/healthz", "/no-such-page"])
async def test_hsts_when_the_public_url_is_https(start: Callable[..., Any], path: str) -> None:
    async with start(public_url="https://assistant.example-clinic.test") as h:
        response = await h.client.get(path)
    assert response.headers["strict-transport-security"] == HSTS


@pytest.mark.parametrize("public_url", ["", "http://127.0.0.1:8000"])
async def test_no_hsts_without_an_https_public_url(start: Callable[..., Any], public_url: str) -> None:
    async with start(public_url=public_url) as h:
        response = await h.client.get("/")
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers


def test_the_public_url_must_be_a_url() -> None:
    assert Settings(public_url="https://a.example/").hsts
    assert not Settings().hsts
    with pytest.raises(ValidationError):
        Settings(public_url="assistant.example.com")


# --- /docs, /redoc, /openapi.json only with MESO_API_DOCS ----------------------------------

DOCS = ["/docs", "/openapi.json", "/docs-assets/swagger-ui.css", "/redoc"]


@pytest.mark.parametrize("path", DOCS)
async def test_no_api_documentation_by_default(start: Callable[..., Any], path: str) -> None:
    async with start() as h:
        response = await h.client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_documentation_with_the_setting_on(start: Callable[..., Any]) -> None:
    async with start(api_docs=True) as h:
        assert (await h.client.get("/docs")).status_code == 200
        assert (await h.client.get("/openapi.json")).json()["paths"]
        assert (await h.client.get("/docs-assets/swagger-ui.css")).status_code == 200
        # ReDoc would load its script from a CDN: never served.
        assert (await h.client.get("/redoc")).status_code == 404


def test_the_documentation_setting_is_off_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().api_docs is False
    monkeypatch.setenv("MESO_API_DOCS", "true")
    assert Settings().api_docs is True
