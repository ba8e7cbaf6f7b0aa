"""TranscodeCache with an injected clock: sliding expiration, LRU eviction by size."""

from __future__ import annotations

from services.media.transcode import TranscodeCache, Variant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def variant(size: int, fill: bytes = b"x") -> Variant:
    return Variant.of(fill * size)


def test_hit_returns_the_same_variant():
    cache = TranscodeCache(1000, 3600, Clock())
    v = variant(10)
    cache.put("a", v)
    assert cache.get("a") is v
    assert cache.get("b") is None


def test_sliding_expiration():
    clock = Clock()
    cache = TranscodeCache(1000, 3600, clock)
    cache.put("a", variant(10))
    cache.put("b", variant(10))
    for _ in range(3):  # "a" is used every 50 minutes, so it outlives its first hour
        clock.now += 50 * 60
        assert cache.get("a") is not None
    assert cache.get("b") is None, "b was never used again and expired after 60 minutes"
    assert len(cache) == 1 and cache.size_bytes == 10
    clock.now += 60 * 60
    assert cache.get("a") is None, "an hour without a hit expires it"
    assert len(cache) == 0 and cache.size_bytes == 0


def test_expiry_is_exactly_ttl_after_the_last_use():
    clock = Clock()
    cache = TranscodeCache(1000, 3600, clock)
    cache.put("a", variant(1))
    clock.now += 3599.9
    assert cache.get("a") is not None
    clock.now += 3599.9
    assert cache.get("a") is not None
    clock.now += 3600
    assert cache.get("a") is None


def test_expired_entries_are_evicted_on_put():
    clock = Clock()
    cache = TranscodeCache(1000, 60, clock)
    cache.put("a", variant(100))
    clock.now += 61
    cache.put("b", variant(100))
    assert len(cache) == 1 and cache.size_bytes == 100


def test_least_recently_used_goes_first_when_over_size():
    cache = TranscodeCache(300, 3600, Clock())
    for key in "abc":
        cache.put(key, variant(100))
    assert cache.get("a") is not None  # now "b" is the least recently used
    cache.put("d", variant(100))
    assert cache.get("b") is None
    assert all(cache.get(k) is not None for k in "acd")
    assert cache.size_bytes == 300


def test_replacing_and_discarding_keep_the_size_right():
    cache = TranscodeCache(1000, 3600, Clock())
    cache.put("a", variant(100))
    cache.put("a", variant(200))
    assert cache.size_bytes == 200 and len(cache) == 1
    cache.discard("a")
    cache.discard("missing")
    assert cache.size_bytes == 0 and len(cache) == 0


def test_a_variant_larger_than_the_cache_is_not_kept():
    cache = TranscodeCache(100, 3600, Clock())
    cache.put("small", variant(50))
    cache.put("big", variant(101))
    assert cache.get("big") is None
    assert cache.get("small") is not None
    assert TranscodeCache(0, 3600, Clock()).get("x") is None
