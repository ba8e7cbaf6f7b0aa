"""FilesystemBlobStore: atomic puts, ranged reads, fan-out, and keys that cannot reach a path."""

from __future__ import annotations

import pytest

from services.media.storage import BlobNotFound, FilesystemBlobStore, InvalidKey, read_all

KEY = "AbCdEfGh_-0123456789abcdefghijkl"


@pytest.fixture
def store(tmp_path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "media")


def test_put_read_size_delete(store):
    store.put(KEY, b"0123456789")
    assert store.size(KEY) == 10
    assert read_all(store, KEY) == b"0123456789"
    assert store.path(KEY) == store.root / "blobs" / "Ab" / "Cd" / KEY
    assert store.delete(KEY) is True
    assert store.delete(KEY) is False
    with pytest.raises(BlobNotFound):
        store.size(KEY)
    with pytest.raises(BlobNotFound):
        store.open_range(KEY)


def test_ranges(store):
    store.put(KEY, b"0123456789")

    def read(offset, length=None):
        reader = store.open_range(KEY, offset, length)
        try:
            return b"".join(iter(lambda: reader.read(3), b""))
        finally:
            reader.close()

    assert read(2, 4) == b"2345"
    assert read(7) == b"789"
    assert read(8, 100) == b"89"
    assert read(10) == b""
    assert read(50) == b""


def test_put_replaces_atomically_and_leaves_no_temp_files(store):
    store.put(KEY, b"old")
    store.put(KEY, b"new bytes")
    assert read_all(store, KEY) == b"new bytes"
    assert [p.name for p in store.path(KEY).parent.iterdir()] == [KEY]


@pytest.mark.parametrize("key", ["", "short", "../../etc/passwd", "a/b/c/d/e/f/g/h", "..%2F..%2Fxxxx",
                                 ".tmp-abcdefgh", "abc defghijk", "x" * 129, "abcdefgh\x00ijk"])
def test_bad_keys_never_touch_the_filesystem(store, key):
    for call in (lambda: store.put(key, b"x"), lambda: store.open_range(key),
                 lambda: store.size(key), lambda: store.delete(key)):
        with pytest.raises(InvalidKey):
            call()
    assert list((store.root / "blobs").iterdir()) == []
