"""The stream relay of edge.serving: a service's chunks → the HTTP stream's writes, coalesced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any


async def coalesced(first: bytes | None, chunks: AsyncIterator[Any],
                    encode: Callable[[Any], bytes | None]) -> AsyncIterator[bytes]:
    """The encoded events of `first` and `chunks`, each write carrying every event that arrived while the
    previous one went out: a reader task takes chunks from the service as they come while the response
    writes, so a stream the client side cannot keep up with (a busy edge, many streams) costs one write
    per batch instead of one per token. The service's failure comes after the events before it. What waits
    for a slow client is at most the rest of the completion (text the service has already made)."""
    pending: list[bytes] = [first] if first is not None else []
    arrived = asyncio.Event()
    done = False
    failure: BaseException | None = None

    async def read() -> None:
        nonlocal done, failure
        try:
            async for chunk in chunks:
                if (event := encode(chunk)) is not None:
                    pending.append(event)
                    arrived.set()
        except Exception as exc:  # noqa: BLE001 - raised to the consumer, after the events before it
            failure = exc
        finally:
            done = True
            arrived.set()

    reader = asyncio.ensure_future(read())
    try:
        while True:
            if not pending and not done:
                arrived.clear()
                await arrived.wait()
            if pending:
                batch = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                yield batch
            elif done:
                break
        if failure is not None:
            raise failure
    finally:
        if not reader.done():  # the client went away: stop reading (which cancels the call)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
