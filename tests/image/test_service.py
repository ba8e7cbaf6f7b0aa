"""The image service as an operator sees it: settings, what it reports it serves, the tiny models'
build, the full profile's loading path (from_pretrained of a local folder) and its clear errors when
a model cannot load."""

from __future__ import annotations

import asyncio

import pytest
import torch
from diffusers import Flux2KleinPipeline, Flux2Transformer2DModel

from services.image.catalog import edit_model, generation_model
from services.image.config import ImageSettings
from services.image.tiny import build_tiny_pipeline
from tests.image.helpers import serve, settings_for
from tests.support.grpc_errors import expect_error
from univence.common.v1 import common_pb2
from univence.image.v1 import image_pb2 as pb


def test_settings_defaults_and_environment(monkeypatch):
    settings = ImageSettings()
    assert (settings.port, settings.metrics_port) == (50053, 9153)
    assert settings.distilled_model == "black-forest-labs/FLUX.2-klein-4B"
    assert settings.base_model == "black-forest-labs/FLUX.2-klein-base-4B"
    assert settings.out_layers("full") == (9, 18, 27) and settings.out_layers("tiny") == (0, 1, 2)
    assert settings.sequence_length("full") == 512
    monkeypatch.setenv("UNIVENCE_IMAGE_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("UNIVENCE_IMAGE_TEXT_ENCODER_OUT_LAYERS", "[1, 2, 3]")
    monkeypatch.setenv("UNIVENCE_IMAGE_DISTILLED_MODEL", "/models/klein")
    settings = ImageSettings()
    assert settings.max_batch_size == 8 and settings.out_layers("full") == (1, 2, 3)
    assert settings.distilled_model == "/models/klein"
    with pytest.raises(ValueError, match="distilled_model"):
        ImageSettings(distilled_model="")


def test_public_model_names():
    assert generation_model("").id == "z-image-turbo"
    for alias in ("flux-schnell", "qwen/qwen-image", "Qwen/Qwen-Image", "pixart-sigma", "dall-e-3", "DALL-E-2"):
        assert generation_model(alias).id == "z-image-turbo"
    longcat = generation_model("longcat-image-edit")
    assert (longcat.max_width, longcat.max_height, longcat.runs_on) == (1792, 1024, "distilled")
    assert generation_model("gpt-image-1") is None
    assert edit_model("") == ("black-forest-labs/FLUX.2-klein-4B", "distilled")
    assert edit_model("black-forest-labs/flux.2-klein-base-4b") == ("black-forest-labs/FLUX.2-klein-base-4B", "base")
    assert edit_model("z-image-turbo")[1] == "distilled" and edit_model("sdxl") is None


def test_tiny_pipelines_are_the_real_classes_and_the_same_every_build():
    one, two = build_tiny_pipeline(distilled=True), build_tiny_pipeline(distilled=True)
    assert type(one) is Flux2KleinPipeline and isinstance(one.transformer, Flux2Transformer2DModel)
    assert one.config.is_distilled and not build_tiny_pipeline(distilled=False).config.is_distilled
    for (name, a), (_, b) in zip(one.transformer.state_dict().items(), two.transformer.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    assert torch.equal(one.text_encoder.model.embed_tokens.weight, two.text_encoder.model.embed_tokens.weight)
    assert one.vae_scale_factor == 8  # the real model's factor, so the real size rules hold


async def test_service_info_lists_the_public_models(image):
    info = await image.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
    assert (info.service, info.profile, info.device, info.ready) == ("image", "tiny", "cpu", True)
    models = {m.id: m for m in info.models}
    assert list(models) == ["z-image-turbo", "longcat-image-edit", "black-forest-labs/FLUX.2-klein-4B",
                            "black-forest-labs/FLUX.2-klein-base-4B"]
    assert set(models["z-image-turbo"].aliases) == {"flux-schnell", "qwen/qwen-image", "pixart-sigma", "dall-e-3",
                                                   "dall-e-2"}
    assert models["z-image-turbo"].task == "image.generation" and models["z-image-turbo"].source == "tiny-random"
    # What the edge resolves requests with: the task's default, the edit model a name means, sizes, bounds.
    assert [m.id for m in info.models if m.task_default] == ["z-image-turbo", "black-forest-labs/FLUX.2-klein-4B"]
    assert {m.id: m.runs_on for m in info.models} == {
        "z-image-turbo": "black-forest-labs/FLUX.2-klein-4B", "longcat-image-edit": "black-forest-labs/FLUX.2-klein-4B",
        "black-forest-labs/FLUX.2-klein-4B": "black-forest-labs/FLUX.2-klein-4B",
        "black-forest-labs/FLUX.2-klein-base-4B": "black-forest-labs/FLUX.2-klein-base-4B"}
    longcat = models["longcat-image-edit"]
    assert list(longcat.sizes) == ["256x256", "512x512", "1024x1024", "1024x1792", "1792x1024"]
    assert longcat.default_size == "1024x1024" and dict(longcat.limits) == {"max_width": 1792, "max_height": 1024}


async def test_the_limits_the_edge_checks_are_published_from_the_settings():
    async with serve(settings_for(max_n=8, max_input_image_mb=1.5, max_edit_side=1024)) as image:
        info = await image.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
    limits = dict(info.limits)
    assert (limits["max_n"], limits["max_input_image_bytes"], limits["max_edit_side"]) == (8, 1.5 * 1024 * 1024, 1024)
    assert (limits["max_prompt_chars"], limits["max_steps"], limits["max_guidance"]) == (4000, 100, 30)
    assert (limits["max_input_images"], limits["max_input_image_pixels"]) == (4, 4096 * 4096)
    assert (limits["max_batch_requests"], limits["min_input_side"], limits["max_input_aspect"]) == (5, 1, 8)


async def test_without_a_base_model_only_the_distilled_one_is_served(tmp_path):
    async with serve(settings_for(base_model="", warmup=True)) as image:
        info = await image.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
        assert "black-forest-labs/FLUX.2-klein-base-4B" not in [m.id for m in info.models]
        error = await expect_error(image.stub.GenerateImages(pb.GenerateImagesRequest(
            prompt="x", model="black-forest-labs/FLUX.2-klein-base-4B")), "INVALID_REQUEST")
        assert error.param == "model" and "not served" in error.message


async def _load_error(settings: ImageSettings) -> str:
    async with serve(settings, wait_loaded=False) as image:
        for _ in range(500):
            info = await image.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
            if info.load_error:
                break
            await asyncio.sleep(0.02)
        assert not info.ready
        error = await expect_error(image.stub.GenerateImages(pb.GenerateImagesRequest(prompt="x")),
                                   "MODEL_UNAVAILABLE")
        assert info.load_error in error.message
        return info.load_error


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for machines without a GPU")
async def test_full_profile_without_a_gpu_says_what_to_do(tmp_path):
    message = await _load_error(settings_for(profile="full", device="auto"))
    assert "CUDA GPU" in message and "UNIVENCE_IMAGE_PROFILE=tiny" in message


async def test_a_missing_model_folder_names_the_model_and_what_to_do(tmp_path):
    missing = str(tmp_path / "FLUX.2-klein-4B")
    message = await _load_error(settings_for(profile="full", distilled_model=missing, base_model=""))
    assert missing in message and "download" in message and "UNIVENCE_IMAGE_DISTILLED_MODEL" in message


async def test_text_encoder_layers_past_the_model_are_a_load_error(tmp_path):
    message = await _load_error(settings_for(text_encoder_out_layers=[9, 18, 27]))
    assert "text_encoder_out_layers" in message and "2 layers" in message


async def test_the_full_profile_loads_a_local_pipeline_folder_with_from_pretrained(tmp_path):
    """A saved pipeline folder goes through the full profile's real loading path (here the tiny weights,
    in float32 on the CPU), and makes the very image the tiny profile makes."""
    build_tiny_pipeline(distilled=True, seed=0).save_pretrained(tmp_path / "klein")
    request = pb.GenerateImagesRequest(prompt="a red fox", width=256, height=256, seed=21)
    settings = settings_for(profile="full", distilled_model=str(tmp_path / "klein"), base_model="",
                            text_encoder_out_layers=[0, 1, 2], max_sequence_length=64)
    async with serve(settings) as image:
        info = await image.info.GetServiceInfo(common_pb2.GetServiceInfoRequest())
        assert info.profile == "full" and info.models[0].source == str(tmp_path / "klein")
        loaded = (await image.stub.GenerateImages(request)).images[0].data
    async with serve(settings_for()) as image:
        tiny = (await image.stub.GenerateImages(request)).images[0].data
    assert loaded == tiny
