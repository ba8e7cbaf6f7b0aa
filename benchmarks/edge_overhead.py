"""Edge overhead: the same work through the edge (HTTP, auth, rate limit, metering, translation, storage)
and straight to the gRPC service, interleaved in one run (each worker makes a direct call and an edge call
in turn, so a shared machine's drift moves both alike), on the real stack (`univence up` processes on
loopback, tiny models), at concurrency 1 and 8:

- a priced image edit: image.EditImages vs POST /v1/images/edits (JSON, b64_json answer);
- a premium chat's time to first token: llm.StreamChatCompletion vs the edge's SSE stream, with the
  stream's tokens/s against gRPC's (over the whole stream, and from its first token: the relay's pace)
  and the edge's CPU per relayed chunk (the edge process's CPU time
  over the row / the chunks it relayed; that includes each request's own work: auth, metering);
- GET /v1/media/{id} vs media.GetMedia (a 64x64 PNG);
- and the platform's own rows: accounts.Authenticate vs GET /v1/models (auth cached, no upstream call),
  and accounts.Reserve + Release (what a per-request hold costs).

    .venv/bin/python benchmarks/edge_overhead.py [--requests 200] [--only chat] [--baseline-src DIR] [--client httpx]

Each design is its own stack, run one after the other in the same process on the same machine:
`--baseline-src DIR` first runs every row on the source tree in DIR (edge/, services/, univence/ of an
earlier commit: `git archive <commit> edge services univence | tar -x -C DIR`), then the working tree;
where the edge has the `credit_leases` setting, the working tree runs with it off and then on. The
summary compares the edge's cost (p50 and p99 over direct) of each design. The figures include the
client and every service on the same cores.

The edit, chat and media rows also go through benchmarks/floor_proxy.py (a raw ASGI app on the edge's
server making the one gRPC call, nothing else), interleaved with the other two: its cost over direct is
what the HTTP hop itself costs on this machine, and the edge's cost over the floor's is the edge's own.

The HTTP rows use a lean keep-alive client (benchmarks/lean_http.py), so that they show the edge's cost
rather than the HTTP client library's; each design also prints what httpx (the `openai` SDK's client)
adds on top, measured in the same run (GET /v1/models with both clients). `--client httpx` runs every
HTTP row with httpx instead.
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import json
import time

import grpc
import httpx
import psutil
from benchmark_stack import ADMIN, EDIT_MODEL, edit_request, floor_proxy, pin_edge, running_stack, user_with_key
from interleaved import Call, OwnTimes, Streams, measure
from lean_http import HttpxClient, LeanClient, LeanHTTP, has_text

from edge.config import EdgeSettings
from univence.accounts.v1 import accounts_pb2 as apb
from univence.accounts.v1 import accounts_pb2_grpc
from univence.image.v1 import image_pb2, image_pb2_grpc
from univence.llm.v1 import llm_pb2, llm_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc

CONCURRENCIES = (1, 8)
HTTPX_ROW = "client: httpx vs lean, /v1/models"


async def run_design(args: argparse.Namespace, ports: dict[str, int], floor: dict[str, int]) -> dict[str, dict]:
    """Every row on one stack; returns {row: {concurrency: {"direct": Figures, "edge": Figures, …}}}, with
    "floor" (benchmarks/floor_proxy.py, `floor`'s port and pid) in the rows it serves."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['accounts']}") as accounts_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['media']}") as media_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['image']}",
                                      options=[("grpc.max_receive_message_length", 64 << 20)]) as image_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['llm']}") as llm_channel, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['edge']}", timeout=120,
                              limits=httpx.Limits(max_keepalive_connections=16)) as http:
        accounts = accounts_pb2_grpc.AccountsServiceStub(accounts_channel)
        media = media_pb2_grpc.MediaServiceStub(media_channel)
        image = image_pb2_grpc.ImageServiceStub(image_channel)
        chat = llm_pb2_grpc.ChatServiceStub(llm_channel)
        lean, floor_lean = LeanClient(ports["edge"]), LeanClient(floor["port"])
        client = HttpxClient(http) if args.client == "httpx" else LeanHTTP(lean)
        floor_client = LeanHTTP(floor_lean)
        user_id, secret = await user_with_key(accounts, "bench@example.com", premium=True)
        # The image edit is priced for a user without premium (premium work is free): its requests are
        # metered (credit leases, or a hold each) and charged; chat is premium-only (and free for them).
        payer_id, payer_secret = await user_with_key(accounts, "payer@example.com", credits_mc=10**12)
        payer_headers = {"X-API-Key": payer_secret}
        edits_answered = 0
        picture, edit = edit_request()
        media_id = (await media.CreateMedia(media_pb2.CreateMediaRequest(
            owner_id=user_id, kind=media_pb2.MEDIA_KIND_IMAGE, mime_type="image/png",
            data=picture))).media.media_id
        headers = {"X-API-Key": secret}
        prompt = "Write a short story about a lighthouse keeper."
        processes = {"edge": psutil.Process(ports["edge_pid"]), "floor": psutil.Process(floor["pid"])}
        streams = {"direct": Streams(), "edge": Streams(processes["edge"]), "floor": Streams(processes["floor"])}
        own = OwnTimes()

        async def direct_auth() -> None:
            await accounts.Authenticate(apb.AuthenticateRequest(credential=secret))

        async def edge_models() -> None:
            await client.get("/v1/models", headers)

        async def httpx_models() -> None:
            (await http.get("/v1/models", headers=headers)).raise_for_status()

        async def lean_models() -> None:
            await lean.request("GET", "/v1/models", headers)

        async def direct_media() -> None:
            async for _ in media.GetMedia(media_pb2.GetMediaRequest(media_id=media_id)):
                pass

        async def edge_media() -> None:
            await client.get(f"/v1/media/{media_id}", {})

        async def floor_media() -> None:
            await floor_client.get(f"/v1/media/{media_id}", {})

        async def direct_metering() -> None:
            hold = (await accounts.Reserve(apb.ReserveRequest(user_id=payer_id, items=[
                apb.ChargeItem(operation=apb.OPERATION_IMAGE_EDIT, model=EDIT_MODEL)]))).hold
            await accounts.Release(apb.ReleaseRequest(hold_id=hold.hold_id))

        async def direct_edit() -> None:
            await image.EditImages(image_pb2.EditImagesRequest(
                model=EDIT_MODEL, prompt=edit["prompt"], input_images=[picture], width=64, height=64,
                num_inference_steps=1, seed=1, n=1))

        async def edge_edit() -> None:
            nonlocal edits_answered
            started = time.perf_counter()
            own.note("edge", started, await client.post("/v1/images/edits", payer_headers, edit))
            edits_answered += 1

        async def floor_edit() -> None:
            started = time.perf_counter()
            own.note("floor", started, await floor_client.post("/v1/images/edits", {}, edit))

        async def direct_chat() -> float:
            started, first, seen = time.perf_counter(), None, streams["direct"]
            async for chunk in chat.StreamChatCompletion(llm_pb2.StreamChatCompletionRequest(
                    messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=[llm_pb2.ContentPart(text=prompt)])],
                    max_tokens=args.max_tokens, temperature=0, include_usage=True)):
                if first is None and any(d.content for d in chunk.choices):
                    first = time.perf_counter()
                seen.chunks += 1
                if chunk.HasField("usage"):
                    seen.tokens += chunk.usage.completion_tokens
            return streamed(seen, started, first)

        chat_body = {"model": "Qwen/Qwen3.5-4B", "messages": [{"role": "user", "content": prompt}], "stream": True,
                     "max_tokens": args.max_tokens, "temperature": 0, "stream_options": {"include_usage": True}}

        async def edge_chat() -> float:
            return await http_chat(client, "edge")

        async def floor_chat() -> float:
            return await http_chat(floor_client, "floor")

        async def http_chat(through: HttpxClient | LeanHTTP, path: str) -> float:
            started, first, seen, head = time.perf_counter(), None, streams[path], {}
            async for data in through.events("/v1/chat/completions", headers, chat_body, head):
                if not data.startswith(b"{"):
                    continue
                if head:  # the first event: the head came with it
                    own.note(path, started, head)
                    head = {}
                seen.chunks += 1
                event = json.loads(data)
                if first is None and has_text(event):
                    first = time.perf_counter()
                if event.get("usage"):
                    seen.tokens += event["usage"]["completion_tokens"]
            return streamed(seen, started, first)

        def streamed(seen: Streams, started: float, first: float | None) -> float:
            """A stream's time to first token (its whole time if none came), its pace counted in `seen`."""
            ended = time.perf_counter()
            seen.streaming += ended - (first or ended)
            return (first or ended) - started

        for _ in range(120):  # the edge learns what the modality services publish shortly after /readyz
            if (await http.post("/v1/images/edits", json=edit, headers=payer_headers)).status_code != 503:
                edits_answered += 1
                break
            await asyncio.sleep(0.5)
        # name, direct, edge, requests per concurrency, and the floor proxy's call where it serves the row
        rows: list[tuple[str, Call, Call, int, Call | None]] = [
            ("image edit 64x64 (b64_json)", direct_edit, edge_edit, args.edits, floor_edit),
            ("chat time to first token", direct_chat, edge_chat, args.chats, floor_chat),
            ("media GET 64x64 PNG", direct_media, edge_media, args.requests, floor_media),
            ("auth: Authenticate vs /v1/models", direct_auth, edge_models, args.requests, None),
            # Not the edge's: what httpx adds over the lean client on the same request.
            (HTTPX_ROW, lean_models, httpx_models, args.requests, None),
        ]
        results: dict[str, dict] = {}
        for name, direct, through_edge, requests, through_floor in rows:
            if args.only and args.only not in name:
                continue
            results[name] = {}
            calls = {"direct": direct, "edge": through_edge, **({"floor": through_floor} if through_floor else {})}
            for concurrency in CONCURRENCIES:
                warmup = max(2, requests // 10)
                def measuring() -> None:
                    own.by_path.clear()
                    streams.update(direct=Streams(), edge=Streams(processes["edge"]),
                                   floor=Streams(processes["floor"]))

                figures = await measure(calls, requests, concurrency, warmup, measuring)
                for path in calls.keys() & processes.keys():
                    if (own_ms := own.figures(path)) is not None:
                        figures[f"{path}_own_ms"] = own_ms
                    # The process's CPU time per request of its run (its own work: on cores it shares
                    # with the services and the client, this is what concurrency turns into queueing).
                    cpu = sum(processes[path].cpu_times()[:2]) - streams[path].cpu
                    figures[f"{path}_cpu_us_per_request"] = cpu * 1e6 / requests
                    if name.startswith("chat"):
                        # Tokens per second of a stream (from request to last token, time to first token
                        # included), over direct's; and the CPU per relayed chunk (SSE event).
                        tok_s = {p: streams[p].tokens / figures[p].seconds for p in ("direct", path)}
                        figures[f"{path}_tok_s_ratio"] = tok_s[path] / max(tok_s["direct"], 1e-9)
                        # The same from each stream's first token to its end: the relay's pace alone.
                        pace = {p: streams[p].tokens / max(streams[p].streaming, 1e-9) for p in ("direct", path)}
                        figures[f"{path}_pace_ratio"] = pace[path] / max(pace["direct"], 1e-9)
                        figures[f"{path}_cpu_us_per_chunk"] = cpu * 1e6 / max(streams[path].chunks, 1)
                results[name][concurrency] = figures
        if any(name.startswith("image edit") for name in results):
            await check_charged(accounts, payer_id, edits_answered)
        if not args.only:
            results["accounts Reserve + Release (gRPC)"] = {c: await measure(
                {"direct": direct_metering}, args.requests, c, warmup=20) for c in CONCURRENCIES}
        await lean.close()
        await floor_lean.close()
        return results


async def check_charged(accounts: accounts_pb2_grpc.AccountsServiceStub, user_id: str, answered: int) -> None:
    """The edits the edge answered were metered: once their charges are in (a lease's go in batches), the
    user's ledger has one charge per edit. Printed, and a mismatch fails the run."""
    charges = 0
    for _ in range(100):
        entries, token = [], ""
        while True:
            page = await accounts.ListLedgerEntries(apb.ListLedgerEntriesRequest(
                user_id=user_id, page_size=1000, page_token=token), metadata=ADMIN)
            entries += page.entries
            if not (token := page.next_page_token):
                break
        charges = sum(entry.kind == "charge" for entry in entries)
        if charges >= answered:
            break
        await asyncio.sleep(0.1)
    print(f"image edits answered through the edge: {answered}, charged: {charges} ledger entries")
    if charges != answered:
        raise SystemExit("the edge's image edits were not each charged once")


def print_design(label: str, results: dict[str, dict]) -> None:
    print(f"\n== {label}")
    print(f"{'row':36} {'conc':>4} {'direct p50':>10} {'p99':>7} {'edge p50':>9} {'p99':>7} "
          f"{'+p50 ms':>8} {'+p99 ms':>8} {'x p50':>6} {'floor +p50':>10}  notes")
    for name, by_concurrency in results.items():
        for concurrency, f in by_concurrency.items():
            direct, edge, floor = f["direct"], f.get("edge"), f.get("floor")
            if edge is None:
                print(f"{name:36} {concurrency:4d} {direct.p50_ms:10.2f} {direct.p99_ms:7.2f}")
                continue
            notes = "; ".join(_notes(f, path) for path in ("edge", "floor") if f"{path}_cpu_us_per_request" in f)
            floor_cell = f"{floor.p50_ms - direct.p50_ms:+10.2f}" if floor is not None else f"{'':10}"
            print(f"{name:36} {concurrency:4d} {direct.p50_ms:10.2f} {direct.p99_ms:7.2f} {edge.p50_ms:9.2f} "
                  f"{edge.p99_ms:7.2f} {edge.p50_ms - direct.p50_ms:+8.2f} {edge.p99_ms - direct.p99_ms:+8.2f} "
                  f"{edge.p50_ms / direct.p50_ms:6.2f} {floor_cell}  {notes}")


def _notes(f: dict, path: str) -> str:
    """A path's own time (client less upstream, see OwnTimes), its CPU per request (and for chat per chunk,
    with its tokens/s over gRPC's)."""
    own = f.get(f"{path}_own_ms")
    notes = f"{path}{f' own {own[0]:.2f} / {own[1]:.2f} ms,' if own else ''} " \
            f"CPU {f[f'{path}_cpu_us_per_request']:.0f} µs/request"
    if f"{path}_tok_s_ratio" in f:
        notes += (f", {f[f'{path}_cpu_us_per_chunk']:.0f} µs/chunk, tokens/s x{f[f'{path}_tok_s_ratio']:.2f}"
                  f" (from the first token x{f[f'{path}_pace_ratio']:.2f})")
    return notes


def print_summary(designs: dict[str, dict[str, dict]]) -> None:
    """The edge's cost over direct (p50 / p99, ms) for every design, one column each; then the floor's."""
    labels = list(designs)
    print("\n== the edge's cost over direct, +p50 / +p99 ms (chat: time to first token; tokens/s ratio, "
          "whole stream / from its first token; CPU per chunk); last column: the floor proxy's, in the last "
          "design's run")
    print(f"{'row':36} {'conc':>4}  " + "  ".join(f"{label:>24}" for label in [*labels, "floor"]))
    first = designs[labels[0]]
    for name, by_concurrency in first.items():
        for concurrency in by_concurrency:
            cells = []
            for label, path in [*((label, "edge") for label in labels), (labels[-1], "floor")]:
                f = designs[label].get(name, {}).get(concurrency, {})
                if path not in f:  # a row measured direct only has its figures in the edge's columns
                    direct = f.get("direct")
                    cells.append(f"{direct.p50_ms:.2f} / {direct.p99_ms:.2f} direct"
                                 if direct is not None and path == "edge" else "")
                    continue
                cell = f"{f[path].p50_ms - f['direct'].p50_ms:+.2f} / {f[path].p99_ms - f['direct'].p99_ms:+.2f}"
                if f"{path}_tok_s_ratio" in f:
                    cell += f" x{f[f'{path}_tok_s_ratio']:.2f}/{f[f'{path}_pace_ratio']:.2f} " \
                            f"{f[f'{path}_cpu_us_per_chunk']:.0f}µs"
                cells.append(cell)
            print(f"{name:36} {concurrency:4d}  " + "  ".join(f"{cell:>24}" for cell in cells))
    print("\n== client time less the service's (Server-Timing upstream), p50 / p99 ms: what the hop and the "
          "edge's code add, whatever the model took or queued (chat: to the first event)")
    print(f"{'row':36} {'conc':>4}  " + "  ".join(f"{label:>24}" for label in [*labels, "floor"]))
    for name, by_concurrency in first.items():
        for concurrency in by_concurrency:
            owns = [designs[label].get(name, {}).get(concurrency, {}).get(f"{path}_own_ms")
                    for label, path in [*((label, "edge") for label in labels), (labels[-1], "floor")]]
            if any(owns):
                print(f"{name:36} {concurrency:4d}  " + "  ".join(
                    f"{f'{own[0]:.2f} / {own[1]:.2f}' if own else '':>24}" for own in owns))


PINNED = "(the edge on the last core, from 4 cores the floor proxy on the one before it, the rest on the others)"


def pin(ports: dict[str, int], floor_pid: int) -> None:
    """--pin-edge: the edge alone on the last core, and with 4 cores or more the floor proxy alone on the one
    before it, so that the two HTTP hops are compared on a core each; the services and the client share the
    rest (on 2 cores, the floor proxy with them)."""
    count = psutil.cpu_count()
    last = count - 1
    if count >= 4:
        pin_edge(ports, edge_cpus={last}, other_cpus=set(range(last - 1)), alone={floor_pid: {last - 1}})
    else:
        pin_edge(ports, edge_cpus={last}, other_cpus=set(range(last)), alone={floor_pid: set(range(last))})


def designs(args: argparse.Namespace) -> list[tuple[str, dict[str, str], str | None]]:
    """(label, extra settings, source tree) of every design this run measures, the baseline first."""
    runs: list[tuple[str, dict[str, str], str | None]] = []
    if args.baseline_src:
        runs.append(("baseline", {}, args.baseline_src))
    if "credit_leases" in EdgeSettings.model_fields:
        runs.append(("now, leases off", {"UNIVENCE_EDGE_CREDIT_LEASES": "false"}, None))
        runs.append(("now, leases on", {"UNIVENCE_EDGE_CREDIT_LEASES": "true"}, None))
    else:
        runs.append(("now", {}, None))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="media and auth requests per row and concurrency")
    parser.add_argument("--edits", type=int, default=40, help="image edits per concurrency")
    parser.add_argument("--chats", type=int, default=16, help="chat streams per concurrency")
    parser.add_argument("--max-tokens", type=int, default=32, help="completion tokens per chat stream")
    parser.add_argument("--client", choices=("lean", "httpx"), default="lean", help="the HTTP rows' client")
    parser.add_argument("--pin-edge", action="store_true",
                        help="the edge alone on the last CPU core (and from 4 cores the floor proxy alone on the one "
                             "before), everything else (services, this client) on the others")
    parser.add_argument("--only", help="only the rows whose name holds this (e.g. chat)")
    parser.add_argument("--baseline-src", help="a source tree (edge/, services/, univence/) measured first")
    args = parser.parse_args()
    measured: dict[str, dict[str, dict]] = {}
    print(f"stack on loopback, tiny models, {psutil.cpu_count()} CPU cores " +
          (PINNED if args.pin_edge else "shared by client, edge and services"))
    for label, env, source in designs(args):
        try:
            with running_stack(("image", "llm"), profile="tiny", env=env, source=source) as ports, \
                    floor_proxy(ports) as floor:
                if args.pin_edge:
                    pin(ports, floor["pid"])
                measured[label] = asyncio.run(run_design(args, ports, floor))
        except (httpx.HTTPError, grpc.aio.AioRpcError) as exc:  # one design failing still shows the others
            print(f"\n== {label}: failed: {exc!r}")
            continue
        print_design(label, measured[label])
    if len(measured) > 1:
        print_summary(measured)


if __name__ == "__main__":
    main()
