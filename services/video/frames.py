"""Pictures in and out of the model, with Pillow, numpy and PyAV only (no torchvision: it has no CPU
build here, and transformers would import it).

- In: the input image cropped (centred) to the output's aspect and resized with Lanczos, so the first
  frame is exactly the size the pipeline makes and is never stretched.
- Out: MP4 H.264 (libx264 from PyAV's own FFmpeg) in yuv420p, which every browser and phone plays
  (the sizes are multiples of 16, so 4:2:0's even sides hold), with the moov atom first (+faststart)
  so a `<video>` starts before the whole file has arrived; and a JPEG of the first frame. FFmpeg's
  faststart rewrites the finished file by reopening it by name, so the MP4 is written to a temporary
  file (a BytesIO output fails at close).
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` (RGB) cropped to width:height around its centre, then resized to exactly width x height."""
    w, h = image.size
    if w * height > h * width:  # wider than the target: keep the full height
        crop_w, crop_h = max(1, round(h * width / height)), h
    else:
        crop_w, crop_h = w, max(1, round(w * height / width))
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), Image.Resampling.LANCZOS, box=box)


def encode_mp4(frames: np.ndarray, *, fps: int, crf: int, preset: str) -> bytes:
    """frames (T x H x W x 3 uint8 RGB, even H and W) as an MP4 H.264 yuv420p file at `fps`."""
    count, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 in yuv420p needs even sides, got {width}x{height}")
    with tempfile.TemporaryDirectory(prefix="univence-video-") as folder:
        path = Path(folder) / "video.mp4"
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps),
                                          options={"crf": str(crf), "preset": preset})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i in range(count):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path.read_bytes()


def thumbnail_jpeg(frame: np.ndarray, *, quality: int) -> bytes:
    """One frame (H x W x 3 uint8 RGB) as a JPEG."""
    out = io.BytesIO()
    Image.fromarray(frame, "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
