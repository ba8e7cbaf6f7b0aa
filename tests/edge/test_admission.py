"""Admission before Reserve (issue 9): a burst larger than the modality's queue gets 429 for what the
queue cannot take, before anything is held, so no request of the same user gets 402 while the user
still has the credits; the tiny vision service with a 2-item queue and a slow upscaler."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from edge.admission import Admission
from edge.errors import APIError
from services.vision.fixtures import serve, settings_for
from tests.edge.vision_stack import b64, photo
from tests.support.platform import running_platform

LANCZOS_MC = 100  # the upscale minimum: a tiny image


async def test_a_burst_past_the_queue_is_429_before_reserve_and_never_402(tmp_path: Path):
    async with serve(settings_for(queue_max_pending=2, queue_concurrency=1)) as vision, \
            running_platform(tmp_path, modalities=["vision"],
                             modality_addresses={"vision": vision.address}) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=60) as http:
        models = vision.servicer.models
        fast = models.upscale

        def slow(job, on_tile=None):
            time.sleep(0.5)
            return fast(job, on_tile)

        models.upscale = slow
        try:
            # Credits for 3 upscales; the queue takes 2 at a time. Reserving first would hold 3 and
            # answer the other 3 with 402 (and the third held one with the service's 429).
            user_id, secret = await platform.user_with_key("burst@example.com", credits_mc=3 * LANCZOS_MC)
            body = {"image": b64(photo(30, 20)), "method": "lanczos"}
            answers = await asyncio.gather(*(http.post("/v1/images/upscale", json=body,
                                                       headers={"X-API-Key": secret}) for _ in range(6)))
        finally:
            models.upscale = fast
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 200, 429, 429, 429, 429], [a.text for a in answers]
        for refused in (a for a in answers if a.status_code == 429):
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "queue_full"
        balance = await platform.balance(user_id)
        assert (balance.balance_mc, balance.held_mc) == (LANCZOS_MC, 0)
        after = await http.post("/v1/images/upscale", json=body, headers={"X-API-Key": secret})
        assert after.status_code == 200  # the queue's places are given back


def test_admission_counts_calls_in_flight_per_service():
    admission = Admission()
    limits = {"queue_max_pending": 2}
    first, second = admission.enter("vision", limits), admission.enter("vision", limits)
    assert admission.enter("image", limits)  # another service's queue
    with pytest.raises(APIError) as refused:
        admission.enter("vision", limits)
    assert refused.value.status == 429
    first()
    first()  # leaving twice gives back one place only
    assert admission.in_flight["vision"] == 1
    admission.enter("vision", limits)
    second()
    assert admission.enter("unbounded", None)  # a service that publishes no capacity: never refused here
