"""Edge A/B: the edge's CPU time per request of two source trees, measured side by side on one stack.

Two edge processes, one from `--baseline-src DIR` (an earlier tree: `git archive <commit> edge services
univence | tar -x -C DIR`) and one from the working tree, serve the same services with the same settings
(benchmark_stack.side_edge). Each row sends blocks of requests to one edge then the other, in alternating
order, one request at a time, and sums each edge process's CPU time (every thread) over its own blocks.
On a shared VM whose speed drifts by 2x within an hour, two runs one after the other cannot show a 10 %
change; blocks interleaved within seconds can. Rows: GET /v1/models (auth cached), GET /v1/media/{id} (a
64x64 PNG), a priced image edit (b64_json, a user without premium, so it is metered), a premium chat
stream (`--max-tokens`, 32 by default), and `ttft`: the same stream, its latency taken at its first token.

    .venv/bin/python benchmarks/edge_ab.py --baseline-src /tmp/base [--rounds 8] [--only media,chat]   # ~4 min
    .venv/bin/python benchmarks/edge_ab.py --baseline-src . --baseline-env GRPC_EXPERIMENTS=   # a setting

It prints, per row, each edge's CPU per request and p50 latency, its "own" p50 where the answer says the
service's time (edit, generate, ttft: the client's time less Server-Timing's upstream, so the model's
time does not blur it; a tree without the header has none), and the ratio of their CPU (now/base).
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import grpc
import psutil
from benchmark_stack import edit_request, running_stack, side_edge, user_with_key
from interleaved import OwnTimes
from lean_http import HTTPStatusError, LeanClient, has_text

from univence.accounts.v1 import accounts_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc

# A priced generation, as small as the tiny image model makes one.
GENERATION = {"prompt": "a fox", "image_size": "256x256", "num_inference_steps": 1, "seed": 1}
# Requests per block of each row (a chat is a stream: fewer of them).
BLOCK = {"models": 50, "media": 50, "edit": 10, "generate": 10, "chat": 6, "ttft": 6}


async def run(args: argparse.Namespace, ports: dict[str, int], edges: dict[str, dict[str, int]]) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['accounts']}") as accounts_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['media']}") as media_channel:
        accounts = accounts_pb2_grpc.AccountsServiceStub(accounts_channel)
        media = media_pb2_grpc.MediaServiceStub(media_channel)
        premium_id, premium = await user_with_key(accounts, "ab@example.com", premium=True)
        _, payer = await user_with_key(accounts, "payer@example.com", credits_mc=10**12)
        picture, edit = edit_request()
        media_id = (await media.CreateMedia(media_pb2.CreateMediaRequest(
            owner_id=premium_id, kind=media_pb2.MEDIA_KIND_IMAGE, mime_type="image/png",
            data=picture))).media.media_id
    chat = {"model": "Qwen/Qwen3.5-4B", "messages": [{"role": "user", "content": "Write a short story."}],
            "stream": True, "max_tokens": args.max_tokens, "temperature": 0}

    def rows(client: LeanClient, own: OwnTimes) -> dict[str, Callable[[], Awaitable[object]]]:
        """Each row's call on one edge; those whose answer says the service's time note their own (the
        client's time less it: interleaved.OwnTimes) in `own`."""
        async def stream() -> None:
            async for _ in client.events("/v1/chat/completions", {"X-API-Key": premium}, chat):
                pass

        async def first_token() -> float:
            """The whole stream, timed to its first event with text (the latency `ttft` reports); its own
            time is its first event's."""
            started, first, head, noted = time.perf_counter(), None, {}, False
            async for data in client.events("/v1/chat/completions", {"X-API-Key": premium}, chat, head):
                if not noted:
                    own.note("ttft", started, head)
                    noted = True
                if first is None and data.startswith(b"{") and has_text(json.loads(data)):
                    first = time.perf_counter() - started
                    own.note("token", started, head)  # the same, to the first token
            return first if first is not None else time.perf_counter() - started

        async def priced(row: str, path: str, body: dict) -> None:
            started = time.perf_counter()
            headers, _ = await client.exchange("POST", path, {"X-API-Key": payer}, json_body=body)
            own.note(row, started, headers)

        return {"models": lambda: client.request("GET", "/v1/models", {"X-API-Key": premium}),
                "media": lambda: client.request("GET", f"/v1/media/{media_id}"),
                "edit": lambda: priced("edit", "/v1/images/edits", edit),
                "generate": lambda: priced("generate", "/v1/images/generations", GENERATION),
                "chat": stream, "ttft": first_token}

    clients = {name: LeanClient(edge["port"]) for name, edge in edges.items()}
    processes = {name: psutil.Process(edge["pid"]) for name, edge in edges.items()}
    owns = {name: OwnTimes() for name in edges}
    calls = {name: rows(client, owns[name]) for name, client in clients.items()}
    for name in edges:  # each edge learns what the modality services publish shortly after it starts
        for _ in range(240):
            try:
                await calls[name]["edit"]()
                break
            except HTTPStatusError as error:
                if error.status != 503:
                    raise
                await asyncio.sleep(0.5)
    print(f"{'row':7} " + "  ".join(f"{name + ' CPU µs/req':>18} {'p50 ms':>8} {'own p50':>8}" for name in edges)
          + "  CPU now/base")
    for row in (args.only.split(",") if args.only else BLOCK):
        cpu = dict.fromkeys(edges, 0.0)
        for own in owns.values():
            own.by_path.clear()
        latencies: dict[str, list[float]] = {name: [] for name in edges}
        for round_ in range(args.rounds):
            for name in (list(edges) if round_ % 2 == 0 else list(edges)[::-1]):
                call = calls[name][row]
                await call()  # its connection warm
                before = sum(processes[name].cpu_times()[:2])
                for _ in range(BLOCK[row]):
                    started = time.perf_counter()
                    timed = await call()  # a float: the call's own latency (ttft: to the first token)
                    latencies[name].append(timed if isinstance(timed, float) else time.perf_counter() - started)
                cpu[name] += sum(processes[name].cpu_times()[:2]) - before
        cells = []
        for name in edges:
            own_ms, p50_ms = owns[name].figures(row), statistics.median(latencies[name]) * 1e3
            token_ms = owns[name].figures("token") if row == "ttft" else None
            cells.append(f"{cpu[name] / len(latencies[name]) * 1e6:18.0f} {p50_ms:8.2f} "
                         + (f"{own_ms[0]:8.2f}" if own_ms else f"{'':8}")
                         + (f" (to the token {token_ms[0]:.2f})" if token_ms else ""))
        print(f"{row:7} " + "  ".join(cells) + f"  x{cpu['now'] / max(cpu['base'], 1e-9):.2f}", flush=True)
    for client in clients.values():
        await client.close()


def environment_setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` (VALUE may be empty) as argparse's type for --baseline-env."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (NAME= for an empty value)")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", required=True, help="the tree (edge/, services/, univence/) to compare")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="NAME=VALUE",
                        type=environment_setting,
                        help="an environment variable of the baseline edge alone (repeatable); with --baseline-src "
                             "`.` it compares a setting, e.g. GRPC_EXPERIMENTS= (gRPC's default transport)")
    parser.add_argument("--rounds", type=int, default=8, help="blocks of each row per edge")
    parser.add_argument("--max-tokens", type=int, default=32, help="completion tokens per chat stream")
    parser.add_argument("--only", help="rows to run, comma-separated (models, media, edit, generate, chat, ttft)")
    args = parser.parse_args()
    print(f"two edges on one stack (tiny models, loopback), {psutil.cpu_count()} CPU cores shared by all")
    with running_stack(("image", "llm"), profile="tiny") as ports, \
            side_edge(ports, args.baseline_src, env=dict(args.baseline_env)) as base, \
            side_edge(ports) as now:
        asyncio.run(run(args, ports, {"base": base, "now": now}))


if __name__ == "__main__":
    main()
