"""Edge overhead: the same work through the edge (HTTP, auth, rate limit, translation) and straight to
the gRPC service, in one run, on the real stack (`univence up` processes on loopback).

    .venv/bin/python benchmarks/edge_overhead.py [--requests 2000] [--concurrency 8]

Prints p50/p99 latency for each path and the edge's cost as the difference and the ratio to the
direct gRPC call measured in the same run. The figures include the client on the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
from collections.abc import Awaitable, Callable

import grpc
import httpx
from benchmark_stack import running_stack
from PIL import Image

from univence.accounts.v1 import accounts_pb2 as apb
from univence.accounts.v1 import accounts_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc


async def measure(fn: Callable[[], Awaitable[object]], requests: int, concurrency: int) -> dict[str, float]:
    for _ in range(50):  # warm up connections and caches
        await fn()
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await fn()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"p50_ms": statistics.median(latencies) * 1e3, "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
            "rps": len(latencies) / elapsed}


async def run(requests: int, concurrency: int, ports: dict[str, int]) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['accounts']}") as accounts_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['media']}") as media_channel, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['edge']}",
                              limits=httpx.Limits(max_keepalive_connections=concurrency)) as http:
        accounts = accounts_pb2_grpc.AccountsServiceStub(accounts_channel)
        media = media_pb2_grpc.MediaServiceStub(media_channel)
        user = (await accounts.CreateUser(apb.CreateUserRequest(email="bench@example.com"))).user
        secret = (await accounts.CreateApiKey(apb.CreateApiKeyRequest(user=user.user_id))).secret
        await accounts.GrantCredits(apb.GrantCreditsRequest(user=user.user_id, amount_mc=10**12))
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 120, 200)).save(buffer, format="PNG")
        media_id = (await media.CreateMedia(media_pb2.CreateMediaRequest(
            owner_id=user.user_id, kind=media_pb2.MEDIA_KIND_IMAGE, mime_type="image/png",
            data=buffer.getvalue()))).media.media_id
        headers = {"X-API-Key": secret}

        async def direct_auth():
            await accounts.Authenticate(apb.AuthenticateRequest(credential=secret))

        async def edge_models():
            (await http.get("/v1/models", headers=headers)).raise_for_status()

        async def direct_media():
            async for _ in media.GetMedia(media_pb2.GetMediaRequest(media_id=media_id)):
                pass

        async def edge_media():
            (await http.get(f"/v1/media/{media_id}")).raise_for_status()

        async def direct_metering():
            hold = (await accounts.Reserve(apb.ReserveRequest(user_id=user.user_id, items=[
                apb.ChargeItem(operation=apb.OPERATION_IMAGE_EDIT)]))).hold
            await accounts.Release(apb.ReleaseRequest(hold_id=hold.hold_id))

        rows = [
            ("accounts.Authenticate (gRPC, the edge's uncached auth)", direct_auth, None),
            ("GET /v1/models (edge: auth cached, no upstream call)", edge_models, direct_auth),
            ("media.GetMedia 64x64 PNG (gRPC)", direct_media, None),
            ("GET /v1/media/{id} (edge → media)", edge_media, direct_media),
            ("accounts.Reserve + Release (gRPC, metering round trips)", direct_metering, None),
        ]
        results: dict[str, dict[str, float]] = {}
        print(f"{requests} requests per row, concurrency {concurrency}, stack on loopback (2 cores shared)")
        print(f"{'path':60} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}  edge cost vs baseline")
        for name, fn, baseline in rows:
            figures = await measure(fn, requests, concurrency)
            results[name] = figures
            note = ""
            if baseline is not None:
                base = results[next(n for n, f, _ in rows if f is baseline)]
                note = (f"+{figures['p50_ms'] - base['p50_ms']:.2f} ms p50 "
                        f"(x{figures['p50_ms'] / base['p50_ms']:.2f}), x{base['rps'] / figures['rps']:.2f} req/s cost")
            print(f"{name:60} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} {figures['rps']:8.0f}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with running_stack() as ports:
        asyncio.run(run(args.requests, args.concurrency, ports))


if __name__ == "__main__":
    main()
