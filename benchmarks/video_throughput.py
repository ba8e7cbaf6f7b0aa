"""Video throughput: seconds per video and frames per second at each resolution class, through the real
video service (gRPC on loopback, one video at a time as in production), with where the time goes.

    .venv/bin/python benchmarks/video_throughput.py [--profile tiny|full] [--frames 81] [--steps 4]
        [--videos 2] [--resolutions 480p,720p,1080p] [--device auto]

Per resolution: the median wall time of a video from the call to its result, frames/s (num_frames /
that time), and the split read from the progress stream's timestamps: `step 1` (request checks, image
fitting, prompt encoding, the VAE encoding of the conditioning clip and the first sampling step: the
pipeline reports at step ends only), `steps` (the other sampling steps), `decode` (VAE decoding),
`encode` (MP4 and thumbnail). The first
video of each resolution is a warm-up and not counted. Client and service share this process and its
cores; the tiny profile's figures measure the plumbing (its models are tiny), not a GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time

from PIL import Image

from services.common.testing import tiny_settings
from services.video.catalog import RESOLUTIONS
from services.video.config import VideoSettings
from services.video.fixtures import serve
from univence.video.v1 import video_pb2


def image_bytes() -> bytes:
    out = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((640, 360)).save(out, format="PNG")
    return out.getvalue()


async def one_video(stub, request: video_pb2.GenerateVideoRequest) -> tuple[dict[str, float], video_pb2.VideoResult]:
    """(seconds to each stage's first event and to the result, the result)."""
    start = time.perf_counter()
    marks: dict[str, float] = {}
    result = None
    async for message in stub.GenerateVideo(request):
        now = time.perf_counter() - start
        if message.HasField("progress"):
            marks.setdefault(message.progress.stage, now)
        else:
            result, marks["result"] = message.result, now
    return marks, result


async def bench(args: argparse.Namespace) -> None:
    overrides = {"profile": args.profile, "device": args.device, "warmup": False, "max_frames": max(81, args.frames)}
    settings = tiny_settings(VideoSettings, **overrides)
    data = image_bytes()
    async with serve(settings) as video:
        info = video.servicer.placement
        print(f"profile {info.profile}, device {info.device}, backend {video.servicer.engine.name}, "
              f"{args.frames} frames, {args.steps} steps, {args.videos} videos per resolution (+1 warm-up)")
        print(f"{'resolution':>10} {'size':>10} {'s/video':>8} {'frames/s':>9} {'step 1':>8} {'steps':>8} "
              f"{'decode':>7} {'encode':>7} {'MiB':>6}")
        for r in RESOLUTIONS:
            if r.name not in args.resolutions:
                continue
            request = video_pb2.GenerateVideoRequest(image=data, prompt="the camera slowly pushes in", seed=1,
                                                     num_frames=args.frames, num_inference_steps=args.steps,
                                                     resolution=r.value)
            await one_video(video.stub, request)  # warm-up
            runs = [await one_video(video.stub, request) for _ in range(args.videos)]
            total = statistics.median(m["result"] for m, _ in runs)

            def split(a: str, b: str, runs=runs) -> float:
                return statistics.median(m[b] - m[a] for m, _ in runs)

            result = runs[0][1]
            first_step = statistics.median(m["denoising"] for m, _ in runs)
            print(f"{r.name:>10} {result.width:>4}x{result.height:<5} {total:8.2f} {result.num_frames / total:9.1f} "
                  f"{first_step:8.2f} {split('denoising', 'decoding'):8.2f} "
                  f"{split('decoding', 'encoding video'):7.2f} {split('encoding video', 'result'):7.2f} "
                  f"{len(result.video) / 2**20:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--resolutions", default="480p,720p,1080p")
    args = parser.parse_args()
    args.resolutions = set(args.resolutions.split(","))
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
