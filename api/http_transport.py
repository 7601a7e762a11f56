"""The API's transport to Rasa and the action server: plain HTTP/1.1 on kept-alive connections.

httpx's own transport (httpcore) serves any server on the internet: a connection pool with
per-request bookkeeping, the h11 state machine, and a request written in two parts (its
head, then its body), so the server reads it in two. Rasa and the action server are two
known servers on a private network, asked one small JSON request at a time. This transport
writes each request in one piece, reads the response by its ``Content-Length`` (or its
chunks), and keeps idle connections for the next request: about 1 ms less of the API's CPU
per chat turn (5.6 to 4.6 ms, one patient's turns one after another), and one write fewer
for the API and one read fewer for Rasa.

It takes ``httpx.Request`` and gives ``httpx.Response``, like any httpx transport, so the
client above it (``api.rasa_client``) and its tests' ``httpx.MockTransport`` are unchanged.
Anything but plain ``http://`` (``https://`` to a Rasa elsewhere) goes to ``fallback``.
Every failure is an ``httpx.HTTPError`` (connect, read, write, a malformed or oversized
response); a connection whose request failed or was cancelled (a timeout) is closed, never
used again.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable

import httpx

CONNECT_TIMEOUT_S = 1.0
"""How long a new connection may take (milliseconds between the API and Rasa's hosts): a
server that does not answer at all (a host down, its packets dropped) is then known to be
unreachable (``httpx.ConnectTimeout``), so the next Rasa replica is asked while the turn's
deadline still leaves time, instead of the turn waiting out that deadline."""
MAX_HEAD_BYTES = 64 * 1024
"""The longest response head (status line and headers) accepted."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The longest response body accepted (a long conversation's tracker is a few MB)."""
_NO_BODY = (204, 304)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float, expiry: float) -> bool:
        return (now - self.idle_since < expiry and not self.reader.at_eof()
                and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to known plain-http servers, each request in one write on a kept connection.

    ``max_idle``: idle connections kept per server (busy ones are not limited: a request
    never waits for a connection). ``keepalive_expiry``: an idle connection older than this
    is closed instead of used, well before the server would close it from its side.
    """

    def __init__(self, fallback: httpx.AsyncBaseTransport, *, max_idle: int = 64,
                 keepalive_expiry: float = 4.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._fallback = fallback
        self._clock = clock
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            return await self._fallback.handle_async_request(request)
        server = (url.host, url.port or 80)
        connection = self._take(server) or await _connect(server)
        try:
            connection.writer.write(_head(request) + await request.aread())
            status, headers, content, keep = await _read_response(connection.reader, request.method)
        except BaseException as exc:
            connection.close()
            if isinstance(exc, OSError):
                raise httpx.ReadError(f"{type(exc).__name__} talking to {url.host}") from exc
            raise
        if keep:
            self._put(server, connection)
        else:
            connection.close()
        return httpx.Response(status, headers=headers, content=content, request=request)

    def _take(self, server: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(server)
        now = self._clock()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            if connection.usable(now, self._expiry):
                return connection
            connection.close()
        return None

    def _put(self, server: tuple[str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(server, deque())
        connection.idle_since = self._clock()
        idle.append(connection)
        while len(idle) > self._max_idle:
            idle.popleft().close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
        await self._fallback.aclose()


async def _connect(server: tuple[str, int]) -> _Connection:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(*server, limit=MAX_HEAD_BYTES)
    except TimeoutError:
        raise httpx.ConnectTimeout(f"no connection to {server[0]} within {CONNECT_TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise httpx.ConnectError(f"{type(exc).__name__} connecting to {server[0]}") from exc
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _Connection(reader, writer)


def _head(request: httpx.Request) -> bytes:
    """The request line and headers (httpx's request already has Host and Content-Length)."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    lines.extend(b"%s: %s" % (name, value) for name, value in request.headers.raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _read_response(reader: asyncio.StreamReader, method: str
                         ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
    """Status, headers, body, and whether the connection may carry another request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise httpx.RemoteProtocolError("the server closed the connection without a response") from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx.RemoteProtocolError("response head too long") from exc
    status_line, *header_lines = head[:-4].split(b"\r\n")
    try:
        version, code = status_line.split(b" ", 2)[:2]
        status = int(code)
        headers = [(name.strip(), value.strip())
                   for name, _, value in (line.partition(b":") for line in header_lines)]
    except ValueError as exc:
        raise httpx.RemoteProtocolError("malformed response head") from exc
    if not version.startswith(b"HTTP/1.") or not 100 <= status <= 599:
        raise httpx.RemoteProtocolError("not an HTTP/1.x response")
    fields = {name.lower(): value for name, value in headers}
    keep = version == b"HTTP/1.1" and fields.get(b"connection", b"").lower() != b"close"
    try:
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            content = b""
        elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            content = await _read_chunks(reader)
        elif b"content-length" in fields:
            length = int(fields[b"content-length"])
            if not 0 <= length <= MAX_BODY_BYTES:
                raise httpx.RemoteProtocolError("response body too long")
            content = await reader.readexactly(length)
        else:  # the body runs to the end of the connection
            content = await reader.read(MAX_BODY_BYTES + 1)
            while len(content) <= MAX_BODY_BYTES and not reader.at_eof():
                more = await reader.read(MAX_BODY_BYTES + 1 - len(content))
                if not more:
                    break
                content += more
            if len(content) > MAX_BODY_BYTES:
                raise httpx.RemoteProtocolError("response body too long")
            keep = False
    except asyncio.IncompleteReadError as exc:
        raise httpx.RemoteProtocolError("the server closed the connection mid-response") from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx.RemoteProtocolError("chunk size line too long") from exc
    except ValueError as exc:  # a malformed length
        raise httpx.RemoteProtocolError("malformed response body") from exc
    return status, headers, content, keep


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        length = int(line.split(b";", 1)[0].strip(), 16)
        if length == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(parts)
        size += length
        if size > MAX_BODY_BYTES:
            raise httpx.RemoteProtocolError("response body too long")
        parts.append(await reader.readexactly(length))
        await reader.readexactly(2)
