"""edge.http_protocol: a response's head leaves in the same socket write as its body, and nothing else is
held: on the transport itself (what reaches the socket, write by write), and end to end on a raw
keep-alive connection to a running edge. A request's scope carries a future that is set when its client
leaves before the response is complete (what edge.metering watches instead of `receive`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import uvicorn

from edge.http_protocol import DISCONNECT, MAX_HEAD_BYTES, EdgeHTTPProtocol, _HeadWithBody
from tests.support.ports import free_port
from tests.support.raw_http import content_length, read_answer
from tests.support.waiting import eventually


class Socket:
    """What the real transport was asked to write, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def test_a_head_and_its_body_leave_in_one_write():
    socket = Socket()
    transport = _HeadWithBody(socket, asyncio.get_running_loop())
    transport.write(HEAD)
    assert socket.writes == []
    transport.write(b"{}")
    assert socket.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the end of the turn has nothing left to send
    assert socket.writes == [HEAD + b"{}"]


async def test_a_head_without_a_body_in_its_turn_leaves_alone_at_the_end_of_the_turn():
    socket = Socket()
    transport = _HeadWithBody(socket, asyncio.get_running_loop())
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert socket.writes == [HEAD]
    transport.write(b"5\r\nfirst\r\n")  # a stream's events are never held
    transport.write(b"6\r\nsecond\r\n")
    assert socket.writes == [HEAD, b"5\r\nfirst\r\n", b"6\r\nsecond\r\n"]


async def test_close_sends_a_held_head_first_and_the_rest_is_the_real_transport():
    socket = Socket()
    transport = _HeadWithBody(socket, asyncio.get_running_loop())
    transport.write(HEAD)
    transport.close()
    assert (socket.writes, socket.closed) == ([HEAD], True)
    await asyncio.sleep(0)
    assert socket.writes == [HEAD]  # not sent twice
    assert transport.get_extra_info("peername") == "info:peername"


async def test_responses_on_one_keep_alive_connection_arrive_whole_and_in_order(platform):
    port = platform.edge_settings.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for path in ("/healthz", "/v1/models", "/healthz"):
            writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            head, body = await read_answer(reader)
            assert head.startswith(b"HTTP/1.1 200 " if path == "/healthz" else b"HTTP/1.1 401 "), head
            assert body.startswith(b"{")
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def serving(app) -> AsyncIterator[int]:
    """`app` on a real uvicorn server speaking EdgeHTTPProtocol; yields its port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", http=EdgeHTTPProtocol))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_the_disconnect_future_is_set_when_the_client_leaves_and_only_then():
    seen: dict[str, asyncio.Future] = {}

    async def app(scope, receive, send):
        gone = scope["extensions"][DISCONNECT]
        seen[scope["path"]] = gone
        if scope["path"] == "/wait":  # waits for its client to leave, as a model call would run
            await asyncio.wait_for(asyncio.shield(gone), 10)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /answered HTTP/1.1\r\nhost: x\r\n\r\n")  # answered whole on the keep-alive connection
        await asyncio.wait_for(reader.readuntil(b"ok"), 10)
        writer.write(b"GET /wait HTTP/1.1\r\nhost: x\r\n\r\n")
        assert await eventually(lambda: "/wait" in seen, seconds=10)
        assert not seen["/wait"].done()
        writer.close()  # the client leaves while its request waits
        await asyncio.wait_for(asyncio.shield(seen["/wait"]), 10)
        assert not seen["/answered"].done()  # its response was complete: nobody left it


async def test_bytes_that_are_not_http_get_a_400_in_the_error_envelope_and_a_closed_connection(caplog):
    """uvicorn's parser refuses them before any app runs: a body framed both ways (a request-smuggling
    shape), a request line that is not one, a bad header in a read already over the head's bound (one
    answer, the 400, and no error of the server's). The answer is the API's envelope, not uvicorn's plain
    text."""
    called: list[str] = []

    async def app(scope, receive, send):
        called.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    refused = (b"POST /v1/images/edits HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
               b"0\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
               b"GET / HTTP/1.1\r\nbad header\r\nx: " + b"a" * (MAX_HEAD_BYTES + 1024))
    async with serving(app) as port:
        for request in refused:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            answer = await asyncio.wait_for(reader.read(), 10)  # read() to the end: the server closed it
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]
            assert b"content-type: application/json" in head.lower() and b"connection: close" in head.lower()
            error = json.loads(body)["error"]
            assert error["type"] == "invalid_request_error" and error["code"] == "invalid_http_request"
            assert set(error) == {"message", "type", "param", "code"} and "HTTP/1.1" in error["message"]
            assert content_length(head) == len(body)
        # The same server still answers a good request.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /fine HTTP/1.1\r\nhost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 10)).startswith(b"HTTP/1.1 200 ")
        writer.close()
    assert called == ["/fine"]
    assert not [record for record in caplog.records if record.levelname == "ERROR"], caplog.text[-2000:]


async def test_a_request_head_over_the_limit_is_a_431_and_nothing_of_it_stays_in_memory():
    """httptools keeps an unfinished head however long it grows; the protocol stops reading it past
    MAX_HEAD_BYTES. A head just under the limit, sent in pieces and followed by a large body, is served."""
    seen: list[int] = []

    async def app(scope, receive, send):
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen.append(size)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def refused(pieces) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n")
            for piece in pieces:  # more than the limit, never ending the head
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
        except ConnectionError:  # the server closed while this still wrote: what it answered is read below
            pass
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    async with serving(app) as port:
        one_header = [b"x-big: "] + [b"a" * 8192] * 64  # 512 KiB of one header's value
        many_headers = [b"x-h%d: %s\r\n" % (i, b"b" * 1000) for i in range(200)]  # 200 KiB of small ones
        at_once = [b"x-big: " + b"a" * (MAX_HEAD_BYTES + 1024)]  # in one write: one read, likely
        for pieces in (one_header, many_headers, at_once):
            answer = await refused(pieces)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 431 ") and b"connection: close" in head.lower(), answer[:300]
            error = json.loads(body)["error"]
            assert error["code"] == "headers_too_large" and str(MAX_HEAD_BYTES) in error["message"], error
        # Just under the limit, in pieces, then a 1 MiB body: served whole.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        headers = b"".join(b"x-h%d: %s\r\n" % (i, b"c" * 1000) for i in range((MAX_HEAD_BYTES - 2048) // 1010))
        body = b"d" * (1 << 20)
        request = b"POST /fine HTTP/1.1\r\nhost: x\r\n" + headers + b"content-length: %d\r\n\r\n" % len(body) + body
        for start in range(0, len(request), 7000):
            writer.write(request[start:start + 7000])
            await writer.drain()
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 10)).startswith(b"HTTP/1.1 200 ")
        writer.close()
    assert seen == [len(body)]
