"""LeanTransport against a real TCP server that answers with raw HTTP/1.1 bytes.

The server records every request as it arrived (bytes, and in how many reads) and answers
what each test scripts: Content-Length and chunked bodies, kept-alive or closed
connections, malformed or oversized answers, silence.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api import http_transport
from api.http_transport import LeanTransport
from api.rasa_client import AssistantUnavailable, RasaClient

pytestmark = pytest.mark.anyio

Answer = Callable[[bytes], bytes | None]
"""The raw response to a request (its head and body); None: say nothing, keep the connection."""


@dataclass
class Server:
    url: str
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    reads: list[int] = field(default_factory=list)
    """How many reads each request took to arrive."""


def ok(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", b"content-length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[Server]:
    server = Server("")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        buffer, reads = b"", 0
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer, reads = buffer + chunk, reads + 1
                head, sep, rest = buffer.partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    continue
                request, buffer = head + sep + rest[:length], rest[length:]
                server.requests.append(request)
                server.reads.append(reads)
                reads = 0
                response = answer(request)
                if response is None:
                    continue
                writer.write(response)
                await writer.drain()
                if b"connection: close" in response.lower():
                    return
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    server.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()


class Fallback(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"via": "fallback"})

    async def aclose(self) -> None:
        self.closed = True


def body_of(request: bytes) -> Any:
    return json.loads(request.partition(b"\r\n\r\n")[2])


async def test_a_request_goes_out_in_one_write_and_connections_are_kept() -> None:
    async with serving(lambda req: ok(json.dumps({"echo": body_of(req)}).encode())) as server:
        transport = LeanTransport(Fallback())
        try:
            for n in range(3):
                request = httpx.Request("POST", server.url + "/webhooks/meso/webhook?x=1",
                                        json={"n": n}, headers={"Authorization": "Bearer t"})
                response = await transport.handle_async_request(request)
                assert response.status_code == 200
                assert response.json() == {"echo": {"n": n}}
        finally:
            await transport.aclose()
    assert server.connections == 1  # kept alive and used again
    assert server.reads == [1, 1, 1]  # head and body in one piece
    first = server.requests[0].decode()
    assert first.startswith("POST /webhooks/meso/webhook?x=1 HTTP/1.1\r\n")
    assert "\r\nAuthorization: Bearer t\r\n" in first
    assert f"\r\nhost: {server.url[7:]}\r\n" in first.lower()


async def test_chunked_and_closing_responses() -> None:
    def answer(request: bytes) -> bytes:
        if b"/chunked" in request:
            return (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        return ok(b"bye", b"connection: close")

    async with serving(answer) as server:
        transport = LeanTransport(Fallback())
        try:
            chunked = await transport.handle_async_request(httpx.Request("GET", server.url + "/chunked"))
            assert chunked.content == b"hello world"
            closing = await transport.handle_async_request(httpx.Request("GET", server.url + "/close"))
            assert closing.content == b"bye"
            again = await transport.handle_async_request(httpx.Request("GET", server.url + "/chunked"))
            assert again.content == b"hello world"
        finally:
            await transport.aclose()
    assert server.connections == 2  # the closed one was not used again


async def test_idle_connections_expire() -> None:
    clock = [1000.0]
    async with serving(lambda req: ok(b"{}")) as server:
        transport = LeanTransport(Fallback(), keepalive_expiry=4.0, clock=lambda: clock[0])
        try:
            await transport.handle_async_request(httpx.Request("GET", server.url + "/"))
            clock[0] += 3.0
            await transport.handle_async_request(httpx.Request("GET", server.url + "/"))
            assert server.connections == 1
            clock[0] += 4.5
            await transport.handle_async_request(httpx.Request("GET", server.url + "/"))
            assert server.connections == 2
        finally:
            await transport.aclose()


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (b"garbage\r\n\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\nshort", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", None),  # an empty body to the end: fine
    ],
)
async def test_malformed_answers_are_http_errors(response: bytes, error: type[Exception] | None) -> None:
    async with serving(lambda req: response) as server:
        transport = LeanTransport(Fallback())
        try:
            request = httpx.Request("GET", server.url + "/")
            if error is None:
                assert (await transport.handle_async_request(request)).content == b""
            else:
                with pytest.raises(error):
                    await transport.handle_async_request(request)
        finally:
            await transport.aclose()


async def test_oversized_answers_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_transport, "MAX_BODY_BYTES", 100)
    async with serving(lambda req: ok(b"x" * 101)) as server:
        transport = LeanTransport(Fallback())
        try:
            with pytest.raises(httpx.RemoteProtocolError, match="too long"):
                await transport.handle_async_request(httpx.Request("GET", server.url + "/"))
        finally:
            await transport.aclose()


async def test_a_cancelled_request_never_leaves_its_connection_for_the_next() -> None:
    """A timeout mid-request: the late answer must not become the next request's answer."""
    answers = iter([None, ok(b'{"n": 2}')])
    async with serving(lambda req: next(answers)) as server:
        transport = LeanTransport(Fallback())
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await transport.handle_async_request(httpx.Request("GET", server.url + "/1"))
            response = await transport.handle_async_request(httpx.Request("GET", server.url + "/2"))
            assert response.json() == {"n": 2}
        finally:
            await transport.aclose()
    assert server.connections == 2


async def test_nobody_listening_is_a_connect_error() -> None:
    async with serving(lambda req: ok(b"")) as server:
        url = server.url
    transport = LeanTransport(Fallback())
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(httpx.Request("GET", url + "/"))


async def test_a_server_that_never_accepts_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that answers nothing (here: a listener whose queue is full, so the kernel drops
    the connection's first packet) is unreachable after CONNECT_TIMEOUT_S, as a
    ``ConnectTimeout``: RasaClient then asks another replica within the turn's deadline."""
    monkeypatch.setattr(http_transport, "CONNECT_TIMEOUT_S", 0.3)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: nobody accepts
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await asyncio.sleep(0.05)
        transport = LeanTransport(Fallback())
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ConnectTimeout):
            await transport.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_anything_but_plain_http_goes_to_the_fallback() -> None:
    fallback = Fallback()
    transport = LeanTransport(fallback)
    response = await transport.handle_async_request(httpx.Request("GET", "https://rasa.example/status"))
    assert response.json() == {"via": "fallback"} and len(fallback.requests) == 1
    await transport.aclose()
    assert fallback.closed


async def test_the_rasa_client_over_it() -> None:
    """The client's failures stay AssistantUnavailable with a safe reason."""
    reply = {"messages": [{"text": "Hello"}], "nlu": {"intent": "greet", "confidence": 0.9}}
    answers = iter([ok(json.dumps(reply).encode()), b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n",
                    ok(json.dumps({"events": []}).encode())])  # after the error: the tracker, no such turn
    async with serving(lambda req: next(answers)) as server:
        async with RasaClient(LeanTransport(Fallback()), rasa_url=server.url, action_server_url=server.url,
                              token="t0ken", timeout=1.0) as rasa:
            got = await rasa.send("conversation-1", "hi", command=False, message_id="m1")
            assert got.messages[0].text == "Hello" and got.nlu.intent == "greet"
            with pytest.raises(AssistantUnavailable) as failed:
                await rasa.send("conversation-1", "again", command=False)
            assert failed.value.reason == "HTTP 500"
    assert server.requests[2].startswith(b"GET /conversations/conversation-1/tracker")
    sent = server.requests[0].decode()
    assert sent.startswith("POST /webhooks/meso/webhook HTTP/1.1") and "t0ken" in sent
    assert body_of(server.requests[0]) == {"sender": "conversation-1", "message": "hi", "command": False,
                                           "message_id": "m1"}
