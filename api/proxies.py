"""Whose X-Forwarded-For and X-Forwarded-Proto count: ``MESO_TRUSTED_PROXIES``, nobody else's.

:class:`TrustedProxies` is pure ASGI middleware inside the app, so the rule holds however the
app is served (one uvicorn process, ``uvicorn --workers N``, another ASGI server). Run
uvicorn with ``--no-proxy-headers`` (``ops/services.py`` does) so that uvicorn's own
implicit trust of 127.0.0.1 does not rewrite the client address first.

A request whose direct peer is a trusted proxy gets, as its client address (``request.client``,
which the rate limits key on), the nearest address in X-Forwarded-For that is not itself a
trusted proxy (read from the right: the left part is whatever the client sent), and as its
scheme the last X-Forwarded-Proto (``http`` or ``https``). From any other peer both headers
are ignored.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:  # api.deps imports the metrics, which import this module
    from api.deps import Runtime

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PROXIED = "meso.proxied"
"""Scope key, True on a request whose direct peer is a trusted proxy (the layers inside may
then believe what else it says, such as its ``X-Request-ID``)."""


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class Trust:
    """A set of trusted proxy networks."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )

    def trusts(self, host: str | None) -> bool:
        address = _address(host) if host else None
        return address is not None and any(address in network for network in self.networks)

    def client(self, forwarded_for: list[str]) -> str | None:
        """The client address from X-Forwarded-For entries (right is nearest), or None.

        Trusted proxies are skipped from the right; the first other entry is the client.
        None when that entry is not an IP address (nothing usable): the peer is kept.
        When every entry is a trusted proxy, the leftmost is the client.
        """
        entries = [entry.strip() for entry in forwarded_for if entry.strip()]
        for entry in reversed(entries):
            if not self.trusts(entry):
                address = _address(entry)
                return str(address) if address is not None else None
        return str(_address(entries[0])) if entries else None


def _header_values(scope: Scope, name: bytes) -> list[str]:
    """Every comma-separated value of every ``name`` header, in order."""
    values: list[str] = []
    for key, value in scope.get("headers", []):
        if key == name:
            values.extend(value.decode("latin-1").split(","))
    return values


class TrustedProxies:
    """Apply X-Forwarded-For / -Proto from trusted proxies only (``settings.trusted_proxies``).

    The settings are read from the running app (its lifespan makes them); before that, and
    with no proxies configured, requests pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._trust: tuple[tuple[str, ...], Trust] | None = None

    def _trust_for(self, networks: tuple[str, ...]) -> Trust:
        if self._trust is None or self._trust[0] != networks:
            self._trust = (networks, Trust(networks))
        return self._trust[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime | None = (
            getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        )
        if (
            scope["type"] not in {"http", "websocket"}
            or runtime is None
            or not runtime.settings.trusted_proxies
        ):
            await self.app(scope, receive, send)
            return
        trust = self._trust_for(tuple(runtime.settings.trusted_proxies))
        peer = scope.get("client")
        if peer and trust.trusts(peer[0]):
            # In place, as Starlette's router adds the route: the layers outside (the
            # metrics) read what the layers inside found.
            scope[PROXIED] = True
            client = trust.client(_header_values(scope, b"x-forwarded-for"))
            if client is not None:
                scope["client"] = (client, 0)
            protos = [p.strip().lower() for p in _header_values(scope, b"x-forwarded-proto")]
            if protos and protos[-1] in {"http", "https"}:
                proto = protos[-1]
                if scope["type"] == "websocket":
                    proto = "wss" if proto == "https" else "ws"
                scope["scheme"] = proto
        await self.app(scope, receive, send)
