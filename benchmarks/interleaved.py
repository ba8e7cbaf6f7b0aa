"""Measuring several paths to the same work side by side, as benchmarks/edge_overhead.py does: interleaved
calls (each worker makes one call of every path in turn, so a shared machine's drift moves them alike), their
p50/p99, and what the answers say of the service's own time (OwnTimes) and the streams relayed (Streams)."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import psutil

Call = Callable[[], Awaitable[float | None]]  # one request; its time to first token, or None: the whole call


@dataclass
class Figures:
    p50_ms: float
    p99_ms: float
    rps: float  # requests per second while this path's calls ran
    seconds: float  # the time spent in this path's calls, all workers together


async def measure(calls: dict[str, Call], requests: int, concurrency: int, warmup: int,
                  measuring: Callable[[], None] = lambda: None) -> dict[str, Figures]:
    """p50/p99 of `requests` calls of each path in `calls` (a call's own first-token time if it returns
    one, else its whole time) from `concurrency` workers, the paths interleaved: each worker makes one call
    of every path in turn (the order alternating), so both paths run under the same conditions, and a
    machine that slows down or speeds up during the row (a shared VM does) moves both alike. `measuring`
    is called once the warm-up is done."""
    names = list(calls)
    for _ in range(warmup):  # connections, caches, the first model call
        for name in names:
            await calls[name]()
    measuring()
    latencies: dict[str, list[float]] = {name: [] for name in names}
    busy: dict[str, float] = dict.fromkeys(names, 0.0)
    remaining = requests

    async def worker(index: int) -> None:
        nonlocal remaining
        turn, shuffled = 0, random.Random(index)
        while remaining > 0:
            remaining -= 1
            turn += 1
            order = shuffled.sample(names, len(names)) if concurrency > 1 else (names if turn % 2 else names[::-1])
            for name in order:
                started = time.perf_counter()
                first = await calls[name]()
                took = time.perf_counter() - started
                busy[name] += took
                latencies[name].append(first if first is not None else took)

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    figures = {}
    for name, values in latencies.items():
        values.sort()
        figures[name] = Figures(statistics.median(values) * 1e3, p99(values) * 1e3,
                                len(values) / busy[name] * concurrency, busy[name])
    return figures


def p99(ordered: list[float]) -> float:
    """The 99th percentile of sorted values (of fewer than 100: the largest but one)."""
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


UPSTREAM = re.compile(r'upstream;desc="[a-z]+";dur=([0-9.]+)')


class OwnTimes:
    """Per request of a path, the client's time less the service's time the answer reports (the edge's
    `Server-Timing: upstream;dur=`, which the floor proxy sends too): what the hop and the edge's own code
    added, whatever the model took or how long the request queued for it, so it reads at concurrency 8 and
    through an edit's ±10 ms alike. A chat's is its first event's: the head leaves with it, timed to the
    service's first chunk. Trees without the header (the baseline) have none."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[float]] = {}

    def note(self, path: str, started: float, headers: Mapping[str, str]) -> None:
        if found := UPSTREAM.search(headers.get("server-timing", "")):
            took_ms = (time.perf_counter() - started) * 1e3
            self.by_path.setdefault(path, []).append(took_ms - float(found[1]))

    def figures(self, path: str) -> tuple[float, float] | None:
        """p50 and p99 (ms) of what was noted for `path`, or None."""
        values = sorted(self.by_path.get(path, ()))
        return (statistics.median(values), p99(values)) if values else None


class Streams:
    """Counts what the chat rows stream after their warm-up: completion tokens, the chunks (SSE events)
    the edge relayed, with the edge's CPU time from then, and `streaming`: the seconds from each stream's
    first token to its end (its pace once it runs, without the wait for the model)."""

    def __init__(self, process: psutil.Process | None = None) -> None:
        self.process = process
        self.cpu = sum(process.cpu_times()[:2]) if process is not None else 0.0
        self.tokens = 0
        self.chunks = 0
        self.streaming = 0.0
