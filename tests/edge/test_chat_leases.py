"""Chat with credit leases on (the default; tests/edge/test_chat.py pins them off to test the per-request
holds): a premium caller's chat, free for them, touches accounts only through the cached authentication
(no hold, no ledger entry, whole or streamed, finished or left), and a caller without premium is still
refused before the model runs, with nothing held."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.edge.test_auth import assert_envelope
from tests.edge.test_chat import MODEL, ChatStack, active, generated
from tests.llm.helpers import serve_llm
from tests.support.platform import running_platform
from tests.support.waiting import eventually
from univence.accounts.v1 import accounts_pb2 as apb

CREDITS_MC = 100_000


@pytest.fixture
async def stack(tmp_path):
    async with serve_llm() as (_, llm), \
            running_platform(tmp_path, modalities=["llm"],
                             modality_addresses={"llm": f"127.0.0.1:{llm.port}"}) as platform, \
            httpx.AsyncClient(base_url=platform.base_url, timeout=60) as http:
        assert platform.edge_settings.credit_leases  # the default this file is about
        user_id, key = await platform.user_with_key("vip@example.com", premium=True, credits_mc=CREDITS_MC)
        client = openai.AsyncOpenAI(api_key=key, base_url=f"{platform.base_url}/v1", max_retries=0, timeout=60)
        yield ChatStack(platform, http, client, key, user_id, tmp_path / "accounts.db")
        await client.close()


async def ledger_kinds(stack: ChatStack, user_id: str) -> list[str]:
    entries = (await stack.platform.accounts.ListLedgerEntries(
        apb.ListLedgerEntriesRequest(user_id=user_id, page_size=100))).entries
    return [entry.kind for entry in entries]


async def test_a_premium_chat_whole_streamed_or_left_holds_and_charges_nothing(stack):
    messages = [{"role": "user", "content": "Count to ten."}]
    completion = await stack.client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
    assert completion.usage.completion_tokens >= 1
    stream = await stack.client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, stream=True)
    assert [chunk async for chunk in stream]
    # A client that leaves mid-stream: the generation stops, and there is still nothing to settle.
    async with stack.http.stream("POST", "/v1/chat/completions", headers={"X-API-Key": stack.key},
                                 json={"messages": messages, "max_tokens": 200, "stream": True}) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                break
    assert await eventually(lambda: active() == 0, seconds=15)
    assert stack.holds() == []
    balance = await stack.platform.balance(stack.user_id)
    assert (balance.balance_mc, balance.held_mc) == (CREDITS_MC, 0)
    assert await ledger_kinds(stack, stack.user_id) == ["grant"]


async def test_without_premium_the_chat_is_refused_before_the_model_runs_and_nothing_stays_held(stack):
    before = generated()
    user_id, key = await stack.platform.user_with_key("free@example.com", credits_mc=CREDITS_MC)
    response = await stack.http.post("/v1/chat/completions", headers={"X-API-Key": key},
                                     json={"messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert assert_envelope(response, 403, "premium_required")["code"] == "premium_required"
    assert generated() == before  # the model never ran for them
    balance = await stack.platform.balance(user_id)
    assert (balance.balance_mc, balance.held_mc) == (CREDITS_MC, 0)
    assert await ledger_kinds(stack, user_id) == ["grant"]
