"""gRPC's transport as univence sets it (univence.transport.GRPC_EXPERIMENTS: the sockets of grpcio before 1.80) against
gRPC's default (the EventEngine's), side by side: a unary round trip (grpc.health Check: its p50, and the CPU
of the calling and the serving process per call) and a server stream's messages 1 ms apart (a tiny model's
tokens come a few ms apart; the reader's CPU per message, what the edge pays per relayed chunk).

Why: gRPC reads GRPC_EXPERIMENTS once per process, when grpc is imported, so each setting runs in processes
of its own: a server and a client per round, for each setting in turn, rounds alternating which goes first
(the VM's speed drifts within minutes). Every process of the stack, and the edge's client calls, use
univence's setting; this prints what that saves.

    .venv/bin/python benchmarks/grpc_transport.py [--rounds 4] [--calls 2000]   # ~1 min
"""

from __future__ import annotations

import univence.transport  # before grpc: gRPC's transport, as the stack's processes have it

# isort: split
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import grpc
import uvloop
from benchmark_stack import free_port
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from wakeup_cost import Streamer, stream_messages

from univence.llm.v1 import llm_pb2_grpc

SETTINGS = {"gRPC's default": "", "univence's": univence.transport.GRPC_EXPERIMENTS}
STREAM_MESSAGES, STREAM_GAP = 200, 0.001


async def _serve(port: int) -> None:
    """Serves until stdin closes, then prints its CPU time (s)."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    llm_pb2_grpc.add_ChatServiceServicer_to_server(Streamer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    started = time.process_time()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print(time.process_time() - started, flush=True)


async def _call(port: int, calls: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        checks, streams = health_pb2_grpc.HealthStub(channel), llm_pb2_grpc.ChatServiceStub(channel)
        request = health_pb2.HealthCheckRequest()
        for _ in range(200):  # connected, the first calls' costs paid
            await checks.Check(request)
        latencies, started = [], time.process_time()
        for _ in range(calls):
            sent = time.perf_counter()
            await checks.Check(request)
            latencies.append(time.perf_counter() - sent)
        unary_cpu = (time.process_time() - started) / calls
        started, received = time.process_time(), 0
        for _ in range(max(1, calls // 400)):
            received += await stream_messages(streams, STREAM_MESSAGES, STREAM_GAP)
        return {"p50": statistics.median(latencies), "client": unary_cpu,
                "message": (time.process_time() - started) / received}


def _round(experiments: str, calls: int) -> dict[str, float]:
    """One server and one client process with GRPC_EXPERIMENTS=`experiments`: their figures."""
    env = {**os.environ, "GRPC_EXPERIMENTS": experiments}
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        server.stdout.readline()
        client = subprocess.run([sys.executable, __file__, "--call", str(port), "--calls", str(calls)], env=env,
                                capture_output=True, text=True, check=True)
        figures = json.loads(client.stdout)
        server.stdin.close()
        # The server's CPU counts the streams too: per unary call it is read as an upper bound.
        figures["server"] = float(server.stdout.readline()) / (calls + 200)
        return figures
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=2000, help="unary calls per round")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--call", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return uvloop.run(_serve(args.serve))
    if args.call:
        return print(json.dumps(uvloop.run(_call(args.call, args.calls))))
    print(f"grpcio {grpc.__version__}, {os.cpu_count()} CPU cores; medians of {args.rounds} rounds")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    for index in range(args.rounds):
        order = list(SETTINGS) if index % 2 == 0 else list(reversed(SETTINGS))
        for name in order:
            results[name].append(_round(SETTINGS[name], args.calls))
    median = {name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
              for name, rounds in results.items()}
    default, ours = median["gRPC's default"], median["univence's"]
    print(f"{'':28}{'default':>10}{'univence':>10}{'ratio':>8}")
    for key, label in (("p50", "unary round trip p50 (µs)"), ("client", "  caller's CPU per call (µs)"),
                       ("server", "  server's CPU per call (µs)"), ("message", "stream reader CPU/message (µs)")):
        print(f"{label:28}{default[key] * 1e6:10.0f}{ours[key] * 1e6:10.0f}{ours[key] / default[key]:8.2f}")


if __name__ == "__main__":
    main()
