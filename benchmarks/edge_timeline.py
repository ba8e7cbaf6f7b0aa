"""Where a request's time goes inside the edge: an image edit (priced, b64_json) and a premium chat stream,
one at a time, through a second edge on the real stack (tiny models, credit leases on) whose steps record
when they start and end (benchmarks/timeline_probe: the edge's own code, wrapped from outside), each request
next to the same call made straight to the service. Prints the median time of every step from the request's
arrival at the edge's middleware, and the client's figures: edge and direct, p50.

    .venv/bin/python benchmarks/edge_timeline.py [--requests 60] [--pin-edge]

Each step also shows its own time's p90 and max over the requests (where a slow request's time went).
Read it as a map, not as a figure to report: every mark costs ~1 µs, and the steps' own time in place (caches
cold after the model's call) is several times what they take in a loop. With --pin-edge the probed edge runs
alone on the last core, the rest on the others (as edge_overhead.py --pin-edge). TIMELINE_PROBE names another
probe folder (one whose sitecustomize runs this one's and wraps more steps, to look closer at a stretch).
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator

import grpc
import psutil
from benchmark_stack import EDIT_MODEL, HERE, edit_request, pin_edge, running_stack, side_edge, user_with_key
from lean_http import LeanClient, has_text

from univence.accounts.v1 import accounts_pb2_grpc
from univence.image.v1 import image_pb2, image_pb2_grpc
from univence.llm.v1 import llm_pb2, llm_pb2_grpc

PROBE = os.environ.get("TIMELINE_PROBE") or os.path.join(HERE, "timeline_probe")
PROMPT = "Write a short story about a lighthouse keeper."


async def run(ports: dict[str, int], side: dict[str, int], requests: int, out: str) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['accounts']}") as channel:
        accounts = accounts_pb2_grpc.AccountsServiceStub(channel)
        _, premium = await user_with_key(accounts, "p@example.com", premium=True)
        # The edit is priced for a user without premium (premium work is free), so it is metered.
        _, payer = await user_with_key(accounts, "payer@example.com", credits_mc=10**12)
    picture, edit = edit_request()
    chat = {"model": "x", "messages": [{"role": "user", "content": PROMPT}], "stream": True, "max_tokens": 8,
            "temperature": 0}
    client = LeanClient(side["port"])
    image = image_pb2_grpc.ImageServiceStub(grpc.aio.insecure_channel(f"127.0.0.1:{ports['image']}"))
    llm = llm_pb2_grpc.ChatServiceStub(grpc.aio.insecure_channel(f"127.0.0.1:{ports['llm']}"))
    stream_request = llm_pb2.StreamChatCompletionRequest(messages=[llm_pb2.ChatMessage(
        role=llm_pb2.ROLE_USER, content=[llm_pb2.ContentPart(text=PROMPT)])], max_tokens=8, temperature=0)

    async def edge_edit() -> float:
        started = time.perf_counter()
        await client.request("POST", "/v1/images/edits", {"X-API-Key": payer}, json_body=edit)
        return time.perf_counter() - started

    async def direct_edit() -> float:
        started = time.perf_counter()
        await image.EditImages(image_pb2.EditImagesRequest(model=EDIT_MODEL, prompt=edit["prompt"], n=1, seed=1,
                                                           input_images=[picture], width=64, height=64,
                                                           num_inference_steps=1))
        return time.perf_counter() - started

    async def edge_chat() -> float:
        started = time.perf_counter()
        first = None
        async for data in client.events("/v1/chat/completions", {"X-API-Key": premium}, chat):
            if first is None and data != b"[DONE]" and has_text(json.loads(data)):
                first = time.perf_counter() - started
        return first

    async def direct_chat() -> float:
        started = time.perf_counter()
        first = None
        async for chunk in llm.StreamChatCompletion(stream_request):
            if first is None and any(choice.content for choice in chunk.choices):
                first = time.perf_counter() - started
        return first

    calls = {"edit": (edge_edit, direct_edit), "chat": (edge_chat, direct_chat)}
    for through_edge, direct in calls.values():  # connections, caches, the models' first calls
        for _ in range(5):
            await through_edge()
            await direct()
    os.kill(side["pid"], signal.SIGUSR1)  # the warm-up's marks are dropped
    await asyncio.sleep(0.5)
    client_times: dict[str, tuple[list[float], list[float]]] = {kind: ([], []) for kind in calls}
    for _ in range(requests):
        for kind, (through_edge, direct) in calls.items():
            client_times[kind][0].append(await through_edge())
            client_times[kind][1].append(await direct())
            await asyncio.sleep(0.02)  # as between a client's requests: the edge idles, its caches cool
    os.kill(side["pid"], signal.SIGUSR1)
    await asyncio.sleep(1)
    report(out, client_times)


def report(out: str, client_times: dict[str, tuple[list[float], list[float]]]) -> None:
    """Each kind's steps: the median time from the request's start, and the client's view."""
    requests: dict[str, list[dict[str, float]]] = {}
    current: dict[str, float] | None = None
    with open(out) as marks:
        for line in marks:
            seconds, label = line.split()
            if label.startswith("start:"):
                current = {"start": float(seconds)}
                requests.setdefault(label.removeprefix("start:"), []).append(current)
            elif current is not None and label not in current:
                current[label] = float(seconds)
    for kind, seen in requests.items():
        edge, direct = client_times[kind]
        what = "time to first token" if kind == "chat" else "whole request"
        edge_ms, direct_ms = statistics.median(edge) * 1e3, statistics.median(direct) * 1e3
        print(f"\n== {kind} ({len(seen)} requests; client, {what}: edge {edge_ms:.2f} ms, direct {direct_ms:.2f} ms, "
              f"+{edge_ms - direct_ms:.2f}); step, median from the request's start, + from the step before")
        at = {label: statistics.median(r[label] - r["start"] for r in seen if label in r)
              for label in dict.fromkeys(label for request in seen for label in request)}
        previous, before = 0.0, "start"
        print(f"  {'':15} {'':12}   {'':7}   step's own time, p90 / max ms")
        for label in sorted(at, key=at.__getitem__):
            steps = sorted(r[label] - r[before] for r in seen if label in r and before in r)
            tail = f"{steps[int(len(steps) * 0.9)] * 1e3:7.3f} / {steps[-1] * 1e3:7.3f}" if steps else ""
            print(f"  {label:15} {at[label] * 1e3:9.3f} ms   +{(at[label] - previous) * 1e3:6.3f}   {tail}")
            previous, before = at[label], label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="edits and chat streams, each")
    parser.add_argument("--pin-edge", action="store_true", help="the probed edge alone on the last CPU core")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = os.environ["TIMELINE_OUT"] = os.path.join(folder, "marks")
        with running_stack(("image", "llm"), profile="tiny", env={"UNIVENCE_EDGE_CREDIT_LEASES": "true"}) as ports, \
                probed_edge(ports) as side:
            if os.path.exists(out + ".error"):
                with open(out + ".error") as error:
                    raise SystemExit(f"the probe did not load:\n{error.read()}")
            if args.pin_edge:
                last = psutil.cpu_count() - 1
                pin_edge({**ports, "edge_pid": side["pid"]}, edge_cpus={last}, other_cpus=set(range(last)))
            asyncio.run(run(ports, side, args.requests, out))


@contextlib.contextmanager
def probed_edge(ports: dict[str, int]) -> Iterator[dict[str, int]]:
    """A side edge of the working tree with the probe's folder on its PYTHONPATH (not the services')."""
    with contextlib.ExitStack() as started:
        inherited = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (PROBE, inherited)))
        try:
            side = started.enter_context(side_edge(ports))
        finally:
            if inherited is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = inherited
        yield side

if __name__ == "__main__":
    main()
