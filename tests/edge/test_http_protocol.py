"""edge.http_protocol: a response's head leaves in the same socket write as its body, and nothing else is
held: on the transport itself (what reaches the socket, write by write), and end to end on a raw
keep-alive connection to a running edge."""

from __future__ import annotations

import asyncio

from edge.http_protocol import _HeadWithBody


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
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            assert head.startswith(b"HTTP/1.1 200 " if path == "/healthz" else b"HTTP/1.1 401 "), head
            assert body.startswith(b"{")
    finally:
        writer.close()
