"""The stream relay of edge.serving: a service's chunks → the HTTP stream's writes, coalesced (Relay), and
the streaming response that sends them and settles the request's hold however it ends (MeteredStream); and
a progress stream read to its result (until_result: the progress flow's and edge.jobs' runs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from edge.errors import APIError, ClientDisconnected
from edge.metering import cancel_on_disconnect

R = TypeVar("R")


class Relay:
    """The encoded events of `first` and `chunks`, as an async iterator of writes, each write carrying
    every event that arrived while the previous one went out: a reader task takes chunks from the service
    as they come while the response writes, so a stream the client side cannot keep up with (a busy edge,
    many streams) costs one write per batch instead of one per token. The service's failure comes after
    the events before it. What waits for a slow client is at most the rest of the completion (text the
    service has already made).

    The reader starts when the relay is made, not at the first write: the service's next chunk is already
    being read while the response's head and first event go out (a premium chat's first token came
    ~0.2 ms later when its read waited for them). `aclose()` stops the reader (which cancels the call);
    whoever makes a relay closes it, whether or not it was iterated."""

    def __init__(self, first: bytes | None, chunks: AsyncIterator[Any], encode: Callable[[Any], bytes | None]):
        self._pending: list[bytes] = [first] if first is not None else []
        self._arrived = asyncio.Event()
        self._done = False
        self._failure: BaseException | None = None
        self._reader = asyncio.ensure_future(self._read(chunks, encode))

    async def _read(self, chunks: AsyncIterator[Any], encode: Callable[[Any], bytes | None]) -> None:
        try:
            async for chunk in chunks:
                if (event := encode(chunk)) is not None:
                    self._pending.append(event)
                    self._arrived.set()
        except Exception as exc:  # noqa: BLE001 - raised to the consumer, after the events before it
            self._failure = exc
        finally:
            self._done = True
            self._arrived.set()

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        while not self._pending and not self._done:
            self._arrived.clear()
            await self._arrived.wait()
        if self._pending:
            batch = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            return batch
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stops the reader if it still runs (the client went away, or the events never ran)."""
        if not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


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
            # One turn of the loop first, so that the relay's reader (edge.relay) asks the service for its
            # next chunk before the head and the first event go out: nothing before the first write yields
            # to the loop otherwise. A cancel in that turn ends here too, and `finish` settles.
            await asyncio.sleep(0)
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
