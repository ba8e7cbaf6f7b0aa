"""Rate limiting in this edge process: a token bucket per API key, and one per client address for failed
authentications (both on TokenBuckets).

Headers follow OpenAI: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
x-ratelimit-reset-requests; a refused request gets 429 with Retry-After.
"""

from __future__ import annotations

import math
import time

from fastapi import Request

from edge.errors import APIError
from edge.middleware import add_response_headers


class TokenBuckets:
    """One token bucket per key (refilled at `per_minute`, holding at most `burst`), in this process; the
    table is cleared when it would pass `max_keys`, which only ever gives keys a fresh full bucket."""

    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000):
        self.per_minute = per_minute
        self.capacity = max(1, burst)
        self._rate = per_minute / 60.0
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def __contains__(self, key: str) -> bool:
        return key in self._buckets

    def tokens(self, key: str, now: float) -> float:
        """The tokens `key` has at `now` (a key never seen has a full bucket)."""
        tokens, last = self._buckets.get(key, (float(self.capacity), now))
        return min(self.capacity, tokens + (now - last) * self._rate)

    def store(self, key: str, tokens: float, now: float) -> None:
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens, now)

    def seconds_until(self, tokens: float, wanted: float) -> float:
        """How long a bucket holding `tokens` takes to hold `wanted`."""
        return (wanted - tokens) / self._rate

    def retry_after(self, tokens: float) -> int:
        """Whole seconds until a bucket holding `tokens` has one to give (Retry-After)."""
        return max(1, math.ceil(self.seconds_until(tokens, 1.0)))


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000):
        self._buckets = TokenBuckets(per_minute, burst, max_keys)
        self.per_minute = per_minute

    def check(self, key: str, request: Request) -> None:
        """Takes a token for `key` or raises 429; sets the headers the response will carry."""
        buckets = self._buckets
        if not buckets.enabled:
            return
        now = time.monotonic()
        tokens = buckets.tokens(key, now)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        buckets.store(key, tokens, now)
        headers = {
            "x-ratelimit-limit-requests": str(self.per_minute),
            "x-ratelimit-remaining-requests": str(int(tokens)),
            "x-ratelimit-reset-requests": f"{buckets.seconds_until(tokens, buckets.capacity):.3f}s",
        }
        if not allowed:
            retry_after = buckets.retry_after(tokens)
            raise APIError(429, f"Rate limit reached: {self.per_minute} requests per minute for this key; "
                           f"retry in {retry_after}s", "rate_limit_error", code="rate_limit_exceeded",
                           headers={**headers, "Retry-After": str(retry_after)})
        add_response_headers(request, headers)


class AuthFailureLimiter:
    """Failed authentications per client address: a token bucket that only failures take from. Once an
    address has used up its bucket, its requests get 429 before the accounts service is asked again, until
    the bucket refills; successful authentications take nothing."""

    def __init__(self, per_minute: int, burst: int, max_addresses: int = 100_000):
        self._buckets = TokenBuckets(per_minute, burst, max_addresses)
        self.per_minute = per_minute

    def check(self, address: str) -> None:
        """Raises 429 (with Retry-After) when `address` has no failures left."""
        buckets = self._buckets
        if not buckets.enabled or address not in buckets:
            return
        tokens = buckets.tokens(address, time.monotonic())
        if tokens >= 1.0:
            return
        retry_after = buckets.retry_after(tokens)
        raise APIError(429, f"Too many failed authentications from this address: at most {self.per_minute} per "
                       f"minute; retry in {retry_after}s", "rate_limit_error", code="rate_limit_exceeded",
                       headers={"Retry-After": str(retry_after)})

    def failed(self, address: str) -> None:
        """Counts one failed authentication from `address`."""
        buckets = self._buckets
        if not buckets.enabled:
            return
        now = time.monotonic()
        buckets.store(address, max(0.0, buckets.tokens(address, now) - 1.0), now)
