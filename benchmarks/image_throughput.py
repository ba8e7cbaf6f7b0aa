"""Image throughput: the batching image service (real gRPC on loopback) at concurrency 1, 2, 4 and 8,
against sequential calls of the raw pipeline, in one run, on the same weights.

    .venv/bin/python benchmarks/image_throughput.py [--profile tiny|full] [--size 256] [--steps 8]
        [--requests 32] [--max-batch-size 8] [--max-batch-wait-ms 10]

The first raw row calls Flux2KleinPipeline once per image (one prompt, one generator) with nothing
around it: no gRPC, no queue, no PNG encoding. The service rows include all of those, and batch
compatible requests into one pipeline call; `mean batch` is images per pipeline call. `vs raw` is
images/s divided by the first row's. The last row but one is the service with batching off
(max_batch_size 1) at the highest concurrency, to separate what batching buys from what concurrency
alone does; the last is the raw pipeline fed full batches, the ceiling batching can reach (its
latency is per batch). Client and service share this process and its cores.
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import logging
import statistics
import time

import grpc

from services.common.server import ServiceRuntime
from services.image.catalog import DISTILLED
from services.image.config import ImageSettings
from services.image.pipelines import Generation, load_pipelines
from services.image.server import definition
from univence.image.v1 import image_pb2, image_pb2_grpc

CONCURRENCY = (1, 2, 4, 8)


def raw_pipeline(settings: ImageSettings, profile: str, device: str, size: int, steps: int, requests: int,
                 batch: int) -> dict[str, float]:
    """Direct pipeline calls of `batch` images each (1: sequential calls, one image per call)."""
    models = load_pipelines(settings, profile, device)
    job = lambda i: Generation(DISTILLED, f"prompt {i}", "", size, size, steps, 1.0, i)  # noqa: E731
    models.generate([job(10_000 + i) for i in range(batch)])  # warm-up
    latencies = []
    start = time.perf_counter()
    for first in range(0, requests, batch):
        t = time.perf_counter()
        models.generate([job(i) for i in range(first, min(requests, first + batch))])
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    return {"ips": requests / elapsed, "p50": statistics.median(latencies) * 1000,
            "p95": percentile(latencies, 95) * 1000, "calls": len(latencies)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def through_service(settings: ImageSettings, concurrency: int, size: int, steps: int,
                          requests: int) -> dict[str, float]:
    service = definition(settings)
    runtime = ServiceRuntime(service, settings)
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.loaded.wait(), 600)
        if runtime.load_error:
            raise SystemExit(runtime.load_error)
        servicer = service.services[0].servicer
        calls = []
        generate = servicer.models.generate

        def counted(jobs):  # observes how many pipeline calls the batcher made
            calls.append(len(jobs))
            return generate(jobs)

        servicer.models.generate = counted
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            stub = image_pb2_grpc.ImageServiceStub(channel)

            def request(i: int) -> image_pb2.GenerateImagesRequest:
                return image_pb2.GenerateImagesRequest(prompt=f"prompt {i}", width=size, height=size, seed=i,
                                                       num_inference_steps=steps)

            await asyncio.gather(*(stub.GenerateImages(request(10_000 + i)) for i in range(concurrency)))  # warm-up
            calls.clear()
            latencies: list[float] = []
            counter = iter(range(requests))

            async def client() -> None:
                for i in counter:
                    t = time.perf_counter()
                    await stub.GenerateImages(request(i))
                    latencies.append(time.perf_counter() - t)

            start = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
        return {"ips": requests / elapsed, "p50": statistics.median(latencies) * 1000,
                "p95": percentile(latencies, 95) * 1000, "calls": len(calls)}
    finally:
        await runtime.stop(grace=1)


def row(name: str, figures: dict[str, float], requests: int, raw_ips: float) -> str:
    mean_batch = requests / figures["calls"] if figures["calls"] else 0
    return (f"{name:34} {figures['ips']:9.2f} {figures['p50']:9.1f} {figures['p95']:9.1f} "
            f"{mean_batch:10.2f} {figures['ips'] / raw_ips:8.2f}x")


async def main_async(args: argparse.Namespace) -> None:
    base = {"host": "127.0.0.1", "port": 0, "metrics_port": 0, "profile": args.profile, "device": args.device,
            "base_model": "", "warmup": True, "queue_max_pending": 64, "log_level": "WARNING"}
    settings = ImageSettings(**base, max_batch_size=args.max_batch_size, max_batch_wait_ms=args.max_batch_wait_ms)
    probe = definition(settings)
    profile, device = probe.profile, probe.device
    raw = await asyncio.to_thread(raw_pipeline, settings, profile, device, args.size, args.steps, args.requests, 1)
    print(f"image throughput: profile {profile}, device {device}, {args.size}x{args.size}, {args.steps} steps, "
          f"{args.requests} images per row; batching up to {args.max_batch_size} images, "
          f"waiting up to {args.max_batch_wait_ms:g} ms")
    print(f"{'path':34} {'images/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'mean batch':>10} {'vs raw':>9}")
    print(row("raw pipeline, sequential", raw, args.requests, raw["ips"]))
    for concurrency in CONCURRENCY:
        figures = await through_service(settings, concurrency, args.size, args.steps, args.requests)
        print(row(f"service, concurrency {concurrency}", figures, args.requests, raw["ips"]))
    unbatched = ImageSettings(**base, max_batch_size=1, max_batch_wait_ms=0)
    figures = await through_service(unbatched, CONCURRENCY[-1], args.size, args.steps, args.requests)
    print(row(f"service, no batching, conc. {CONCURRENCY[-1]}", figures, args.requests, raw["ips"]))
    ceiling = await asyncio.to_thread(raw_pipeline, settings, profile, device, args.size, args.steps, args.requests,
                                      args.max_batch_size)
    print(row(f"raw pipeline, batches of {args.max_batch_size}", ceiling, args.requests, raw["ips"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["auto", "tiny", "full"], default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, choices=[256, 512, 1024], default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-batch-wait-ms", type=float, default=10.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
