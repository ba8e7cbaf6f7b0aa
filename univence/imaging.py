"""The one safe way into an untrusted image, for the edge and every service.

Two levels, both bounded before any pixel is allocated:
- `check_header` reads the size from a PNG, GIF, WebP or JPEG header in pure Python (no Pillow, so the
  edge can refuse a bad or oversized image before it reserves credits, without decoding it);
- `decode` checks the bytes and the declared pixel count, then decodes with Pillow, applies the EXIF
  orientation (phone photos are stored sideways) and converts to the mode the model wants.

A rejection is an `ImageRejected` naming the request field; the edge turns it into a 400 or 413, the
services into INVALID_REQUEST or PAYLOAD_TOO_LARGE. `encode` is the way back out: the services' results.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

MIB = 1024 * 1024
# The encodings accepted as input, by Pillow's format name.
FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF")
ACCEPTED = "PNG, JPEG, WebP or GIF are accepted"


class ImageRejected(ValueError):
    """An input image that is not accepted: not an image, corrupt, or over a limit (`too_large`)."""

    def __init__(self, message: str, param: str, *, too_large: bool = False):
        super().__init__(message)
        self.message, self.param, self.too_large = message, param, too_large


def _size_text(limit: int) -> str:
    return f"{limit / MIB:g} MiB"


def probe(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from a PNG, GIF, WebP or JPEG header, without decoding; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        return "png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return "gif", int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return "webp", 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            return ("webp", int.from_bytes(data[26:28], "little") & 0x3FFF,
                    int.from_bytes(data[28:30], "little") & 0x3FFF)
        return None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    """Walks the JPEG markers to the first start-of-frame, which holds the size."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if i + 9 > len(data):
                return None
            return "jpeg", int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def check_bytes(data: bytes, param: str, *, max_bytes: int) -> None:
    """Empty input is refused, and so is input over `max_bytes` (too large)."""
    if not data:
        raise ImageRejected(f"{param} is empty", param)
    if len(data) > max_bytes:
        raise ImageRejected(f"{param} is {len(data)} bytes; at most {_size_text(max_bytes)} per image", param,
                            too_large=True)


def check_pixels(width: int, height: int, param: str, *, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise ImageRejected(f"{param} has no pixels ({width}x{height})", param)
    if width * height > max_pixels:
        raise ImageRejected(f"{param} is {width}x{height} ({width * height} pixels); at most {max_pixels} pixels "
                            "per image", param, too_large=True)


def check_header(data: bytes, param: str, *, max_bytes: int, max_pixels: int) -> tuple[int, int]:
    """The image's (width, height) from its header, checked against the limits; nothing is decoded."""
    check_bytes(data, param, max_bytes=max_bytes)
    probed = probe(data)
    if probed is None:
        raise ImageRejected(f"{param} is not an image ({ACCEPTED})", param)
    _, width, height = probed
    check_pixels(width, height, param, max_pixels=max_pixels)
    return width, height


def identify(data: bytes, param: str, *, formats: tuple[str, ...] = FORMATS) -> tuple[str, int, int]:
    """(Pillow format name, width, height) read by Pillow from the header, without decoding the pixels:
    for checking that stored bytes are the image their MIME type says (any size: nothing is decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(formats)) as image:
                return image.format or "", image.width, image.height
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"{param} has too many pixels: {exc}", param, too_large=True) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected(f"{param} is not an image ({ACCEPTED})", param) from None


def decode(data: bytes, param: str, *, max_bytes: int, max_pixels: int, mode: str | None = "RGB",
           formats: tuple[str, ...] = FORMATS, exif_transpose: bool = True) -> Image.Image:
    """The decoded image: the byte and pixel limits are checked from the header first (a decompression
    bomb costs nothing), then it is decoded in full (a truncated file is refused here, not later in a
    model), turned upright by its EXIF orientation, and converted to `mode` (None keeps its own, e.g.
    for masks whose alpha matters)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    check_bytes(data, param, max_bytes=max_bytes)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb limit is fixed and global; ours is checked just below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:
        raise ImageRejected(f"{param} declares more pixels than the {max_pixels} accepted", param,
                            too_large=True) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRejected(f"{param} is not an image ({ACCEPTED})", param) from None
    check_pixels(*image.size, param, max_pixels=max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            if exif_transpose:
                image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise ImageRejected(f"{param} is truncated or corrupt and cannot be decoded", param) from None
    if mode is None or image.mode == mode:
        return image
    try:
        return image.convert(mode)
    except (ValueError, OSError):
        raise ImageRejected(f"{param} has a pixel format ({image.mode}) that cannot be read as {mode}",
                            param) from None


def encode(image: Image.Image, pillow_format: str, png_level: int) -> bytes:
    """A result image in a Pillow format: PNG at zlib level `png_level` (0-9, lower is faster and bigger),
    other formats at quality 95; JPEG, which has no alpha, gets the image as RGB."""
    out = io.BytesIO()
    if pillow_format == "PNG":
        image.save(out, format="PNG", compress_level=png_level)
    else:
        if pillow_format == "JPEG" and image.mode != "RGB":
            image = image.convert("RGB")
        image.save(out, format=pillow_format, quality=95)
    return out.getvalue()
