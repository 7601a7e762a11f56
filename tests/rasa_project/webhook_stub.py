"""A real HTTP server on loopback standing in for an action server's ``POST /webhook``."""

from __future__ import annotations

from typing import Awaitable, Callable, Tuple

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.Response]]


async def serve_webhook(webhook: Handler) -> Tuple[web.AppRunner, str]:
    """Serve ``webhook`` on a free port: (the runner, to clean up; the webhook's URL)."""
    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/webhook"
