"""The bounded queue and the batcher every model service uses."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from services.common.errors import ServiceError
from services.common.workqueue import Batcher, WorkQueue


async def test_batcher_groups_compatible_items_into_one_call():
    calls: list[list[tuple[str, int]]] = []

    def process(items):
        calls.append(list(items))
        return [f"{shape}:{n * 10}" for shape, n in items]

    queue = WorkQueue("t", max_pending=16, concurrency=1)
    batcher = Batcher(queue, process, max_batch_size=4, max_wait_s=0.05, key=lambda item: item[0])
    items = [("512", 1), ("512", 2), ("1024", 3), ("512", 4)]
    results = await asyncio.gather(*(batcher.submit(i) for i in items))
    assert results == ["512:10", "512:20", "1024:30", "512:40"]
    assert sorted(len(c) for c in calls) == [1, 3]  # one batch per shape
    assert all(len({shape for shape, _ in c}) == 1 for c in calls)


async def test_a_full_batch_runs_without_waiting():
    queue = WorkQueue("t", max_pending=16)
    batcher = Batcher(queue, lambda items: items, max_batch_size=2, max_wait_s=10)
    started = time.perf_counter()
    assert await asyncio.gather(batcher.submit(1), batcher.submit(2)) == [1, 2]
    assert time.perf_counter() - started < 1


async def test_one_failing_item_fails_only_itself():
    def process(items):
        return [ValueError(f"bad {i}") if i < 0 else i for i in items]

    batcher = Batcher(WorkQueue("t", max_pending=8), process, max_batch_size=3, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in (1, -1, 2)), return_exceptions=True)
    assert results[0] == 1 and results[2] == 2 and isinstance(results[1], ValueError)


async def test_whole_batch_failure_reaches_every_caller():
    def process(items):
        raise RuntimeError("model crashed")

    batcher = Batcher(WorkQueue("t", max_pending=8), process, max_batch_size=2, max_wait_s=0.01)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_pending_items_are_bounded():
    gate = threading.Event()

    def process(items):
        gate.wait(5)
        return items

    queue = WorkQueue("t", max_pending=2)
    batcher = Batcher(queue, process, max_batch_size=1, max_wait_s=0)
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(ServiceError) as full:
        await batcher.submit(3)
    assert full.value.code.name == "RESOURCE_EXHAUSTED"
    gate.set()
    assert await asyncio.gather(*waiting) == [0, 1]
    assert queue.pending == 0


async def test_items_past_their_deadline_are_dropped_before_work():
    seen: list[list[int]] = []
    gate = threading.Event()

    def process(items):
        seen.append(list(items))
        gate.wait(5)
        return items

    queue = WorkQueue("t", max_pending=8, concurrency=1)
    batcher = Batcher(queue, process, max_batch_size=1, max_wait_s=0)
    blocker = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)
    late = asyncio.ensure_future(batcher.submit(1, timeout=0.05))
    await asyncio.sleep(0.2)
    gate.set()
    await blocker
    with pytest.raises(ServiceError) as expired:
        await late
    assert expired.value.code.name == "DEADLINE_EXCEEDED"
    assert seen == [[0]]


async def test_cancelled_callers_are_left_out_of_the_batch():
    seen: list[list[int]] = []

    def process(items):
        seen.append(list(items))
        return items

    batcher = Batcher(WorkQueue("t", max_pending=8), process, max_batch_size=4, max_wait_s=0.1)
    keep = asyncio.ensure_future(batcher.submit(1))
    drop = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)
    drop.cancel()
    assert await keep == 1
    assert seen == [[1]]


async def test_items_arriving_while_a_batch_waits_for_the_slot_join_it():
    gate = threading.Event()
    seen: list[list[int]] = []

    def process(items):
        seen.append(list(items))
        if items == [0]:
            gate.wait(5)
        return items

    batcher = Batcher(WorkQueue("t", max_pending=16, concurrency=1), process, max_batch_size=8, max_wait_s=0.01)
    blocker = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)  # item 0 holds the only slot
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.05)  # past max_wait: their batch waits for the slot, still open to newcomers
    waiting += [asyncio.ensure_future(batcher.submit(i)) for i in range(6, 9)]
    await asyncio.sleep(0.01)
    gate.set()
    assert await asyncio.gather(blocker, *waiting) == list(range(9))
    assert seen == [[0], [1, 2, 3, 4, 5, 6, 7, 8]]


async def test_a_caller_whose_deadline_passes_gets_deadline_exceeded_at_once():
    gate = threading.Event()

    def process(items):
        gate.wait(5)
        return items

    batcher = Batcher(WorkQueue("t", max_pending=8), process, max_batch_size=1, max_wait_s=0)
    blocker = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ServiceError) as expired:
        await batcher.submit(1, timeout=0.1)
    assert expired.value.code.name == "DEADLINE_EXCEEDED" and loop.time() - started < 1
    gate.set()
    await blocker


async def test_a_cancelled_caller_keeps_its_slot_until_its_thread_has_finished():
    gate = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()
    finished: list[int] = []

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        if n == 1:
            gate.wait(5)
        with lock:
            running -= 1
        finished.append(n)
        return n

    queue = WorkQueue("t", max_pending=2, concurrency=1)
    first = asyncio.ensure_future(queue.run(work, 1))
    await asyncio.sleep(0.05)  # item 1 runs on the only work thread
    first.cancel()
    started = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert time.perf_counter() - started < 1  # the caller returns at once
    assert queue.pending == 1  # still counted: its thread runs on
    second = asyncio.ensure_future(queue.run(work, 2))
    await asyncio.sleep(0.05)
    assert queue.pending == 2 and finished == [] and not second.done()  # waits for the slot
    with pytest.raises(ServiceError) as full:  # the bound counts the abandoned item
        await queue.run(work, 3)
    assert full.value.code.name == "RESOURCE_EXHAUSTED"
    gate.set()
    assert await second == 2
    assert finished == [1, 2] and most == 1
    await asyncio.sleep(0.01)
    assert queue.pending == 0


async def test_a_caller_cancelled_before_its_work_starts_frees_everything_at_once():
    gate = threading.Event()
    queue = WorkQueue("t", max_pending=4, concurrency=1)
    blocker = asyncio.ensure_future(queue.run(gate.wait, 5))
    await asyncio.sleep(0.02)
    waiting = asyncio.ensure_future(queue.run(lambda: 1))
    await asyncio.sleep(0.02)
    assert queue.pending == 2
    waiting.cancel()
    await asyncio.sleep(0.01)
    assert queue.pending == 1
    gate.set()
    assert await blocker is True
    assert queue.pending == 0


async def test_a_batch_member_cancelled_mid_batch_stays_pending_until_the_batch_ends():
    gate = threading.Event()
    seen: list[list[int]] = []

    def process(items):
        seen.append(list(items))
        gate.wait(5)
        return items

    queue = WorkQueue("t", max_pending=2, concurrency=1)
    batcher = Batcher(queue, process, max_batch_size=2, max_wait_s=0)
    gone = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.05)  # its batch runs
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert queue.pending == 1
    nxt = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.05)
    assert seen == [[1]]  # the next batch waits for the slot
    gate.set()
    assert await nxt == 2
    assert seen == [[1], [2]]
    await asyncio.sleep(0.01)
    assert queue.pending == 0
