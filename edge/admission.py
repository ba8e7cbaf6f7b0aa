"""Admission before Reserve: a request the modality's queue would refuse is refused before any credits
are held, so a burst's 429s (queue full) never make another request of the same user a 402.

Each modality service publishes its queue's capacity (GetServiceInfoResponse.limits
`queue_max_pending`: items waiting plus running, services/common/modality.py). The edge counts its own
calls in flight per modality and answers 429 with Retry-After, before Reserve, once that many are in
flight. Several edge processes share one service's queue, so this count is a lower bound: the
service's own RESOURCE_EXHAUSTED stays final, and the flows release the hold before that 429 is
answered (edge.serving).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping

from edge.errors import APIError

QUEUE_LIMIT = "queue_max_pending"
RETRY_AFTER_SECONDS = 1


class Admission:
    """Calls in flight per modality service, in this edge process."""

    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()

    def enter(self, service: str, limits: Mapping[str, float] | None) -> Callable[[], None]:
        """Counts one call to `service` in flight, or raises the 429 when its published queue is full;
        returns the function that ends the count (calling it again does nothing)."""
        capacity = (limits or {}).get(QUEUE_LIMIT, math.inf)
        if self.in_flight[service] >= capacity:
            raise APIError(429, f"the {service} queue is full ({int(capacity)} requests waiting or running); "
                           "retry later", "rate_limit_error", code="queue_full",
                           headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.in_flight[service] += 1
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self.in_flight[service] -= 1

        return leave
