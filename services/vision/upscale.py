"""Upscaling: Real-ESRGAN (spandrel), Swin2SR (transformers) and Lanczos (Pillow), the models behind one
tiled runner.

Why tiles: an RRDB network holds several float32 feature maps of the upscaled size at once, so untiled
memory grows with the input (over a gigabyte for a 1000x750 input). Here each model call sees at most
(tile + 2 x overlap)^2 input pixels; only the uint8 input and the output image grow with the input.

Why cropped seams rather than blending: each tile runs with `overlap` pixels of real context on every
side and only its core is written out, so no float accumulation buffer is needed. Where the overlap
covers the network's receptive field the result equals the untiled one (the tiny CNNs' tests); a real
23-block RRDB sees further than any practical overlap, so its tiles are close to, not equal to, one
untiled call, which is what Real-ESRGAN's own tiled inference accepts too.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

# float32 HxWx3 tile in [0, 1] -> float32 (H*scale)x(W*scale)x3 in [0, 1]
TileFn = Callable[[np.ndarray], np.ndarray]
# Called after each tile with (done, total); raising stops the work (cancellation).
OnTile = Callable[[int, int], None]


@dataclass(frozen=True)
class Span:
    """One tile along one axis: the core [c0, c1) written out, the context [e0, e1) computed."""

    c0: int
    c1: int
    e0: int
    e1: int


def plan_axis(length: int, tile: int, overlap: int, align: int = 1) -> list[Span]:
    """`length` pixels split into cores of `tile` with `overlap` context on both sides. `tile` and
    `overlap` round up to multiples of `align`, so every tile starts on the grid the model works on
    (pixel-unshuffle models need even offsets to reproduce the untiled result). `tile` 0, or at least
    `length`, is one span."""
    if length <= 0:
        raise ValueError("empty axis")
    if tile <= 0 or tile >= length:
        return [Span(0, length, 0, length)]
    tile = math.ceil(tile / align) * align
    overlap = math.ceil(max(overlap, 0) / align) * align
    return [Span(c0, min(c0 + tile, length), max(0, c0 - overlap), min(length, c0 + tile + overlap))
            for c0 in range(0, length, tile)]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8, rounded (what Real-ESRGAN's and Swin2SR's own scripts do)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def run_tiled(rgb: np.ndarray, fn: TileFn, scale: int, *, tile: int, overlap: int, align: int = 1,
              on_tile: OnTile | None = None) -> Image.Image:
    """A uint8 HxWx3 array upscaled tile by tile into an RGB image of exactly (W*scale, H*scale). Cores
    are pasted straight into the Pillow result (a numpy result converted at the end would hold the
    largest buffer twice)."""
    h, w, _ = rgb.shape
    out = Image.new("RGB", (w * scale, h * scale))
    rows, cols = plan_axis(h, tile, overlap, align), plan_axis(w, tile, overlap, align)
    total = len(rows) * len(cols)
    for i, (ry, rx) in enumerate((ry, rx) for ry in rows for rx in cols):
        up = fn(rgb[ry.e0:ry.e1, rx.e0:rx.e1].astype(np.float32) / 255.0)
        expected = ((ry.e1 - ry.e0) * scale, (rx.e1 - rx.e0) * scale)
        if up.shape[:2] != expected:
            raise RuntimeError(f"the model returned a {up.shape[:2]} tile where {expected} was expected")
        y0, x0 = (ry.c0 - ry.e0) * scale, (rx.c0 - rx.e0) * scale
        core = up[y0:y0 + (ry.c1 - ry.c0) * scale, x0:x0 + (rx.c1 - rx.c0) * scale]
        out.paste(Image.fromarray(to_uint8(core), "RGB"), (rx.c0 * scale, ry.c0 * scale))
        if on_tile is not None:
            on_tile(i + 1, total)
    return out


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Any mode as RGB plus its alpha channel, if it has one (palette transparency included)."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return image.convert("RGB"), image.convert("RGBA").getchannel("A")
    return (image if image.mode == "RGB" else image.convert("RGB")), None


def lanczos(image: Image.Image, scale: int) -> Image.Image:
    """Exactly Pillow's `image.resize((w*scale, h*scale), LANCZOS)`; palette and 1-bit images are
    converted first (Pillow would quietly fall back to nearest-neighbour for them)."""
    if image.mode in ("P", "1"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)


@dataclass
class Upscaler:
    """A loaded model: `fn` upscales one float tile by `scale`; tiles start on multiples of `align`.
    A model runs one call at a time (its lock)."""

    name: str
    scale: int
    fn: TileFn
    align: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def upscale(self, image: Image.Image, *, tile: int, overlap: int, on_tile: OnTile | None = None) -> Image.Image:
        """The image at exactly size x scale. Alpha, if any, is resized with Lanczos: the models are
        RGB-only, and a soft alpha edge needs no GAN."""
        rgb, alpha = split_alpha(image)
        with self.lock:
            result = run_tiled(np.asarray(rgb), self.fn, self.scale, tile=tile, overlap=overlap, align=self.align,
                               on_tile=on_tile)
        if alpha is not None:
            result.putalpha(alpha.resize(result.size, Image.Resampling.LANCZOS))
        return result


def spandrel_upscaler(descriptor: Any, name: str, device: str) -> Upscaler:
    """A spandrel ImageModelDescriptor (NCHW float in [0, 1]; it pads to its size requirements and crops
    back itself) as an Upscaler."""
    descriptor.model.eval()
    descriptor.to(device)

    def fn(tile: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None].to(device)
        with torch.inference_mode():
            return descriptor(x)[0].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()

    return Upscaler(name, descriptor.scale, fn, max(descriptor.size_requirements.multiple_of, 1))


def swin2sr_pad(tile: np.ndarray, window: int) -> np.ndarray:
    """Bottom/right symmetric padding to the next multiple of `window` strictly above the size (a size
    already divisible still gets a window), as Swin2SRImageProcessor pads."""
    h, w = tile.shape[:2]
    return np.pad(tile, ((0, (h // window + 1) * window - h), (0, (w // window + 1) * window - w), (0, 0)),
                  mode="symmetric")


def swin2sr_upscaler(model: Any, name: str, device: str) -> Upscaler:
    """transformers' Swin2SRForImageSuperResolution as an Upscaler: the processor's padding done here in
    numpy (its `*Pil` processor gives the same numbers; the test compares), the reconstruction cropped
    back to exactly input x scale. Tiles start on the attention-window grid."""
    model.eval().to(device)
    window, scale = model.config.window_size, model.config.upscale

    def fn(tile: np.ndarray) -> np.ndarray:
        h, w = tile.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(swin2sr_pad(tile, window).transpose(2, 0, 1)))[None].to(device)
        with torch.inference_mode():
            y = model(pixel_values=x).reconstruction
            return y[0, :, :h * scale, :w * scale].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()

    return Upscaler(name, scale, fn, window)
