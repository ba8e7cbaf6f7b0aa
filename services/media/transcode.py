"""Image transcoding (Pillow) and the in-memory cache of transcoded variants.

The cache has a sliding expiration: each hit pushes an entry's expiry `ttl` further out. Entries are
kept in order of last use, so with one ttl for all the expired ones are always at the front and the
least recently used one is the first to go when the cache is over its size.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from services.common.errors import invalid, too_large
from services.common.workqueue import WorkQueue
from services.media.validation import PILLOW_FORMATS
from univence.common.v1 import common_pb2

ImageFormat = common_pb2.ImageFormat

# The MIME type each requested format produces.
FORMAT_MIMES: dict[int, str] = {
    ImageFormat.IMAGE_FORMAT_PNG: "image/png",
    ImageFormat.IMAGE_FORMAT_JPEG: "image/jpeg",
    ImageFormat.IMAGE_FORMAT_WEBP: "image/webp",
}
JPEG_QUALITY = 90
WEBP_QUALITY = 90
# What transparent pixels become in a JPEG, which has no alpha channel.
JPEG_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class Variant:
    """Transcoded bytes and their hex SHA-256."""

    data: bytes
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> Variant:
        return cls(data, hashlib.sha256(data).hexdigest())


def transcode(data: bytes, target_mime: str, max_pixels: int) -> Variant:
    """`data` (an image) re-encoded as `target_mime`; animation is kept where the target has it."""
    target = PILLOW_FORMATS[target_mime]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            with Image.open(io.BytesIO(data), formats=list(PILLOW_FORMATS.values())) as image:
                frames = image.n_frames if getattr(image, "is_animated", False) else 1
                pixels = image.width * image.height * frames
                if pixels > max_pixels:
                    raise too_large(f"the image has {pixels} pixels (all frames); at most {max_pixels}"
                                    " can be transcoded", "format")
                return Variant.of(_encode(image, target, animated=frames > 1))
    except Image.DecompressionBombError as exc:
        raise too_large(f"the image is too large to transcode: {exc}", "format") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise invalid(f"the stored image cannot be transcoded: {exc}", "format") from None


def _encode(image: Image.Image, target: str, *, animated: bool) -> bytes:
    # Keep what changes how the image looks: its colour profile and EXIF (orientation).
    options: dict = {k: image.info[k] for k in ("icc_profile", "exif") if image.info.get(k)}
    if target == "JPEG":
        image, options = _flatten(image), {**options, "quality": JPEG_QUALITY}
    elif animated:
        options["save_all"] = True  # PNG (APNG) and WebP animate; Pillow converts each frame
    elif image.mode not in _KEEPS_MODE[target]:
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    if target == "WEBP":
        options["quality"] = WEBP_QUALITY
    out = io.BytesIO()
    image.save(out, format=target, **options)
    return out.getvalue()


# Modes each target encodes as they are; anything else is converted to RGB(A) first.
_KEEPS_MODE = {"PNG": {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}, "WEBP": {"RGB", "RGBA"}}


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def _flatten(image: Image.Image) -> Image.Image:
    """An image JPEG can hold: transparency composited onto JPEG_BACKGROUND, RGB or L or CMYK."""
    if image.mode in ("RGB", "L", "CMYK"):
        return image
    if not _has_alpha(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, JPEG_BACKGROUND)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


class TranscodeCache:
    """Variants by key, bounded by `max_bytes`, each expiring `ttl` seconds after its last use."""

    def __init__(self, max_bytes: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[Variant, float]] = OrderedDict()
        self.size_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Variant | None:
        """The variant, its expiry pushed out again; None when absent or expired."""
        now = self._clock()
        self._evict_expired(now)
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries[key] = (entry[0], now + self.ttl)
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, variant: Variant) -> None:
        """Stores the variant (unless it alone is larger than the cache), evicting what must go."""
        self.discard(key)
        now = self._clock()
        self._evict_expired(now)
        if len(variant.data) > self.max_bytes:
            return
        self._entries[key] = (variant, now + self.ttl)
        self.size_bytes += len(variant.data)
        while self.size_bytes > self.max_bytes:
            _, (old, _) = self._entries.popitem(last=False)
            self.size_bytes -= len(old.data)

    def discard(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size_bytes -= len(entry[0].data)

    def _evict_expired(self, now: float) -> None:
        while self._entries:
            key, (variant, expires) = next(iter(self._entries.items()))
            if expires > now:
                return
            del self._entries[key]
            self.size_bytes -= len(variant.data)


class Transcoder:
    """Serves variants from the cache, or transcodes them on the work queue. Concurrent requests for
    the same variant share one transcode; it finishes (and is cached) even if its first caller leaves."""

    def __init__(self, queue: WorkQueue, cache: TranscodeCache, max_pixels: int):
        self._queue = queue
        self.cache = cache
        self._max_pixels = max_pixels
        self._running: dict[tuple[str, str], asyncio.Task[Variant]] = {}

    async def variant(self, media_id: str, target_mime: str,
                      load: Callable[[], Awaitable[bytes]]) -> Variant:
        key = (media_id, target_mime)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._produce(load, target_mime))
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    async def _produce(self, load: Callable[[], Awaitable[bytes]], target_mime: str) -> Variant:
        data = await load()
        return await self._queue.run(transcode, data, target_mime, self._max_pixels)

    def _finished(self, key: tuple[str, str], task: asyncio.Task[Variant]) -> None:
        current = self._running.get(key) is task  # False once `forget` dropped it
        if current:
            del self._running[key]
        if not task.cancelled() and task.exception() is None and current:  # exception() marks it seen
            self.cache.put(key, task.result())

    def forget(self, media_id: str) -> None:
        """Drops a deleted file's variants, and keeps transcodes still running for it out of the cache."""
        for mime in FORMAT_MIMES.values():
            self.cache.discard((media_id, mime))
            self._running.pop((media_id, mime), None)

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        self._queue.close()
