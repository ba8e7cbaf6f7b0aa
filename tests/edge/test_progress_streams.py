"""edge.relay.until_result: how the progress flow and the jobs runner read a service's progress stream
(events up to one result), on plain async iterators of the events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge.errors import APIError
from edge.relay import until_result


async def events(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def result(event: Any) -> Any:
    return event.removeprefix("result:") if event.startswith("result:") else None


async def test_the_events_before_the_result_are_reported_in_order_and_the_rest_is_not_read():
    seen: list[str] = []

    async def progress(event: str) -> None:
        seen.append(event)

    stream = events("step 1", "step 2", "result:done", "after")
    assert await until_result(stream, result, "video", progress) == "done"
    assert seen == ["step 1", "step 2"]
    assert await anext(stream) == "after"


async def test_a_first_event_already_read_is_the_start_and_may_be_the_result():
    assert await until_result(events("never read"), result, "video", first="result:at once") == "at once"
    assert await until_result(events("result:next"), result, "video", first="step 1") == "next"


async def test_a_stream_that_ends_without_a_result_is_a_processing_error():
    with pytest.raises(APIError) as raised:
        await until_result(events("step 1"), result, "vision")
    assert (raised.value.status, raised.value.type) == (500, "processing_error")
    assert "vision service ended its stream without a result" in raised.value.message
