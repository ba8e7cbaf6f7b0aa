"""The vision stack for tests/edge/test_vision.py: the tiny vision service, the platform and an edge
that routes to it (one of each for the module), and the images and videos the tests send."""

from __future__ import annotations

import base64
import contextlib
import io
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import numpy as np
from PIL import Image

from services.vision.fixtures import VisionService, serve, settings_for
from tests.support.platform import Platform, running_platform
from univence.media.v1 import media_pb2

START_MC = 100_000
MIB = 1024 * 1024
UPSCALE_RATES = {"lanczos": 100, "realesrgan_2x": 300, "realesrgan_4x": 500, "realesrgan_4x_anime": 500,
                 "swin2sr": 750}
SCALES = {"lanczos": 2, "realesrgan_2x": 2, "realesrgan_4x": 4, "realesrgan_4x_anime": 4, "swin2sr": 4}
# Small limits, so that the oversized inputs stay small: the vision service's and the edge's body limit.
MAX_IMAGE_MB, MAX_VIDEO_MB, MAX_BODY_MB = 1.0, 1.0, 3


@dataclass
class Stack:
    platform: Platform
    http: httpx.AsyncClient
    vision: VisionService
    accounts_db: Path

    async def user(self, email: str, *, credits_mc: int = START_MC, premium: bool = False) -> tuple[str, dict]:
        user_id, secret = await self.platform.user_with_key(email, credits_mc=credits_mc, premium=premium)
        return user_id, {"X-API-Key": secret}

    async def balance(self, user_id: str) -> tuple[int, int]:
        b = await self.platform.balance(user_id)
        return b.balance_mc, b.held_mc

    def holds(self, user_id: str) -> int:
        """How many holds the user ever had (settled or not): 0 means nothing was ever reserved."""
        with contextlib.closing(sqlite3.connect(self.accounts_db)) as db:
            return db.execute("SELECT COUNT(*) FROM holds WHERE user_id = ?", (user_id,)).fetchone()[0]

    async def media_count(self, user_id: str) -> int:
        listing = await self.platform.media.ListMedia(media_pb2.ListMediaRequest(owner_id=user_id))
        return listing.total_size

    @contextlib.contextmanager
    def replaced(self, obj: object, name: str, value: object) -> Iterator[None]:
        """`obj.name` is `value` inside the block (the service's models, for one test)."""
        original = getattr(obj, name)
        setattr(obj, name, value)
        try:
            yield
        finally:
            setattr(obj, name, original)

    def frames_with_object(self, wanted: set[int], seen: list[int] | None = None, delay: float = 0.0):
        """The video model finds the object in the frames numbered in `wanted` (from 0), nowhere else:
        alpha 255 there, 0 elsewhere. `seen` collects the frame numbers it was asked about."""
        models = self.vision.servicer.models
        counter = iter(range(1_000_000))

        def frame_masks(frames, prompt, best_only):
            answers = []
            for rgb in frames:
                index = next(counter)
                if seen is not None:
                    seen.append(index)
                found = index in wanted
                answers.append((np.full(rgb.shape[:2], 255 if found else 0, np.uint8), found))
            if delay:
                time.sleep(delay)
            return answers

        return self.replaced(models, "frame_masks", frame_masks)


@contextlib.asynccontextmanager
async def running_stack(tmp_path: Path, *, credit_leases: bool = False) -> AsyncIterator[Stack]:
    """The tiny vision service (with small input limits), the platform and an edge that routes to it."""
    settings = settings_for(max_input_image_mb=MAX_IMAGE_MB, max_video_mb=MAX_VIDEO_MB)
    async with serve(settings) as vision, \
            running_platform(tmp_path, modalities=["vision"], modality_addresses={"vision": vision.address},
                             max_body_mb=MAX_BODY_MB, credit_leases=credit_leases) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=120) as http:
        # Credit leases off by default: most vision tests count and watch the per-request holds of the
        # flows (tests/edge/test_vision_leases.py runs the progress flow on leases).
        yield Stack(platform, http, vision, tmp_path / "accounts.db")


# -- inputs ----------------------------------------------------------------------------------------------------

def photo(width: int = 96, height: int = 64, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """A smooth picture with a bright square (compresses well, so sizes stay far below the limits)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), np.full_like(x, 90)], axis=2)
    rgb[height // 4:height * 3 // 4, width // 4:width * 3 // 4] = (240, 230, 220)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.convert(mode).save(out, format=fmt)
    return out.getvalue()


def video(frames: int = 6, width: int = 64, height: int = 48, fps: int = 6, fmt: str = "mp4",
          codec: str = "libx264") -> bytes:
    """A small H.264 MP4 (or another codec and container), each frame a different shade."""
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            rgb = np.full((height, width, 3), (30 + 25 * i) % 256, np.uint8)
            rgb[height // 4:height * 3 // 4, width // 4:width * 3 // 4] = (250, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return out.getvalue()


def decode_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def webm_frames(data: bytes) -> list[np.ndarray]:
    """The frames as RGBA, decoded with libvpx-vp9 (FFmpeg's own vp9 decoder drops the alpha)."""
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name == "matroska,webm"
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp9"
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames = [frame for packet in container.demux(stream) for frame in decoder.decode(packet)]
    assert all(frame.format.name == "yuva420p" for frame in frames)
    return [frame.to_ndarray(format="rgba") for frame in frames]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def file_part(data: bytes, name: str = "image.jpg", mime: str = "image/jpeg") -> dict:
    return {"file": (name, data, mime)}


def upscale_price(method: int | str, width: int, height: int, scale: int | None = None) -> int:
    scale = scale or SCALES[method]
    pixels = width * scale * height * scale
    return max(100, -(-pixels * UPSCALE_RATES[method] // MIB))


def twenty_minute_video() -> bytes:
    """A real 20-minute video: 1200 frames at 1 frame per second (16x16, 30 kB)."""
    return video(frames=1200, width=16, height=16, fps=1)


def truncated_video() -> bytes:
    data = video(frames=12)
    return data[:len(data) * 2 // 3]
