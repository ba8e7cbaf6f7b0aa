"""The edge's HTTP/1.1 protocol for uvicorn: httptools' protocol, with a response's head and its first body
write leaving in one socket write, and a request's disconnect as a future in its scope.

uvicorn writes a response's status line and headers as soon as the app sends `http.response.start`, then
the body in a second write. On loopback in a VM each socket write is a system call that also wakes the
reader: the two writes were over a quarter of the edge's CPU time on a GET of /v1/models (py-spy), and
the client woke twice. Here the head waits for the next write (the body, sent in the same turn of the
event loop for a whole response) and goes out with it; a head with no body write in that turn (a stream
waiting for its first event) goes out at the end of the turn, alone, as before. Only the head is ever
held, and only within one loop turn: a stream's events still leave as they are sent.

The disconnect: ASGI tells an app that its client went away only through `receive()`, so the edge used to
start a watcher task that read `receive()` around each wait on a service (edge.metering.cancel_on_disconnect:
two per chat stream, one per edit), and cancel it after: ~15 µs a time in a loop, several times that in
place. Here the scope's `extensions[DISCONNECT]` is an asyncio future that the protocol sets when the
connection is lost before the request's response is complete (what makes uvicorn's `receive()` answer
`http.disconnect`), and a waiter adds a done-callback to it instead. A server without it (another ASGI
server, an in-process test client) gets the watcher task, as before.

Bytes that are not an HTTP/1.1 request (a malformed request line or header, a body framed both by
Content-Length and chunked) get uvicorn's 400 and a closed connection, as before, but in the API's error
envelope instead of uvicorn's plain text. A request's head (its request line and headers) is bounded:
httptools keeps an unfinished head in memory however long it grows (one header of 200 MB was taken whole),
so past MAX_HEAD_BYTES (or uvicorn's `h11_max_incomplete_event_size`, the bound its h11 protocol enforces,
where it is set) the answer is a 431 in the envelope and the connection closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from edge.errors import APIError

# The scope extension: an asyncio.Future, done once the client has gone away before its response was complete.
DISCONNECT = "univence.disconnect"
_HEAD = b"HTTP/1.1 "  # how every response head uvicorn writes begins (its status line)
# A request's line and headers, at most (Envoy's default is 60 KiB, nginx's 32, Node's 16): unless uvicorn's
# `h11_max_incomplete_event_size` is set, which bounds the same thing in its h11 protocol.
MAX_HEAD_BYTES = 64 * 1024
# After refusing what it read, the connection stays open this long, reading and dropping what still comes,
# before it closes: closed with unread bytes, a socket sends a reset, which can reach the client before the
# answer does (Envoy's delayed close does the same, for 1 s).
REFUSED_LINGER_SECONDS = 1.0


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

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class EdgeHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through _HeadWithBody, whose requests' scopes carry the DISCONNECT
    future (`uvicorn.run(..., http=EdgeHTTPProtocol)`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._open: list[RequestResponseCycle] = []  # the requests whose responses are not complete
        self._in_head = False  # from a request's first byte to the end of its headers
        self._head_bytes = 0  # of that head read so far (at most one read more: see data_received)
        self._max_head_bytes = self.config.h11_max_incomplete_event_size or MAX_HEAD_BYTES
        self._refused = False  # answered before any app saw it: what still comes is dropped
        super().connection_made(_HeadWithBody(transport, self.loop))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        was_in_head = self._in_head
        super().data_received(data)
        if self._refused or not self._in_head or self.transport.is_closing():  # refused: the parser's 400
            return
        # The head has not ended: every byte of this read was the head's, or, where the head began in this read
        # (on a connection that pipelines requests), the read may also hold the end of the request before:
        # counted too, the bound errs that way only for a client that pipelines bodies over the bound.
        self._head_bytes = self._head_bytes + len(data) if was_in_head else len(data)
        if self._head_bytes > self._max_head_bytes:
            self._refuse(431, b"Request Header Fields Too Large", APIError(
                431, f"The request line and headers are over {self._max_head_bytes} bytes",
                code="headers_too_large"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:  # an upgrade: no new request cycle
            return
        cycle.scope.setdefault("extensions", {})[DISCONNECT] = self.loop.create_future()
        # One at a time, unless the client pipelines: an earlier request may still be answering.
        self._open = [c for c in self._open if not c.response_complete]
        self._open.append(cycle)

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers bytes its parser refuses with (then it closes the connection), as an error
        envelope. uvicorn's `msg` ("Invalid HTTP request received.") says no more than the status; it logs
        it."""
        self._refuse(400, b"Bad Request", APIError(
            400, "The request is not valid HTTP/1.1: a malformed request line or header, or a body framed both "
                 "by Content-Length and chunked", code="invalid_http_request"))

    def _refuse(self, status: int, phrase: bytes, error: APIError) -> None:
        """`error` as the answer to what was read, before any app saw it; the connection then ends its
        sending side and closes REFUSED_LINGER_SECONDS later, dropping what the client still sends."""
        body = error.body()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)]
        self._refused = True
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(REFUSED_LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for cycle in self._open:
            gone = cycle.scope["extensions"][DISCONNECT]
            if not cycle.response_complete and not gone.done():
                gone.set_result(None)
        self._open = []
