"""A lean HTTP/1.1 client for the benchmarks: keep-alive connections over asyncio streams, one request at a
time per connection, Content-Length and chunked answers, and an SSE reader. Nothing else.

Why not httpx: on these 2 cores httpx spends ~0.8 ms of the client's own CPU on every request (a GET of
/healthz: 1.24 ms p50 with httpx, 0.41 ms with this client, same edge), which is the client library's
cost, not the edge's. The edge-overhead benchmark measures the edge with this client and reports the
httpx figure beside it, so what an `openai`-SDK user sees is not hidden either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping

import httpx


def has_text(event: dict) -> bool:
    """Whether a `chat.completion.chunk` event carries text: a first token, for the benchmarks' rows that
    time one (the first event of a stream is the assistant's role, with empty content)."""
    return any(choice.get("delta", {}).get("content") for choice in event.get("choices", ()))


class HTTPStatusError(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        lines = [f"{method} {path} HTTP/1.1", "host: bench"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method == "POST":
            lines.append(f"content-length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def head(self) -> tuple[int, dict[str, str]]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw[:-4].decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split(" ", 2)[1]), headers

    async def chunks(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The body as it arrives: chunk by chunk when chunked, else in one piece."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    return
                data = await self.reader.readexactly(size + 2)
                yield data[:-2]
        else:
            yield await self.reader.readexactly(int(headers.get("content-length", "0")))


class LeanClient:
    """Keep-alive connections to one host:port, reused across requests (as many as run at once)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self._idle: list[_Connection] = []

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        while self._idle and self._idle[-1].reader.at_eof():  # closed by the server while idle (keep-alive timeout)
            self._idle.pop().writer.close()
        conn = self._idle.pop() if self._idle else _Connection(*await asyncio.open_connection(self.host, self.port))
        try:
            yield conn
        except BaseException:
            conn.writer.close()  # mid-answer: the connection's state is unknown
            raise
        self._idle.append(conn)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                      json_body: object = None) -> bytes:
        """The answer's body; raises HTTPStatusError for a status other than 200."""
        return (await self.exchange(method, path, headers, body, json_body))[1]

    async def exchange(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
                       json_body: object = None) -> tuple[dict[str, str], bytes]:
        """The answer's headers (names in lower case) and body; raises HTTPStatusError for a status other
        than 200."""
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["content-type"] = "application/json"
        async with self._connection() as conn:
            await conn.send(method, path, headers, body)
            status, answer_headers = await conn.head()
            data = b"".join([piece async for piece in conn.chunks(answer_headers)])
        if status != 200:
            raise HTTPStatusError(status, data)
        return answer_headers, data

    async def events(self, path: str, headers: dict[str, str], json_body: object,
                     answer_headers: dict[str, str] | None = None) -> AsyncIterator[bytes]:
        """POST `json_body`, then the `data: …` payloads of the server-sent events as they arrive; the
        answer's headers are put in `answer_headers` when given."""
        headers = {**headers, "content-type": "application/json"}
        async with self._connection() as conn:
            await conn.send("POST", path, headers, json.dumps(json_body).encode())
            status, head = await conn.head()
            if answer_headers is not None:
                answer_headers.update(head)
            if status != 200:
                raise HTTPStatusError(status, b"".join([p async for p in conn.chunks(head)]))
            pending = b""
            async for piece in conn.chunks(head):
                pending += piece
                *events, pending = pending.split(b"\n\n")
                for event in events:
                    for line in event.split(b"\n"):
                        if line.startswith(b"data: "):
                            yield line[6:]

    async def close(self) -> None:
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()


class HttpxClient:
    """The edge-overhead benchmark's HTTP calls through httpx (its `--client httpx`)."""

    def __init__(self, http: httpx.AsyncClient):
        self.http = http

    async def get(self, path: str, headers: dict[str, str]) -> None:
        (await self.http.get(path, headers=headers)).raise_for_status()

    async def post(self, path: str, headers: dict[str, str], body: object) -> Mapping[str, str]:
        """The answer's headers."""
        response = await self.http.post(path, json=body, headers=headers)
        response.raise_for_status()
        return response.headers

    async def events(self, path: str, headers: dict[str, str], body: object,
                     answer_headers: dict[str, str] | None = None) -> AsyncIterator[bytes]:
        async with self.http.stream("POST", path, json=body, headers=headers) as response:
            response.raise_for_status()
            if answer_headers is not None:
                answer_headers.update(response.headers)
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    yield line[6:].encode()


class LeanHTTP:
    """The same calls through LeanClient (the default)."""

    def __init__(self, lean: LeanClient):
        self.lean = lean

    async def get(self, path: str, headers: dict[str, str]) -> None:
        await self.lean.request("GET", path, headers)

    async def post(self, path: str, headers: dict[str, str], body: object) -> Mapping[str, str]:
        """The answer's headers."""
        return (await self.lean.exchange("POST", path, headers, json_body=body))[0]

    def events(self, path: str, headers: dict[str, str], body: object,
               answer_headers: dict[str, str] | None = None) -> AsyncIterator[bytes]:
        return self.lean.events(path, headers, body, answer_headers)
