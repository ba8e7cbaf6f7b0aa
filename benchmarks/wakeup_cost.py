"""What a reader's process spends to receive one small message, by how long it waited for it: over a plain
asyncio socket (uvloop, as the edge's server runs) and as one message of a gRPC server stream (grpc.aio, as
the edge reads a chat's chunks), with the messages sent back to back and then 1 ms and 5 ms apart.

Why: edge_overhead.py reports the edge's CPU time per relayed chunk, ~0.5 ms on the 2-core VM for the edge
and the floor proxy alike. That is mostly this machine's cost of waking a process that had gone idle (a
tiny model's chunks come ~6 ms apart), not the relay's code: the same message costs several times more
CPU when it comes after an idle pause than back to back. This prints both, side by side, in one run.

    .venv/bin/python benchmarks/wakeup_cost.py [--messages 300]   # ~20 s

The senders run in a child process (a plain asyncio server, and a grpc.aio server streaming
`StreamChatCompletionResponse`s of one short delta each); the reader's CPU is its own process time.
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import multiprocessing
import sys
import time

import grpc
import uvloop
from benchmark_stack import free_port

from univence.llm.v1 import llm_pb2, llm_pb2_grpc

GAPS_MS = (0.0, 1.0, 5.0)
_CHUNK = llm_pb2.StreamChatCompletionResponse(id="chatcmpl-x", model="m", choices=[llm_pb2.ChoiceDelta(content="tok")])


class Streamer(llm_pb2_grpc.ChatServiceServicer):
    async def StreamChatCompletion(self, request, context):
        # max_tokens: how many messages; temperature: the pause between them, in seconds.
        for _ in range(request.max_tokens):
            if request.temperature:
                await asyncio.sleep(request.temperature)
            yield _CHUNK


async def _serve(socket_port: int, grpc_port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count, gap = (await reader.readline()).split()
        for _ in range(int(count)):
            if float(gap):
                await asyncio.sleep(float(gap))
            writer.write(b"x" * 60 + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", socket_port)
    streams = grpc.aio.server()
    llm_pb2_grpc.add_ChatServiceServicer_to_server(Streamer(), streams)
    streams.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await streams.start()
    async with server:
        await server.serve_forever()


def _senders(socket_port: int, grpc_port: int) -> None:
    uvloop.run(_serve(socket_port, grpc_port))


async def _socket_messages(port: int, count: int, gap: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{count} {gap}\n".encode())
    received = 0
    while await reader.readline():
        received += 1
    writer.close()
    return received


async def stream_messages(stub: llm_pb2_grpc.ChatServiceStub, count: int, gap: float) -> int:
    received = 0
    async for _ in stub.StreamChatCompletion(llm_pb2.StreamChatCompletionRequest(max_tokens=count, temperature=gap)):
        received += 1
    return received


async def _measure(socket_port: int, grpc_port: int, count: int) -> dict[str, dict[float, float]]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = llm_pb2_grpc.ChatServiceStub(channel)
        await stream_messages(stub, 20, 0)  # the channel connected, the first call's costs paid
        await _socket_messages(socket_port, 20, 0)
        cpu: dict[str, dict[float, float]] = {"socket": {}, "grpc stream": {}}
        for gap_ms in GAPS_MS:
            for name, read in (("socket", lambda g: _socket_messages(socket_port, count, g)),
                               ("grpc stream", lambda g: stream_messages(stub, count, g))):
                started = time.process_time()
                received = await read(gap_ms / 1e3)
                cpu[name][gap_ms] = (time.process_time() - started) / received * 1e6
        return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="messages per measurement")
    args = parser.parse_args()
    socket_port, grpc_port = free_port(), free_port()
    senders = multiprocessing.get_context("spawn").Process(target=_senders, args=(socket_port, grpc_port), daemon=True)
    senders.start()
    try:
        time.sleep(2)  # the servers are up
        cpu = uvloop.run(_measure(socket_port, grpc_port, args.messages))
    finally:
        senders.kill()
    print(f"the reader's CPU per message received (µs), {args.messages} messages each, "
          f"by the pause before each; x: over back to back")
    print(f"{'reader':<14}" + "".join(f"{f'{gap:g} ms apart':>22}" for gap in GAPS_MS))
    for name, by_gap in cpu.items():
        base = by_gap[GAPS_MS[0]]
        print(f"{name:<14}" + "".join(f"{f'{by_gap[gap]:.0f} (x{by_gap[gap] / base:.1f})':>22}" for gap in GAPS_MS))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
