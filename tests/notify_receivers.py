"""Where staff notifications land in tests: a real local SMTP server (aiosmtpd) and a real
local HTTP server taking webhook POSTs. Used by the API's tests and the integration tests
(named uniquely, not ``conftest``, so either can import it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ops.stack import free_port


@dataclass
class Inbox:
    """The emails the SMTP server received, parsed."""

    mails: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


class MailServer:
    """aiosmtpd on a spare port of 127.0.0.1 (no TLS); :meth:`stop` then :meth:`start`
    again gives a new server on the same port (aiosmtpd's own cannot restart)."""

    def __init__(self) -> None:
        self.inbox, self.port = Inbox(), free_port()
        self._running: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._running = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._running.start()

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None


@contextmanager
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Hook:
    """The POSTs the webhook receiver got (lower-case headers, body); ``status`` is what it
    answers; ``url`` where it listens."""

    url: str = ""
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200


@contextmanager
def webhook_receiver() -> Iterator[Hook]:
    received = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(received.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    received.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
