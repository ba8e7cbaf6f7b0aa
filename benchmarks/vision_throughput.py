"""Vision throughput and memory, each comparison measured in the same run, on the same weights.

    .venv/bin/python benchmarks/vision_throughput.py [--profile tiny|full] [--device auto]
        [--size 384x256] [--frames 48] [--video-size 320x240] [--large 4000x3000] [--large-method realesrgan_2x]
        [--skip-memory | --memory-only]

1. Upscaling, per method: input and output megapixels per second of the engine (no gRPC, no PNG), with
   the service's tiles (upscale_tile, upscale_tile_overlap) and untiled (one model call), on one image.
   Tiles recompute their overlap, so they cost some speed; what they buy is section 3.
2. Video background removal, frames per second: through the service (real gRPC on loopback, the stream
   of progress events, SAM3 on every frame, VP9 with alpha), the engine alone (no gRPC), and the video
   plumbing alone (PyAV decode + VP9 alpha encode with a constant mask, no model), so the model's share
   shows.
3. Peak memory (the process's peak RSS, each case in a fresh process, since it is a high-water mark):
   the models loaded and nothing done (the baseline), a small upscale tiled and untiled, and a large
   (4000x3000 by default) upscale with the service's tiles, decoded from PNG and encoded to PNG as the
   service does. `vs baseline` and `+MiB` are the growth over the baseline; `images MiB` is what the
   input and output Pillow images themselves take (they must exist whatever the method: an 8000x6000
   RGB image is 183 MiB); the rest is decoding, the tiles and the PNG encoder.
Client and service share this process and its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from services.common.modality import place
from services.common.testing import connected
from services.vision import video
from services.vision.catalog import LANCZOS, UPSCALE_MODELS
from services.vision.config import VisionSettings
from services.vision.pipelines import Upscale, VideoBackgroundRemoval, VisionModels, load_models
from services.vision.requests import video_limits
from services.vision.server import definition
from univence.vision.v1 import vision_pb2, vision_pb2_grpc

MIB = 2**20


def size_arg(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like test image: smooth gradients, a few shapes, mild noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width * 200 + 30, y / height * 180 + 40, (x + y) / (width + height) * 150 + 60], axis=2)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.2) * min(width, height)
        rgb[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    rgb += rng.normal(0, 4, rgb.shape).astype(np.float32)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def settings_of(args: argparse.Namespace, **overrides) -> VisionSettings:
    values = {"host": "127.0.0.1", "port": 0, "metrics_port": 0, "profile": args.profile, "device": args.device,
              "warmup": True, "log_level": "WARNING", "max_video_mb": 48.0, **overrides}
    return VisionSettings(**values)


def timed(fn, repeat: int) -> float:
    """Seconds per call, the best of `repeat` (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# -- 1. upscaling -------------------------------------------------------------------------------------


def upscale_rows(models: VisionModels, settings: VisionSettings, size: tuple[int, int], repeat: int) -> None:
    image = photo(*size)
    input_mp = size[0] * size[1] / 1e6
    tile, overlap = settings.upscale_tile, settings.upscale_tile_overlap
    print(f"\n1. upscaling {size[0]}x{size[1]} ({input_mp:.2f} MP in), engine only, best of {repeat}; "
          f"tiles of {tile} px with {overlap} px overlap vs one untiled call")
    print(f"{'method':22} {'scale':>5} {'untiled in MP/s':>16} {'out MP/s':>9} {'tiled in MP/s':>14} "
          f"{'out MP/s':>9} {'tiled/untiled':>14}")
    for model in UPSCALE_MODELS:
        if not models.serves(model):
            continue
        scale = model.scale
        if model.engine == LANCZOS:
            seconds = timed(lambda m=model: models.upscale(Upscale(image, m, m.scale)), repeat)
            untiled = tiled = seconds
        else:
            upscaler = models.upscalers[model.id]
            untiled = timed(lambda u=upscaler: u.upscale(image, tile=0, overlap=0), repeat)
            tiled = timed(lambda u=upscaler: u.upscale(image, tile=tile, overlap=overlap), repeat)
        out_mp = input_mp * scale * scale
        print(f"{model.id:22} {scale:>5} {input_mp / untiled:16.3f} {out_mp / untiled:9.3f} {input_mp / tiled:14.3f} "
              f"{out_mp / tiled:9.3f} {untiled / tiled:13.2f}x" + ("  (no model: no tiles)" if model.engine == LANCZOS
                                                                   else ""))


# -- 2. video -----------------------------------------------------------------------------------------


def make_clip(frames: int, width: int, height: int, fps: int = 24) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        base = np.asarray(photo(width, height, seed=1))
        for i in range(frames):
            frame = np.roll(base, i * 3, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return out.getvalue()


async def video_rows(args: argparse.Namespace, settings: VisionSettings, models: VisionModels) -> None:
    data = make_clip(args.frames, *args.video_size)
    info = video.probe(data, video_limits(settings))
    job = VideoBackgroundRemoval(data, info, "person", False)
    options = dict(batch=settings.video_batch_frames, crf=settings.video_crf, cpu_used=settings.video_cpu_used)
    print(f"\n2. video background removal, {args.frames} frames of {args.video_size[0]}x{args.video_size[1]} "
          f"(H.264 in, VP9 + alpha out), SAM3 batches of {settings.video_batch_frames} frames")
    print(f"{'path':52} {'frames/s':>9} {'s/frame':>8}")

    def plumbing() -> None:
        alpha = np.full((info.height, info.width), 200, np.uint8)
        video.remove_background(data, info, lambda frames: [(alpha, True)] * len(frames), **options)

    rows = [("PyAV decode + VP9 alpha encode, no model", lambda: plumbing()),
            ("engine: SAM3 per frame + decode + encode, no gRPC", lambda: models.remove_video_background(job))]
    for name, fn in rows:
        seconds = timed(fn, 1)
        print(f"{name:52} {args.frames / seconds:9.2f} {seconds / args.frames:8.4f}")
    service = definition(settings)
    async with connected(service, settings) as (_, channel):
        stub = vision_pb2_grpc.VisionServiceStub(channel)
        request = vision_pb2.RemoveVideoBackgroundRequest(video=data, prompt="person")
        async for _ in stub.RemoveVideoBackground(request):  # warm-up
            pass
        start = time.perf_counter()
        first = None
        async for _ in stub.RemoveVideoBackground(request):
            first = first or time.perf_counter() - start
        seconds = time.perf_counter() - start
    print(f"{'service over gRPC (stream: probe, progress, result)':52} {args.frames / seconds:9.2f} "
          f"{seconds / args.frames:8.4f}   first message (probe) after {first * 1000:.1f} ms")


# -- 3. memory ------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM, reset by exec; getrusage's ru_maxrss is not: a child
    forked from a large parent would report the parent's size)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One memory case in this (fresh) process: prints one JSON line. The models are loaded and warmed
    (one small call each way) before the baseline is read, so the cases differ only by their image."""
    settings = settings_of(args)
    placement = place(settings)
    models = load_models(settings, placement.profile, placement.device)
    upscaler = models.upscalers[args.large_method]
    for tile in (0, 32):
        upscaler.upscale(photo(64, 64), tile=tile, overlap=settings.upscale_tile_overlap)
    warm = peak_rss_mib()
    seconds, out = 0.0, None
    if args.case_file:
        data = Path(args.case_file).read_bytes()
        start = time.perf_counter()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        result = upscaler.upscale(image, tile=args.case_tile, overlap=settings.upscale_tile_overlap)
        encoded = io.BytesIO()
        result.save(encoded, format="PNG", compress_level=settings.png_compress_level)
        seconds, out = time.perf_counter() - start, result.size
    print(json.dumps({"peak_mb": peak_rss_mib(), "warm_mb": warm, "seconds": seconds, "out": out}))


def memory_rows(args: argparse.Namespace, settings: VisionSettings) -> None:
    small = (max(64, args.large[0] // 4), max(48, args.large[1] // 4))
    tile = settings.upscale_tile
    print(f"\n3. peak memory of one {args.large_method} upscale (PNG in, PNG out), each case in a fresh process "
          f"with the models loaded and warmed; tiles of {tile} px, {settings.upscale_tile_overlap} px overlap")
    print(f"{'case':34} {'peak RSS MiB':>12} {'vs baseline':>12} {'+MiB':>7} {'images MiB':>11} {'seconds':>8}  output")
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for size in (small, args.large):  # written here, so that making them costs the cases nothing
            files[size] = Path(folder, f"{size[0]}x{size[1]}.png")
            photo(*size).save(files[size], format="PNG", compress_level=1)
        cases = [("baseline (no image)", None, tile), (f"{small[0]}x{small[1]} untiled", small, 0),
                 (f"{small[0]}x{small[1]} tiled", small, tile), (f"{args.large[0]}x{args.large[1]} tiled", args.large,
                                                                  tile)]
        baseline = None
        for name, size, case_tile in cases:
            command = [sys.executable, __file__, "--child", "--profile", args.profile, "--device", args.device,
                       "--large-method", args.large_method, "--case-file", str(files[size]) if size else "",
                       "--case-tile", str(case_tile)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"{name:34} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            baseline = baseline or figures["peak_mb"]
            out = figures["out"]
            # What must exist whatever the method: the input and output as Pillow RGB images (4 bytes a pixel).
            images = (size[0] * size[1] + out[0] * out[1]) * 4 / MIB if out else 0
            print(f"{name:34} {figures['peak_mb']:12.0f} {figures['peak_mb'] / baseline:11.2f}x "
                  f"{figures['peak_mb'] - baseline:7.0f} {images:11.0f} {figures['seconds']:8.1f}  "
                  + (f"{out[0]}x{out[1]}" if out else ""))


async def main_async(args: argparse.Namespace) -> None:
    settings = settings_of(args)
    placement = place(settings)
    models = await asyncio.to_thread(load_models, settings, placement.profile, placement.device)
    print(f"vision throughput: profile {placement.profile}, device {placement.device}")
    if not args.memory_only:
        await asyncio.to_thread(upscale_rows, models, settings, args.size, args.repeat)
        await video_rows(args, settings, models)
    if not args.skip_memory:
        await asyncio.to_thread(memory_rows, args, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["auto", "tiny", "full"], default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=size_arg, default=(384, 256), help="upscaling input, WxH")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--video-size", type=size_arg, default=(320, 240))
    parser.add_argument("--large", type=size_arg, default=(4000, 3000))
    parser.add_argument("--large-method", default="realesrgan_2x",
                        choices=[m.id for m in UPSCALE_MODELS if m.engine != LANCZOS])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--case-tile", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        child(args)
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
