"""The edge's HTTP/1.1 protocol for uvicorn: httptools' protocol, with a response's head and its first body
write leaving in one socket write.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`, then
the body in a second write. On loopback in a VM each socket write is a system call that also wakes the
reader: the two writes were over a quarter of the edge's CPU time on a GET of /v1/models (py-spy), and
the client woke twice. Here the head waits for the next write (the body, sent in the same turn of the
event loop for a whole response) and goes out with it; a head with no body write in that turn (a stream
waiting for its first event) goes out at the end of the turn, alone, as before. Only the head is ever
held, and only within one loop turn: a stream's events still leave as they are sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD = b"HTTP/1.1 "  # how every response head uvicorn writes begins (its status line)


class _HeadWithBody:
    """A transport whose writes go to `transport`, except a response head, which waits for the next write
    or the end of the loop turn. Everything else is the real transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif data.startswith(_HEAD):
            self._head = data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class EdgeHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through _HeadWithBody (`uvicorn.run(..., http=EdgeHTTPProtocol)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadWithBody(transport, self.loop))  # type: ignore[arg-type]
