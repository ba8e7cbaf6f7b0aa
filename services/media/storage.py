"""Where the bytes live. `BlobStore` is the small interface the service needs, so an object store
(S3 and the like: put, ranged get, head, delete) can replace the filesystem for scale-out.

All methods block; the servicer calls them through asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Protocol

# Keys are the service's own random ids, but a store never trusts that: only these can reach a path.
_KEY = re.compile(r"[A-Za-z0-9_-]{8,128}")


class InvalidKey(ValueError):
    """A key that is not a well-formed blob key (it never reaches the filesystem)."""


class BlobNotFound(KeyError):
    """No blob is stored under the key."""


class BlobReader(Protocol):
    """A readable byte range; `read(n)` returns b"" at its end."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Stores `data` under `key` atomically: readers see the old blob, none, or all of the new one."""
        ...

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        """Opens `length` bytes from `offset` (to the end when None); raises BlobNotFound."""
        ...

    def size(self, key: str) -> int:
        """The blob's size in bytes; raises BlobNotFound."""
        ...

    def delete(self, key: str) -> bool:
        """Removes the blob; False when there was none."""
        ...


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidKey(f"not a valid blob key: {key!r}")
    return key


class _RangeReader:
    """A file opened at `offset` that reads at most `remaining` bytes."""

    def __init__(self, file: BinaryIO, remaining: int):
        self._file = file
        self._remaining = remaining

    def read(self, n: int = -1, /) -> bytes:
        if self._remaining <= 0:
            return b""
        n = self._remaining if n < 0 else min(n, self._remaining)
        data = self._file.read(n)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


class FilesystemBlobStore:
    """Blobs as files under `root/blobs/ab/cd/<key>`: two levels of fan-out by key prefix keep any one
    folder small. Writes go to a temp file in the final folder, are fsynced, then renamed into place."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self._blobs = self.root / "blobs"
        self._blobs.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        check_key(key)
        path = self._blobs / key[:2] / key[2:4] / key
        # Unreachable with a checked key; kept so a future key format cannot escape the root.
        if not path.resolve().is_relative_to(self._blobs):
            raise InvalidKey(f"blob key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        # A leading dot keeps temp files out of the key space (no key starts with ".").
        temp = final.parent / f".tmp-{key}-{secrets.token_hex(4)}"
        try:
            with open(temp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> BlobReader:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        try:
            file = open(self.path(key), "rb")  # noqa: SIM115 - the reader owns and closes it
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            size = os.fstat(file.fileno()).st_size
            file.seek(min(offset, size))
            available = max(0, size - offset)
        except BaseException:
            file.close()
            raise
        return _RangeReader(file, available if length is None else min(length, available))

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True


def read_all(store: BlobStore, key: str) -> bytes:
    """The whole blob (for transcoding)."""
    reader = store.open_range(key)
    try:
        return reader.read()
    finally:
        reader.close()
