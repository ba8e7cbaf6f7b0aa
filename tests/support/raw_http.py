"""HTTP/1.1 answers read off a raw connection, for tests that must send what no HTTP client would."""

from __future__ import annotations

import asyncio


def content_length(head: bytes) -> int:
    """The Content-Length of a response head (its status line and headers, as bytes)."""
    return next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))


async def read_answer(reader: asyncio.StreamReader, timeout: float = 10) -> tuple[bytes, bytes]:
    """One response with a Content-Length: (its head with the blank line, its body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    return head, await asyncio.wait_for(reader.readexactly(content_length(head)), timeout)
