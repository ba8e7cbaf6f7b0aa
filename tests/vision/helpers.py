"""Helpers for the vision tests: images and videos to send the service, and reading its answers back."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

from services.vision.fixtures import VisionService, serve, settings_for
from tests.image.helpers import bomb_png, decode, picture

__all__ = ["VisionService", "bomb_png", "decode", "make_video", "picture", "read_webm", "serve", "settings_for"]


def make_video(frames: int = 12, width: int = 64, height: int = 48, fps: int = 12, *, audio: bool = False,
               faststart: bool = False, container: str = "mp4", pix_fmt: str = "yuv420p") -> bytes:
    """An H.264 clip (optionally with an AAC tone) of a bright square moving right on a dark ground
    (odd sizes need pix_fmt yuv444p)."""
    if faststart:  # +faststart rewrites the file to move its index to the front: it needs a real file
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "clip.mp4")
            _write_video(path, frames, width, height, fps, audio, {"movflags": "+faststart"}, container, pix_fmt)
            return path.read_bytes()
    out = io.BytesIO()
    _write_video(out, frames, width, height, fps, audio, {}, container, pix_fmt)
    return out.getvalue()


def _write_video(out, frames, width, height, fps, audio, options, container, pix_fmt) -> None:
    with av.open(out, "w", format=container, options=options) as c:
        stream = c.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        sound = c.add_stream("aac", rate=44100) if audio else None
        for i in range(frames):
            rgb = np.full((height, width, 3), 40, np.uint8)
            x0 = (i * 2) % max(width - width // 4, 1)
            rgb[height // 4:3 * height // 4, x0:x0 + width // 4] = (230, 200, 60)
            c.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(stream.encode(None))
        if sound is not None:
            total, t = int(44100 * frames / fps), 0
            while t < total:
                k = min(1024, total - t)
                tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(t, t + k) / 44100)).astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 44100, t
                c.mux(sound.encode(frame))
                t += k
            c.mux(sound.encode(None))


def input_frames(data: bytes) -> list[np.ndarray]:
    """The video's frames as RGB arrays."""
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def read_webm(data: bytes, decoder: str = "libvpx-vp9") -> list[av.VideoFrame]:
    """The frames of a VP9 WebM, decoded with `decoder` (libvpx-vp9 keeps the alpha; FFmpeg's vp9 drops it)."""
    with av.open(io.BytesIO(data)) as c:
        context = av.CodecContext.create(decoder, "r")
        frames = []
        for packet in c.demux(c.streams.video[0]):
            if packet.size:
                frames += context.decode(packet)
        return frames + context.decode(None)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()
