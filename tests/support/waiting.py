"""Waiting in tests for something that happens shortly after an action (a generation stopping, a hold
released), without a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(condition: Callable[[], bool | Awaitable[bool]], *, seconds: float, every: float = 0.05) -> bool:
    """Whether `condition()` (a plain or async callable) holds within `seconds`, checked every `every`."""
    deadline = time.monotonic() + seconds
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held or time.monotonic() >= deadline:
            return bool(held)
        await asyncio.sleep(every)
