"""The stream relay (edge.relay): events that arrive while a write goes out leave in one
write, in order; a failure comes after the events before it; the reading starts when the relay is made,
and stops when it is closed."""

from __future__ import annotations

import asyncio

import pytest

from edge.errors import APIError
from edge.relay import Last, MeteredStream, Relay


async def numbers(count: int, *, fail_after: int | None = None, pause: float = 0.0, closed: list | None = None):
    try:
        for i in range(count):
            if i == fail_after:
                raise APIError(500, "the service failed mid-stream", "processing_error")
            await asyncio.sleep(pause)
            yield i
    finally:
        if closed is not None:
            closed.append(True)


def encode(i: int) -> bytes | None:
    return None if i == 3 else f"<{i}>".encode()  # None: nothing to send for that chunk


async def test_events_arriving_during_a_write_leave_together_in_order():
    writes = []
    relay = Relay(numbers(50), encode)
    await relay.started()
    async for batch in relay:
        writes.append(batch)
        await asyncio.sleep(0.01)  # a slow write: the reader gets ahead
    assert b"".join(writes) == b"".join(f"<{i}>".encode() for i in range(50) if i != 3)
    assert writes[0] == b"<0>" and len(writes) < 10


async def test_a_stream_that_keeps_up_writes_each_event_as_it_comes():
    writes = [batch async for batch in Relay(numbers(5, pause=0.02), encode)]
    assert writes == [b"<0>", b"<1>", b"<2>", b"<4>"]


async def test_a_failure_comes_after_the_events_before_it():
    writes = []
    with pytest.raises(APIError, match="mid-stream"):
        async for batch in Relay(numbers(10, fail_after=6, pause=0.001), encode):
            writes.append(batch)
    assert b"".join(writes) == b"<0><1><2><4><5>"


async def test_started_is_the_first_chunk_and_what_failed_before_it():
    """The flow sends the head once the first chunk is in, even one that makes no event; a failure before
    any chunk (the request refused) is raised by started(), to be the response's status; so is a stream that
    ends without one."""
    relay = Relay(numbers(5, pause=0.01), lambda i: None)  # chunks that make no event
    await asyncio.wait_for(relay.started(), 5)
    assert [batch async for batch in relay] == []
    for chunks, error in ((numbers(5, fail_after=0), "mid-stream"),
                          (numbers(0), "the llm service ended its stream before its first chunk")):
        relay = Relay(chunks, encode, "llm")
        with pytest.raises(APIError, match=error):
            await relay.started()
        await relay.aclose()


async def test_a_consumer_that_stops_stops_the_reading():
    closed: list = []
    relay = Relay(numbers(10_000, pause=0.001, closed=closed), encode)
    assert await anext(relay) == b"<0>"
    await relay.aclose()
    assert closed == [True]


async def test_the_reading_starts_when_the_relay_is_made_and_stops_when_it_closes_unread():
    """The service's next chunk is read while the response's head goes out; a relay whose events never
    ran (the client left first) still stops reading, and closes the stream, when closed."""
    read: list[int] = []

    def record(i: int) -> bytes | None:
        read.append(i)
        return encode(i)

    class Stream:
        """A service stream: its chunks, and whether it was closed (the call cancelled)."""

        def __init__(self, count: int) -> None:
            self.chunks, self.closed = numbers(count, pause=0.001), False

        def __aiter__(self) -> Stream:
            return self

        async def __anext__(self) -> int:
            return await anext(self.chunks)

        async def aclose(self) -> None:
            self.closed = True

    stream = Stream(10_000)
    relay = Relay(stream, record)
    await asyncio.sleep(0.05)
    assert read[:3] == [0, 1, 2]  # read before any write was asked for
    await relay.aclose()
    assert stream.closed and len(read) < 10_000
    finished = Stream(2)
    relay = Relay(finished, encode)
    assert b"".join([batch async for batch in relay]) == b"<0><1>"
    await relay.aclose()  # a stream read to its end is closed too
    assert finished.closed


async def test_a_stream_cancelled_before_its_first_write_still_finishes():
    """A cancel landing before the metered stream's first write (a shutdown while the events wait) must
    still run `finish`, which closes the relay and settles the hold."""
    finished: list[bool] = []
    sent: list[dict] = []

    async def events():
        await asyncio.sleep(30)
        yield b"data: {}\n\n"

    async def finish() -> None:
        finished.append(True)

    async def receive() -> dict:
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    stream = MeteredStream(events(), finish, "text/event-stream")
    task = asyncio.ensure_future(stream({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send))
    await asyncio.sleep(0.01)  # the head is out, the first event not
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == [True] and [m["type"] for m in sent] == ["http.response.start"]


@pytest.mark.parametrize("last", [b"data: [DONE]\n\n", b'data: {"error": {}}\n\n'], ids=["end", "error"])
async def test_the_last_event_ends_the_body_in_the_same_message(last: bytes):
    """A stream's end event (or the error that ends it) is the body's last message (more_body false), so the
    server writes it with the chunked body's end in one socket write; a body that ends otherwise ends as
    Starlette's does."""
    async def events(final: bool):
        yield b"data: 1\n\n"
        if final:
            yield Last(last)

    async def receive() -> dict:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def nothing() -> None:
        pass

    for final, ending in ((True, [(last, False)]), (False, [(b"", False)])):
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)  # noqa: B023 - called before the loop moves on

        await MeteredStream(events(final), nothing, "text/event-stream")({"type": "http"}, receive, send)
        bodies = [(m["body"], m["more_body"]) for m in sent if m["type"] == "http.response.body"]
        assert bodies == [(b"data: 1\n\n", True), *ending]
