"""Models that cannot run here. TurboDiffusion (no CUDA, not installed, or the tiny profile): the service
stays up, NOT_SERVING, and every GenerateVideo answers MODEL_UNAVAILABLE saying what to install or set;
it publishes the resolutions TurboDiffusion makes (no 1080p). Never a stand-in. The diffusers model
missing: a load error that names it and what to do."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import torch

from services.common.errors import ModelLoadError
from services.video.backends import resolve_backend, turbo_installed
from services.video.backends.turbo import unavailable_reason
from services.video.backends.wan import load_full
from services.video.fixtures import serve, settings_for
from tests.support.grpc_errors import error_info
from tests.video.helpers import request
from univence.common.v1 import common_pb2


@pytest.mark.asyncio(loop_scope="session")
async def test_turbodiffusion_here_is_a_clear_model_unavailable_error():
    async with serve(settings_for(backend="turbodiffusion", profile="full"), wait_loaded=False) as video:
        for _ in range(200):
            info = await video.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
            if info.load_error:
                break
            await asyncio.sleep(0.05)
        assert not info.ready and "TurboDiffusion" in info.load_error
        assert list(info.models[0].sizes) == ["480p", "720p"]
        with pytest.raises(grpc.RpcError) as caught:
            async for _ in video.stub.GenerateVideo(request()):
                pass
        error = error_info(caught.value)
        assert error.code == grpc.StatusCode.UNAVAILABLE and error.reason == "MODEL_UNAVAILABLE"
        assert "CUDA only" in error.message and "pip install" in error.message
        assert "UNIVENCE_VIDEO_BACKEND=diffusers" in error.message


def test_auto_picks_diffusers_without_a_gpu_or_turbodiffusion_and_the_tiny_profile_has_no_turbo():
    assert not turbo_installed()
    assert resolve_backend(settings_for(backend="auto"), "full", "cpu") == "diffusers"
    assert resolve_backend(settings_for(backend="auto"), "tiny", "cpu") == "diffusers"
    assert "no tiny profile" in unavailable_reason("tiny", "cpu")


def test_a_missing_diffusers_model_says_where_to_get_it(tmp_path):
    with pytest.raises(ModelLoadError) as caught:
        load_full(settings_for(model=str(tmp_path / "wan")), torch.float32)
    message = str(caught.value)
    assert "no model_index.json" in message and "hf download Wan-AI/Wan2.2-I2V-A14B-Diffusers" in message
    assert "UNIVENCE_VIDEO_MODEL" in message and "UNIVENCE_VIDEO_PROFILE=tiny" in message
