"""Per-key rate limiting: a token bucket per API key, in this edge process.

Headers follow OpenAI: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
x-ratelimit-reset-requests; a refused request gets 429 with Retry-After.
"""

from __future__ import annotations

import math
import time

from fastapi import Request

from edge.errors import APIError
from edge.middleware import add_response_headers


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000):
        self.per_minute = per_minute
        self.capacity = max(1, burst)
        self._rate = per_minute / 60.0
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    def check(self, key: str, request: Request) -> None:
        """Takes a token for `key` or raises 429; sets the headers the response will carry."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.capacity), now))
        tokens = min(self.capacity, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens, now)
        reset_seconds = (self.capacity - tokens) / self._rate
        headers = {
            "x-ratelimit-limit-requests": str(self.per_minute),
            "x-ratelimit-remaining-requests": str(int(tokens)),
            "x-ratelimit-reset-requests": f"{reset_seconds:.3f}s",
        }
        if not allowed:
            retry_after = max(1, math.ceil((1.0 - tokens) / self._rate))
            raise APIError(429, f"Rate limit reached: {self.per_minute} requests per minute for this key; "
                           f"retry in {retry_after}s", "rate_limit_error", code="rate_limit_exceeded",
                           headers={**headers, "Retry-After": str(retry_after)})
        add_response_headers(request, headers)


class AuthFailureLimiter:
    """Failed authentications per client address: a token bucket that only failures take from. Once an
    address has used up its bucket, its requests get 429 before the accounts service is asked again, until
    the bucket refills; successful authentications take nothing."""

    def __init__(self, per_minute: int, burst: int, max_addresses: int = 100_000):
        self.per_minute = per_minute
        self.capacity = max(1, burst)
        self._rate = per_minute / 60.0
        self._max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, last refill time)

    def _tokens(self, address: str, now: float) -> float:
        tokens, last = self._buckets.get(address, (float(self.capacity), now))
        return min(self.capacity, tokens + (now - last) * self._rate)

    def check(self, address: str) -> None:
        """Raises 429 (with Retry-After) when `address` has no failures left."""
        if self.per_minute <= 0 or address not in self._buckets:
            return
        tokens = self._tokens(address, time.monotonic())
        if tokens >= 1.0:
            return
        retry_after = max(1, math.ceil((1.0 - tokens) / self._rate))
        raise APIError(429, f"Too many failed authentications from this address: at most {self.per_minute} per "
                       f"minute; retry in {retry_after}s", "rate_limit_error", code="rate_limit_exceeded",
                       headers={"Retry-After": str(retry_after)})

    def failed(self, address: str) -> None:
        """Counts one failed authentication from `address`."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        tokens = max(0.0, self._tokens(address, now) - 1.0)
        if len(self._buckets) >= self._max_addresses and address not in self._buckets:
            self._buckets.clear()
        self._buckets[address] = (tokens, now)
