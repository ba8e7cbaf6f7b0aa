"""The stream relay of edge.serving: a service's chunks → the HTTP stream's writes, coalesced (Relay), and
the streaming response that sends them and settles the request's hold however it ends (MeteredStream); and
a progress stream read to its result (until_result: the progress flow's and edge.jobs' runs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from edge.errors import APIError, ClientDisconnected
from edge.metering import cancel_on_disconnect

R = TypeVar("R")


class ServiceChunks(Protocol):
    """What a relay reads: a service stream's messages, and `aclose()`, which ends the call
    (edge.clients.ServiceStream)."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def aclose(self) -> None: ...


class Relay:
    """A service's stream as the HTTP stream's writes: its chunks, encoded, as an async iterator of writes,
    each carrying every event that arrived while the previous one went out. A reader task takes the chunks
    as they come while the response writes, so a stream the client side cannot keep up with (a busy edge,
    many streams) costs one write per batch instead of one per token. The service's failure comes after the
    events before it. What waits for a slow client is at most the rest of the completion (text the service
    has already made).

    The reader starts when the relay is made, with the call: it holds the first chunk for `started()` (the
    flow sends the response's head once it is in) and asks for the next one at once, in the same step, so
    the service's second chunk (a chat's first token, after the role) is already being read while the head
    and the first event go out. (The flow used to read the first chunk itself, then give the reader a loop
    turn of its own before the head to get there.) `aclose()` stops the reader and closes the stream, which
    cancels the call; whoever makes a relay closes it, whether or not it was iterated."""

    def __init__(self, chunks: ServiceChunks, encode: Callable[[Any], bytes | None], service: str = "upstream"):
        self.chunks = chunks
        self.service = service  # named in the error of a stream that ends before its first chunk
        self._pending: list[bytes] = []
        self._arrived = asyncio.Event()
        self._first = False  # a chunk has come
        self._done = False
        self._failure: BaseException | None = None
        self._reader = asyncio.ensure_future(self._read(encode))

    async def _read(self, encode: Callable[[Any], bytes | None]) -> None:
        try:
            async for chunk in self.chunks:
                self._first = True
                if (event := encode(chunk)) is not None:
                    self._pending.append(event)
                self._arrived.set()
        except Exception as exc:  # noqa: BLE001 - raised to the consumer, after the events before it
            self._failure = exc
        finally:
            self._done = True
            self._arrived.set()

    async def _wait(self, ready: Callable[[], bool]) -> None:
        while not ready() and not self._done:
            self._arrived.clear()
            await self._arrived.wait()

    async def started(self) -> None:
        """Returns once the service's first chunk is in. What failed before it is raised here (so that it is
        still the response's status, not a broken stream), as is a stream that ended without any chunk."""
        await self._wait(lambda: self._first)
        if not self._first:
            failure, self._failure = self._failure, None
            raise failure or APIError(500, f"the {self.service} service ended its stream before its first chunk",
                                      "processing_error")

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        if not self._pending:
            await self._wait(lambda: bool(self._pending))
        if self._pending:
            batch = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            return batch
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stops the reader if it still runs (the client went away, or the events never ran), then closes
        the stream."""
        if not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.chunks.aclose()


class Last(bytes):
    """A stream's last write (its end event, or the error that ends it): MeteredStream sends it as the end of
    the HTTP body, so it and the body's end (chunked encoding's `0\\r\\n\\r\\n`) leave in one socket write
    instead of two (each a system call that wakes the client)."""


class MeteredStream(StreamingResponse):
    """A StreamingResponse that settles its hold however the stream ends: committed at the end of the
    events, released when the client went away or the events never ran."""

    def __init__(self, content: AsyncIterator[bytes], finish: Callable[[], Awaitable[None]], media_type: str):
        super().__init__(content, media_type=media_type, headers={"Cache-Control": "no-cache",
                                                                  "X-Accel-Buffering": "no"})
        self._finish = finish

    async def stream_response(self, send: Send) -> None:
        """Starlette's, with a Last write ending the body."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            if type(chunk) is Last:
                await send({"type": "http.response.body", "body": chunk, "more_body": False})
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette watches for the disconnect with an anyio task group (a cancel scope, two tasks) on
        # every stream; cancel_on_disconnect does the same for less (a callback on the server's disconnect
        # future, edge.http_protocol; a watcher task on another server).
        try:
            await cancel_on_disconnect(scope, receive, self.stream_response(send))
        except ClientDisconnected:
            pass  # the client went away mid-stream: the events stopped, and `finish` releases the hold
        finally:
            await self._finish()


async def next_event(events: AsyncIterator[Any], service: str) -> Any:
    """The stream's next event; a 500 when it ends here (a progress stream ends with its result)."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        raise APIError(500, f"the {service} service ended its stream without a result", "processing_error") from None


async def until_result(events: AsyncIterator[Any], result: Callable[[Any], R | None], service: str,
                       progress: Callable[[Any], Awaitable[None]] | None = None, first: Any = None) -> R:
    """The result a progress stream ends with (`first`, an event already read, may be it), each event
    before it given to `progress`. The progress flow and the jobs runner (edge.jobs) both read theirs so."""
    event = first if first is not None else await next_event(events, service)
    while (found := result(event)) is None:
        if progress is not None:
            await progress(event)
        event = await next_event(events, service)
    return found
