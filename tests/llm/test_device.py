"""A device the machine does not have (UNIVENCE_LLM_DEVICE=cuda:7 on a CPU machine) leaves the llm
service up and saying why it cannot serve: health NOT_SERVING, GetServiceInfo's load_error, and
MODEL_UNAVAILABLE naming the problem on every RPC; never a traceback or a dead process."""

from __future__ import annotations

import logging

import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.testing import connected
from services.llm.config import LlmSettings
from services.llm.server import definition
from tests.llm.helpers import chat, user
from tests.support.grpc_errors import expect_error
from univence.common.v1 import common_pb2, common_pb2_grpc
from univence.llm.v1 import llm_pb2_grpc


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
async def test_a_missing_gpu_leaves_the_service_up_and_saying_why(caplog, monkeypatch):
    monkeypatch.setenv("UNIVENCE_LLM_DEVICE", "cuda:7")
    settings = LlmSettings(port=0, metrics_port=0, profile="tiny")  # the device comes from the environment
    assert settings.device == "cuda:7"
    caplog.set_level(logging.INFO)
    async with connected(definition(settings), settings, wait_loaded=False) as (runtime, channel):
        with pytest.raises(RuntimeError, match="cuda:7"):
            await runtime.wait_loaded()
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        info = await common_pb2_grpc.ServiceInfoServiceStub(channel).GetServiceInfo(
            common_pb2.GetServiceInfoRequest())
        assert not info.ready and "cuda:7" in info.load_error and info.device == "cuda:7"
        assert [m.id for m in info.models] == ["Qwen/Qwen3.5-4B"]  # what it would serve, for /v1/models
        error = await expect_error(llm_pb2_grpc.ChatServiceStub(channel).CreateChatCompletion(chat(user("hi"))),
                                   "MODEL_UNAVAILABLE")
        assert "cuda:7" in error.message and "CUDA GPU" in error.message
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    assert "Traceback" not in caplog.text
