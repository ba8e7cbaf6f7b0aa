"""Work the edge starts and may not await: a request's call that runs beside its Reserve (edge.serving), a
lease asked for ahead (edge.leases), a service's published answer renewed ahead (edge.catalog), a job's run
whose synchronous waiter may be gone (edge.jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def started(work: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    """`work` running already, as a task whose failure is retrieved whether or not anyone awaits it (a hold
    refused meanwhile, a renewal nobody waited for): whoever does await it still gets the failure, and one
    nobody awaits is not logged as "never retrieved" (the work reports its own where it matters)."""
    task = asyncio.get_running_loop().create_task(work, name=name)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task
