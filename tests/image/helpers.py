"""Helpers for the image tests: a running tiny image service, and small images to send it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np
from PIL import Image

from services.image.config import ImageSettings
from services.image.server import definition
from services.image.servicer import ImageServicer
from tests.support.runtime import running_service
from univence.common.v1 import common_pb2_grpc
from univence.image.v1 import image_pb2_grpc


@dataclass
class ImageService:
    """A running image service: its stubs, and the servicer for looking inside."""

    stub: image_pb2_grpc.ImageServiceStub
    info: common_pb2_grpc.ServiceInfoServiceStub
    servicer: ImageServicer
    settings: ImageSettings
    address: str


def settings_for(**overrides) -> ImageSettings:
    values = {"host": "127.0.0.1", "port": 0, "metrics_port": 0, "profile": "tiny", "device": "cpu",
              "warmup": False, **overrides}
    return ImageSettings(**values)


@contextlib.asynccontextmanager
async def serve(settings: ImageSettings, *, wait_loaded: bool = True) -> AsyncIterator[ImageService]:
    """The real aio gRPC server in this event loop, and a channel to it."""
    service = definition(settings)
    async with running_service(service, settings, wait_loaded=wait_loaded) as runtime, \
            grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        yield ImageService(image_pb2_grpc.ImageServiceStub(channel), common_pb2_grpc.ServiceInfoServiceStub(channel),
                           service.services[0].servicer, settings, f"127.0.0.1:{runtime.port}")


def picture(width: int = 80, height: int = 64, *, fmt: str = "PNG", seed: int = 0, mode: str = "RGB") -> bytes:
    """A small random-colour image, encoded."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(decode(data).convert("RGB"), dtype=np.int16)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose header declares a huge image (a decompression bomb's first bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")
