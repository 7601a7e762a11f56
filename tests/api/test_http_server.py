"""The API's uvicorn protocol: each response in one write, nothing held past the loop's turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from api.http_server import CoalescingHttpToolsProtocol, _CoalescingTransport

pytestmark = pytest.mark.anyio


class Recorder:
    """The real transport's side of the proxy: what was written, closed or aborted."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_writes_within_one_turn_go_out_together() -> None:
    real = Recorder()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert real.writes == [] and transport.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)


async def test_closing_writes_what_is_pending_and_aborting_drops_it() -> None:
    real = Recorder()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.closed
    other = Recorder()
    aborted = _CoalescingTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    aborted.write(b"never")
    aborted.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted


def _app() -> Starlette:
    async def small(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def stream(request: Any) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                await asyncio.sleep(0.01)
                yield part
        return StreamingResponse(parts())

    async def closing(request: Any) -> JSONResponse:
        return JSONResponse({"bye": True}, headers={"connection": "close"})

    return Starlette(routes=[Route("/small", small), Route("/stream", stream), Route("/close", closing)])


class Counting(CoalescingHttpToolsProtocol):
    """Records every write that reaches the socket's transport."""

    writes: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        real_write = transport.write

        def write(data: bytes) -> None:
            Counting.writes.append(bytes(data))
            real_write(data)

        transport.write = write  # type: ignore[method-assign]
        super().connection_made(transport)


@asynccontextmanager
async def serving() -> AsyncIterator[int]:
    config = uvicorn.Config(_app(), host="127.0.0.1", port=0, http=Counting, lifespan="off",
                            log_level="warning", loop="asyncio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b"chunked" in head:
        return head + await reader.readuntil(b"0\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def test_a_response_is_one_write_on_a_kept_connection_streams_go_as_they_come() -> None:
    Counting.writes = []
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first = await _exchange(reader, writer, "/small")
        second = await _exchange(reader, writer, "/small")
        assert first.endswith(b'{"ok":true}') and second.endswith(b'{"ok":true}')
        assert len(Counting.writes) == 2  # head and body together, once per response
        streamed = await _exchange(reader, writer, "/stream")
        assert b"one," in streamed and b"three" in streamed
        assert len(Counting.writes) > 3  # the parts came in different turns: not held back
        closed = await _exchange(reader, writer, "/close")
        assert closed.endswith(b'{"bye":true}')
        assert await reader.read() == b""  # the body went out before the connection closed
        writer.close()
