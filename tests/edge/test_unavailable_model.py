"""A modality whose models cannot load here (UNIVENCE_LLM_DEVICE=cuda:7 on a machine without that GPU)
stays up and says why everywhere a user looks: /readyz, /v1/models, and a 503 naming the problem on its
endpoint; the rest of the API keeps working."""

from __future__ import annotations

import httpx

from services.common.testing import running_service
from services.llm.fixtures import settings_for
from services.llm.server import definition
from tests.edge.test_auth import assert_envelope
from tests.support.platform import running_platform


async def test_a_model_that_cannot_load_is_named_by_readyz_models_and_a_503(tmp_path):
    settings = settings_for(device="cuda:7")
    async with running_service(definition(settings), settings, wait_loaded=False) as llm, \
            running_platform(tmp_path, modalities=["llm"], modality_addresses={"llm": f"127.0.0.1:{llm.port}"}
                             ) as platform, httpx.AsyncClient(base_url=platform.base_url, timeout=30) as http:
        _, key = await platform.user_with_key("gpu@example.com", premium=True)
        headers = {"Authorization": f"Bearer {key}"}

        ready = await http.get("/readyz")
        assert ready.status_code == 200, "accounts and media serve: the edge is ready"
        assert ready.json()["services"]["llm"] == "NOT_SERVING"
        assert "cuda:7" in ready.json()["problems"]["llm"]

        models = (await http.get("/v1/models", headers=headers)).json()["data"]
        chat_model = next(m for m in models if m["service"] == "llm")
        assert chat_model["ready"] is False and "cuda:7" in chat_model["error"]

        reply = await http.post("/v1/chat/completions", headers=headers,
                                json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
        error = assert_envelope(reply, 503, "processing_error")
        assert "cuda:7" in error["message"] and error["code"] == "model_unavailable"
        assert llm.load_error is not None and llm.lost is None, "the service stays up, reporting its problem"
