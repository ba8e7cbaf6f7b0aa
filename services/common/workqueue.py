"""Bounded model work: a queue that refuses at once when full, and a batcher on top of it.

Model calls block, so they run on the queue's own threads; `concurrency` of them at a time. Items
past `max_pending` (waiting plus running) get RESOURCE_EXHAUSTED straight away instead of growing
memory; items whose deadline passes while they wait are dropped before any work is done for them.

A caller that goes away (its RPC cancelled) returns at once, but its slot and its pending count stay
taken until the work thread it started has finished (the thread's result is dropped): a thread cannot
be stopped, so freeing them earlier would let more than `concurrency` items run at once.

Callers waiting for a slot are kept in arrival order, so a long job (a video) can tell its client its
place in the queue (`slot(on_position=...)`) and say when it moves up.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from services.common.errors import Reason, ServiceError
from services.common.metrics import BATCH_SIZE, QUEUE_DEPTH, QUEUE_REJECTED

T = TypeVar("T")
R = TypeVar("R")


def deadline_exceeded() -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_DEADLINE_EXCEEDED, "the deadline passed before the work started")


class _Hold:
    """A slot or a pending count taken by a caller, and the work threads started while it is held: it is
    given back only once they have all finished."""

    def __init__(self) -> None:
        self.work: list[Future] = []
        self.released = False

    def add(self, work: Future) -> None:
        if not self.released:
            self.work.append(work)

    def release_when_idle(self, release: Callable[[], None]) -> None:
        self.released = True
        running = [f for f in self.work if not f.done()]
        self.work = []
        if not running:
            release()
            return
        loop = asyncio.get_running_loop()
        left = [len(running)]
        lock = threading.Lock()

        def one_done(_: Future) -> None:  # on the work thread (or here, when it finished meanwhile)
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to free
                    loop.call_soon_threadsafe(release)

        for f in running:
            f.add_done_callback(one_done)


# The holds of the current task (its admit() and slot() blocks): work started in them is added to each.
_HOLDS: contextvars.ContextVar[tuple[_Hold, ...]] = contextvars.ContextVar("workqueue_holds", default=())


@contextlib.contextmanager
def _holding() -> Iterator[_Hold]:
    hold = _Hold()
    _HOLDS.set((*_HOLDS.get(), hold))
    try:
        yield hold
    finally:
        # Not a token reset: the block may be closed from another context (a done callback).
        _HOLDS.set(tuple(h for h in _HOLDS.get() if h is not hold))


class WorkQueue:
    def __init__(self, name: str, *, max_pending: int, concurrency: int = 1):
        if max_pending < 1 or concurrency < 1:
            raise ValueError("max_pending and concurrency must be at least 1")
        self.name = name
        self.max_pending = max_pending
        self.pending = 0
        self._slots = asyncio.Semaphore(concurrency)
        # Callers waiting for a slot, first come first: each one's position listener (or None).
        self._waiting: list[_Waiter] = []
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix=f"{name}-work")

    @contextlib.contextmanager
    def admit(self) -> Iterator[_Hold]:
        """Counts one item as pending for the block's duration (and until the work threads started in it
        have finished), or refuses it when the queue is full."""
        if self.pending >= self.max_pending:
            QUEUE_REJECTED.labels(self.name).inc()
            raise ServiceError(
                Reason.ERROR_REASON_QUEUE_FULL,
                f"the {self.name} queue is full ({self.max_pending} requests waiting or running); "
                "retry later",
            )
        self.pending += 1
        QUEUE_DEPTH.labels(self.name).set(self.pending)

        def release() -> None:
            self.pending -= 1
            QUEUE_DEPTH.labels(self.name).set(self.pending)

        with _holding() as hold:
            try:
                yield hold
            finally:
                hold.release_when_idle(release)

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot now (not counting those running)."""
        return len(self._waiting)

    def _renumber(self) -> None:
        for place, waiter in enumerate(self._waiting, start=1):
            waiter.tell(place)

    @contextlib.asynccontextmanager
    async def slot(self, timeout: float | None = None,
                   on_position: Callable[[int], None] | None = None) -> AsyncIterator[None]:
        """Holds one of the `concurrency` slots (until the work threads started in the block have
        finished, even when the caller leaves first); `timeout` bounds the wait (DEADLINE_EXCEEDED after).
        `on_position(n)` hears the caller's place among those waiting (1: next to run) when it has to
        wait and each time it moves up (it runs in the event loop; not called when a slot is free)."""
        waiter = _Waiter(on_position)
        if self._slots.locked() or self._waiting:
            self._waiting.append(waiter)
            waiter.tell(len(self._waiting))
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise deadline_exceeded() from None
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                self._renumber()
        with _holding() as hold:
            try:
                yield
            finally:
                hold.release_when_idle(self._slots.release)

    def _submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        """Starts fn(*args) on a work thread; the caller's slot and pending count wait for it."""
        work = self._executor.submit(fn, *args)
        for hold in _HOLDS.get():
            hold.add(work)
        return work

    async def in_thread(self, fn: Callable[..., R], *args: Any) -> R:
        """Runs fn(*args) on one of the queue's work threads (call it while holding a slot). A caller
        cancelled meanwhile returns at once; the thread runs on and its result is dropped."""
        return await asyncio.wrap_future(self._submit(fn, *args))

    async def execute(self, fn: Callable[..., R], *args: Any, timeout: float | None = None,
                      on_position: Callable[[int], None] | None = None) -> R:
        """Runs fn(*args) on a work thread once a slot is free; `timeout` bounds the wait for the slot,
        `on_position` hears the place in the queue meanwhile (see `slot`)."""
        async with self.slot(timeout, on_position):
            return await self.in_thread(fn, *args)

    async def run(self, fn: Callable[..., R], *args: Any, timeout: float | None = None) -> R:
        """admit() + execute(): one unbatched work item."""
        with self.admit():
            return await self.execute(fn, *args, timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _Waiter:
    """A caller waiting for a slot, and who hears its place (only when it changes)."""

    def __init__(self, listener: Callable[[int], None] | None):
        self.listener = listener
        self.place = 0

    def tell(self, place: int) -> None:
        if self.listener is not None and place != self.place:
            self.place = place
            self.listener(place)


@dataclass
class _Entry(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    deadline: float | None  # loop time
    hold: _Hold  # the caller's pending count: kept until the batch that carries the item has finished


@dataclass
class _Group:
    entries: list[_Entry] = field(default_factory=list)
    # A dispatch task is waiting (for the batch to fill, then for a work slot) to serve this group.
    dispatching: bool = False
    full: asyncio.Event = field(default_factory=asyncio.Event)


class Batcher(Generic[T, R]):
    """Gathers compatible items (same `key`) into one model call of up to `max_batch_size` items.

    A batch waits at most `max_wait_s` to fill, then for a free work slot; it takes its members when
    the slot is free, so under load every compatible item that arrived meanwhile rides along.
    `process(items)` runs on a work thread and returns one result per item, in order; a result that
    is an exception fails only its own item.
    """

    def __init__(
        self,
        queue: WorkQueue,
        process: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        key: Callable[[T], Hashable] = lambda item: None,
    ):
        self._queue = queue
        self._process = process
        self._max_batch_size = max(1, max_batch_size)
        self._max_wait_s = max_wait_s
        self._key = key
        self._groups: dict[Hashable, _Group] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, item: T, *, timeout: float | None = None) -> R:
        """The item's result; DEADLINE_EXCEEDED when `timeout` passes first (the item is then left out
        of any batch that has not started yet)."""
        loop = asyncio.get_running_loop()
        with self._queue.admit() as hold:
            entry = _Entry(item, loop.create_future(), None if timeout is None else loop.time() + timeout, hold)
            key = self._key(item)
            group = self._groups.setdefault(key, _Group())
            group.entries.append(entry)
            if len(group.entries) >= self._max_batch_size:
                group.full.set()
            if not group.dispatching:
                group.dispatching = True
                self._start(self._dispatch(key, group))
            try:
                return await asyncio.wait_for(entry.future, timeout)
            except TimeoutError:
                raise deadline_exceeded() from None

    def _start(self, coro) -> None:
        # Without the starting caller's holds: the batch's work belongs to its members' holds, not to
        # whichever caller happened to start the dispatch.
        context = contextvars.copy_context()
        context.run(_HOLDS.set, ())
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, key: Hashable, group: _Group) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(group.full.wait(), self._max_wait_s)
        entries: list[_Entry] = []
        try:
            async with self._queue.slot():
                entries = group.entries[: self._max_batch_size]
                del group.entries[: self._max_batch_size]
                group.full.clear()
                if len(group.entries) >= self._max_batch_size:
                    group.full.set()
                group.dispatching = bool(group.entries)
                if group.entries:  # what did not fit gets its own dispatch
                    self._start(self._dispatch(key, group))
                elif self._groups.get(key) is group:
                    del self._groups[key]
                live = self._live(entries, asyncio.get_running_loop().time())
                if not live:
                    return
                work = self._queue._submit(self._call, [e.item for e in live])
                for e in live:
                    e.hold.add(work)
                results = await asyncio.wrap_future(work)
        except BaseException as exc:  # the whole batch failed: every waiter hears it
            for e in entries:
                if not e.future.done():
                    e.future.set_exception(exc if isinstance(exc, Exception) else deadline_exceeded())
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for e, result in zip(live, results, strict=True):
            if e.future.done():
                continue
            if isinstance(result, BaseException):
                e.future.set_exception(result)
            else:
                e.future.set_result(result)

    def _live(self, entries: list[_Entry], now: float) -> list[_Entry]:
        """Entries still wanted: not cancelled by their caller and not past their deadline."""
        live = []
        for e in entries:
            if e.future.done():
                continue
            if e.deadline is not None and e.deadline <= now:
                e.future.set_exception(deadline_exceeded())
                continue
            live.append(e)
        return live

    def _call(self, items: list[T]) -> Sequence[R | BaseException]:
        BATCH_SIZE.labels(self._queue.name).observe(len(items))
        results = self._process(items)
        if len(results) != len(items):
            raise RuntimeError(f"batch of {len(items)} returned {len(results)} results")
        return results
