"""LLM throughput: completion tokens per second and time to first token, at concurrency 1 and 8, for
the same requests three ways in one run:

- backend: the service's generation backend called in this process (no gRPC, no HTTP);
- gRPC:    ChatService.StreamChatCompletion on the LLM service process;
- edge:    POST /v1/chat/completions with stream=true through the edge (auth, premium metering,
           SSE), on the real stack (`univence up --only accounts,media,llm,edge` on loopback).

    .venv/bin/python benchmarks/llm_throughput.py [--profile tiny] [--max-tokens 64] [--requests-per-worker 4]
    .venv/bin/python benchmarks/llm_throughput.py --vllm-cpu      # the vllm backend on vLLM's CPU build

Greedy decoding with a fixed max_tokens, so every request generates the same number of tokens (the
tiny profile's random weights never pick the end token greedily). The transformers backend runs one
generation at a time (queue_concurrency 1), so at concurrency 8 requests queue and time to first
token grows while tokens/s stays that of one stream; vLLM batches them. Client, edge and service
share the machine's cores.

`--vllm-cpu` runs the vllm backend on vLLM's CPU build (vllm-cpu, installed by the README's test command)
with the tiny Qwen3 text model (services/llm/tiny.py save_tiny_text) and dummy weights: the engine's
continuous batching and the same three paths, on a machine without a GPU. On few cores its figures
are noisy: vLLM's CPU build always runs its worker in a process of its own, which busy-polls for a
second after each step and so takes a core from the service, the edge and the client.

On a GPU with vLLM, at the real model size without weights (vLLM's dummy load format; the folder
holds Qwen3.5-4B's config.json and tokenizer files, written by benchmarks/qwen3_5_4b_folder.py), two
engines share the GPU (the service's and the in-process "backend" one), so give each a part of it:

    .venv/bin/python benchmarks/qwen3_5_4b_folder.py /models/qwen3.5-4b
    UNIVENCE_LLM_MODEL=/models/qwen3.5-4b UNIVENCE_LLM_LOAD_FORMAT=dummy UNIVENCE_LLM_MAX_MODEL_LEN=32768 \
    UNIVENCE_LLM_GPU_MEMORY_UTILIZATION=0.4 .venv/bin/python benchmarks/llm_throughput.py --profile full
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import httpx
from benchmark_stack import running_stack, user_with_key

from univence.accounts.v1 import accounts_pb2_grpc
from univence.llm.v1 import llm_pb2, llm_pb2_grpc


@dataclass
class Sample:
    ttft: float  # seconds to the first content
    total: float
    tokens: int


async def measure(one: Callable[[int], Awaitable[Sample]], concurrency: int, per_worker: int) -> dict[str, float]:
    for _ in range(2):  # warm up
        await one(-1)
    samples: list[Sample] = []

    async def worker(w: int) -> None:
        for i in range(per_worker):
            samples.append(await one(w * per_worker + i))

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    ttfts = sorted(s.ttft for s in samples)
    return {"requests": len(samples), "tokens_per_s": sum(s.tokens for s in samples) / elapsed,
            "ttft_p50_ms": statistics.median(ttfts) * 1e3, "ttft_max_ms": ttfts[-1] * 1e3,
            "stream_tok_s": statistics.median(s.tokens / max(s.total - s.ttft, 1e-9) for s in samples)}


def prompt_text(i: int) -> str:
    return f"Request {i}: write a short story about a lighthouse keeper."


async def run(args: argparse.Namespace, ports: dict[str, int]) -> None:
    from services.common.devices import resolve_device
    from services.common.workqueue import WorkQueue
    from services.llm.backends.base import Message, SamplingOptions, TextDelta
    from services.llm.backends.loading import build_transformers, choose_backend
    from services.llm.config import LlmSettings

    settings = LlmSettings(profile=args.profile)  # the same UNIVENCE_LLM_* settings the service reads
    device = resolve_device(settings.device)
    backend_name = choose_backend(settings, args.profile, device)
    options = SamplingOptions(max_tokens=args.max_tokens, temperature=0)
    backend = None

    async def start_backend():
        """The in-process backend, started after the gRPC and edge rows: a second engine in this process
        (vLLM's spins for a while after work) would slow this process's gRPC client."""
        if backend_name == "vllm":
            from services.llm.backends.vllm_backend import VllmBackend

            return await VllmBackend.start(settings)
        return await asyncio.to_thread(build_transformers, settings, args.profile, device,
                                       WorkQueue("bench", max_pending=64, concurrency=settings.queue_concurrency))

    async def via_backend(i: int) -> Sample:
        started = time.perf_counter()
        prompt = await backend.prepare([Message("user", [prompt_text(i)])], options)
        first, tokens = None, 0
        async for event in backend.stream(prompt, options):
            if isinstance(event, TextDelta):
                first = first or time.perf_counter()
            else:
                tokens += event.completion_tokens
        end = time.perf_counter()
        return Sample((first or end) - started, end - started, tokens)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['accounts']}") as accounts_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['llm']}") as llm_channel, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['edge']}", timeout=600,
                              limits=httpx.Limits(max_keepalive_connections=16)) as http:
        accounts = accounts_pb2_grpc.AccountsServiceStub(accounts_channel)
        _, secret = await user_with_key(accounts, "bench@example.com", premium=True)
        chat = llm_pb2_grpc.ChatServiceStub(llm_channel)

        async def via_grpc(i: int) -> Sample:
            started = time.perf_counter()
            request = llm_pb2.StreamChatCompletionRequest(
                messages=[llm_pb2.ChatMessage(role=llm_pb2.ROLE_USER, content=[llm_pb2.ContentPart(
                    text=prompt_text(i))])], max_tokens=args.max_tokens, temperature=0, include_usage=True)
            first, tokens = None, 0
            async for chunk in chat.StreamChatCompletion(request):
                if any(d.content for d in chunk.choices):
                    first = first or time.perf_counter()
                if chunk.HasField("usage"):
                    tokens = chunk.usage.completion_tokens
            end = time.perf_counter()
            return Sample((first or end) - started, end - started, tokens)

        async def via_edge(i: int) -> Sample:
            started = time.perf_counter()
            first, tokens = None, 0
            body = {"model": "Qwen/Qwen3.5-4B", "messages": [{"role": "user", "content": prompt_text(i)}],
                    "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            async with http.stream("POST", "/v1/chat/completions", json=body, headers={"X-API-Key": secret}) as r:
                r.raise_for_status()
                async for line in r.aiter_lines():
                    if not line.startswith("data: {"):
                        continue
                    event = json.loads(line[6:])
                    if any(c["delta"].get("content") for c in event["choices"]):
                        first = first or time.perf_counter()
                    if event.get("usage"):
                        tokens = event["usage"]["completion_tokens"]
            end = time.perf_counter()
            return Sample((first or end) - started, end - started, tokens)

        print(f"profile {args.profile}, {args.max_tokens} completion tokens per request (greedy), {backend_name} "
              f"backend on {device}, {os.cpu_count()} CPU cores shared by client, edge and service")
        print(f"{'path':8} {'conc':>4} {'reqs':>5} {'tok/s':>8} {'TTFT p50 ms':>12} {'TTFT max ms':>12} "
              f"{'stream tok/s':>13}  vs backend")
        results: dict[tuple[str, int], dict[str, float]] = {}
        paths = {"gRPC": via_grpc, "edge": via_edge, "backend": via_backend}
        for name, one in paths.items():
            if name == "backend":
                backend = await start_backend()
            for concurrency in (1, 8):
                per_worker = args.requests_per_worker if concurrency == 1 else max(1, args.requests_per_worker // 2)
                results[name, concurrency] = await measure(one, concurrency, per_worker)
        for concurrency in (1, 8):
            base = results["backend", concurrency]
            for name in ("backend", "gRPC", "edge"):
                r = results[name, concurrency]
                note = "" if r is base else (f"tok/s x{r['tokens_per_s'] / base['tokens_per_s']:.2f}, "
                                             f"TTFT +{r['ttft_p50_ms'] - base['ttft_p50_ms']:.1f} ms")
                print(f"{name:8} {concurrency:4d} {r['requests']:5.0f} {r['tokens_per_s']:8.1f} "
                      f"{r['ttft_p50_ms']:12.1f} {r['ttft_max_ms']:12.1f} {r['stream_tok_s']:13.1f}  {note}")
    await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny", choices=["tiny", "full"])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests-per-worker", type=int, default=4)
    parser.add_argument("--vllm-cpu", action="store_true",
                        help="the vllm backend on vLLM's CPU build, with a tiny text model and dummy weights")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.vllm_cpu:
            from services.llm.tiny import save_tiny_text

            args.profile = "full"
            os.environ.update({  # read by the service (started by the stack) and by run() alike
                "UNIVENCE_LLM_BACKEND": "vllm", "UNIVENCE_LLM_MODEL": str(save_tiny_text(folder, weights=False)),
                "UNIVENCE_LLM_LOAD_FORMAT": "dummy", "UNIVENCE_LLM_ENFORCE_EAGER": "true",
                "UNIVENCE_LLM_SERVED_MODEL_NAME": "Qwen/Qwen3.5-4B",
                "UNIVENCE_LLM_KV_CACHE_MEMORY_BYTES": str(256 * 1024 * 1024)})
        with running_stack(("llm",), profile=args.profile) as ports:
            asyncio.run(run(args, ports))


if __name__ == "__main__":
    main()
