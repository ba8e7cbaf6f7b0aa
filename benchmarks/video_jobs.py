"""Job overhead: one video made three ways in the same run, on the real stack (`univence up` processes on
loopback, the video service's tiny profile unless --profile says otherwise):

- `direct`: GenerateVideo straight to the video service over gRPC, from the call to its result;
- `img2video`: POST /v1/images/img2video through the edge, a job waited for synchronously (reserve,
  CreateJob, the stream, progress reports, storing the MP4 and thumbnail, UpdateJob, commit);
- `/v1/videos`: the async job, POST then GET every --poll-ms until `completed` (what a client sees).

    .venv/bin/python benchmarks/video_jobs.py [--videos 5] [--frames 17] [--steps 2] [--resolution 480p]
        [--poll-ms 100] [--profile tiny]

Prints each path's median seconds, its overhead over `direct` (seconds and ratio) and the polling's
share. The runs alternate (direct, sync, async) so that all three see the same machine; the client and
every service share its cores, and the tiny model's own time is short, so the ratio is an upper bound
of what the job machinery adds to a real (GPU-minutes) video.
"""

from __future__ import annotations

import univence.transport  # noqa: F401  (before grpc: gRPC's transport, as the stack's processes have it)

# isort: split
import argparse
import asyncio
import io
import statistics
import time

import grpc
import httpx
from benchmark_stack import running_stack, user_with_key
from PIL import Image

from univence.accounts.v1 import accounts_pb2_grpc
from univence.video.v1 import video_pb2, video_pb2_grpc


def image_bytes() -> bytes:
    out = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((160, 96)).save(out, format="PNG")
    return out.getvalue()


async def direct(stub: video_pb2_grpc.VideoServiceStub, request: video_pb2.GenerateVideoRequest) -> float:
    started = time.perf_counter()
    async for message in stub.GenerateVideo(request):
        if message.HasField("result"):
            return time.perf_counter() - started
    raise SystemExit("GenerateVideo ended without a result")


async def synchronous(http: httpx.AsyncClient, fields: dict, image: bytes) -> float:
    started = time.perf_counter()
    response = await http.post("/v1/images/img2video", data=fields, files={"image": ("a.png", image, "image/png")})
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"img2video: {response.status_code} {response.text}")
    return elapsed


async def asynchronous(http: httpx.AsyncClient, fields: dict, image: bytes, poll: float) -> float:
    started = time.perf_counter()
    created = await http.post("/v1/videos", data=fields, files={"input_reference": ("a.png", image, "image/png")})
    if created.status_code != 200:
        raise SystemExit(f"/v1/videos: {created.status_code} {created.text}")
    video_id = created.json()["id"]
    while True:
        video = (await http.get(f"/v1/videos/{video_id}")).json()
        if video["status"] == "completed":
            return time.perf_counter() - started
        if video["status"] == "failed":
            raise SystemExit(f"video failed: {video['error']}")
        await asyncio.sleep(poll)


async def run(args: argparse.Namespace, ports: dict[str, int]) -> None:
    image = image_bytes()
    fields = {"prompt": "the camera slowly pushes in", "num_frames": str(args.frames), "num_steps": str(args.steps),
              "resolution": args.resolution, "seed": "1"}
    request = video_pb2.GenerateVideoRequest(
        image=image, prompt=fields["prompt"], num_frames=args.frames, num_inference_steps=args.steps, seed=1,
        resolution=video_pb2.Resolution.Value(f"RESOLUTION_{args.resolution.upper()}"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['accounts']}") as accounts_channel, \
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['video']}") as video_channel:
        accounts = accounts_pb2_grpc.AccountsServiceStub(accounts_channel)
        _, secret = await user_with_key(accounts, "bench@example.com", credits_mc=10**9)
        stub = video_pb2_grpc.VideoServiceStub(video_channel)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['edge']}", timeout=600,
                                     headers={"X-API-Key": secret}) as http:
            paths = {"direct": lambda: direct(stub, request), "img2video": lambda: synchronous(http, fields, image),
                     "/v1/videos": lambda: asynchronous(http, fields, image, args.poll_ms / 1000)}
            for measure in paths.values():  # warm-up: connections, the model's first run
                await measure()
            times: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(args.videos):
                for name, measure in paths.items():
                    times[name].append(await measure())
    base = statistics.median(times["direct"])
    print(f"{args.videos} videos per path (+1 warm-up), {args.frames} frames, {args.steps} steps, {args.resolution}, "
          f"polling every {args.poll_ms} ms")
    print(f"{'path':>11} {'median s':>9} {'min s':>7} {'max s':>7} {'overhead s':>11} {'ratio':>6}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>11} {median:9.3f} {min(values):7.3f} {max(values):7.3f} {median - base:11.3f} "
              f"{median / base:6.2f}")
    print(f"(/v1/videos includes up to one poll interval, {args.poll_ms / 1000:.3f} s, of waiting to see the end)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=5)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--resolution", default="480p")
    parser.add_argument("--poll-ms", type=int, default=100)
    parser.add_argument("--profile", choices=("tiny", "full"), default="tiny")
    args = parser.parse_args()
    with running_stack(("video",), profile=args.profile) as ports:
        asyncio.run(run(args, ports))


if __name__ == "__main__":
    main()
