"""Work the edge starts and may not await: a request's call that runs beside its Reserve (edge.serving), a
lease asked for ahead (edge.leases), a service's published answer renewed ahead (edge.catalog)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def started(work: Awaitable[T]) -> asyncio.Task[T]:
    """`work` running already, as a task whose failure is retrieved whether or not anyone awaits it (a hold
    refused meanwhile, a renewal nobody waited for): whoever does await it still gets the failure, and one
    nobody awaits is not logged as "never retrieved" (the work reports its own where it matters)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task
