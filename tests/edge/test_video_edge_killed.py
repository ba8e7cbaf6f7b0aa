"""Kill the edge mid-job, for real (issue 11): the edge running a video job is its own process, SIGKILLed
while the job runs (no shutdown code runs: nothing marks the job, nothing releases its hold). The other
edge (the test's, sharing accounts and media) then reports the job failed ("its runner stopped") within
the runner's lease plus one sweep, never stuck in_progress; the killed edge's hold, no longer renewed,
expires by itself, so nothing is charged and the ledger sums to the balance; the video service's slot
is free again; and the edge restarted in its place reports the same failed job."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from tests.edge.test_settlement import sums_to_balance
from tests.edge.test_video_jobs import LONG
from tests.edge.video_stack import HEARTBEAT_SECONDS, LEASE_SECONDS, START_MC, SWEEP_SECONDS, picture, running_stack
from tests.support.ports import free_port
from tests.support.processes import Process, answering, edge_process, killed_at_exit

HOLD_TTL_SECONDS, HOLD_SWEEP_SECONDS = 2, 0.2


def video_edge(tmp_path: Path, port: int, stack, name: str) -> Process:
    """`python -m edge` on the stack's accounts, media and video service, with the stack's job timings."""
    settings = stack.platform.edge_settings
    env = edge_process(tmp_path, port, settings.accounts_address, settings.media_address).env
    return Process([sys.executable, "-m", "edge"], {
        **env, "UNIVENCE_EDGE_MODALITIES": '["video"]',
        "UNIVENCE_EDGE_MODALITY_ADDRESSES": json.dumps({"video": stack.video.address}),
        "UNIVENCE_EDGE_JOB_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "UNIVENCE_EDGE_JOB_LEASE_SECONDS": str(LEASE_SECONDS)}, tmp_path / f"{name}.log")


async def test_an_edge_killed_mid_job_is_reported_failed_and_charges_nothing(tmp_path):
    async with running_stack(tmp_path, accounts_overrides={"hold_ttl_seconds": HOLD_TTL_SECONDS,
                                                           "hold_sweep_seconds": HOLD_SWEEP_SECONDS}) as stack:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        edge = video_edge(tmp_path, port, stack, "edge-killed")
        edge.start()
        with killed_at_exit(edge):
            await answering(base_url, edge)
            user_id, headers = await stack.user("killed-edge@example.com")
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                created = await http.post("/v1/videos", headers=headers, data={"prompt": "a storm", **LONG},
                                          files={"input_reference": ("first.png", picture(), "image/png")})
            assert created.status_code == 200, created.text
            video_id = created.json()["id"]
            await stack.until(video_id, headers, "in_progress")  # read through the other edge
            assert (await stack.balance(user_id))[1] > 0, "held while it runs"
            edge.kill()
            killed = time.monotonic()
            ended = await stack.until(video_id, headers, "failed", within=LEASE_SECONDS + 10)
            assert time.monotonic() - killed < LEASE_SECONDS + SWEEP_SECONDS + 2, "lease + sweep, with slack"
            assert ended["error"]["code"] == "runner_stopped" and "its runner stopped" in ended["error"]["message"]
            await stack.settled(user_id, START_MC, within=HOLD_TTL_SECONDS + HOLD_SWEEP_SECONDS + 5)
            assert (await sums_to_balance(stack.platform.accounts, user_id)).balance_mc == START_MC
            await stack.idle()  # the killed edge's stream was cut: the service's slot is free

        restarted = video_edge(tmp_path, port, stack, "edge-restarted")
        restarted.start()
        with killed_at_exit(restarted):
            await answering(base_url, restarted)
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                again = (await http.get(f"/v1/videos/{video_id}", headers=headers)).json()
            assert (again["status"], again["error"]) == ("failed", ended["error"])
