"""The few values the edge keeps a copy of, for its OpenAPI document only (it is built before any service
answers, and the edge never imports a service), are the services' own: a service that changes a
documented default, name or bound fails here until the edge's description says the same. What the edge
checks is never a copy: it reads what the service publishes (GetServiceInfo), see test_service_info."""

from __future__ import annotations

import pytest

from edge.catalog import PublishedModels
from edge.endpoints.chat import protocol as chat
from edge.endpoints.images import protocol as images
from edge.endpoints.images import translate as image_translate
from edge.endpoints.vision import protocol as vision
from edge.endpoints.vision import translate as vision_translate
from services.image import catalog as image_catalog
from services.image.config import ImageSettings
from services.llm import requests as llm_requests
from services.vision import catalog as vision_catalog
from services.vision.config import VisionSettings


def _properties(model) -> dict:
    return model.model_json_schema(by_alias=True)["properties"]


def _non_null(schema: dict) -> dict:
    return next(member for member in schema.get("anyOf", [schema]) if member.get("type") != "null")


def test_the_documented_image_names_and_defaults_are_the_image_service_s():
    catalog = image_catalog
    assert images.DEFAULT_GENERATION_MODEL == catalog.DEFAULT_GENERATION_MODEL
    assert images.DISTILLED_ID == catalog.DISTILLED_ID == catalog.DEFAULT_EDIT_MODEL
    assert images.BASE_ID == catalog.BASE_ID
    assert tuple(catalog.size_name(size) for size in catalog.SIZES) == images.SIZES
    assert catalog.size_name(catalog.DEFAULT_SIZE) == images.DEFAULT_SIZE
    assert images.DEFAULT_NEGATIVE_PROMPT == catalog.DEFAULT_NEGATIVE_PROMPT
    assert images.DEFAULT_EDIT_NEGATIVE_PROMPT == catalog.DEFAULT_EDIT_NEGATIVE_PROMPT


def test_the_image_descriptions_name_every_model_and_the_service_s_defaults():
    catalog, distilled, base = image_catalog, image_catalog.DEFAULTS["distilled"], image_catalog.DEFAULTS["base"]
    generation, edit = _properties(images.ImageGenerationRequest), _properties(images.ImageEditRequest)
    for model in catalog.GENERATION_MODELS:  # text-to-image names on generations, the klein ids on edits
        described = (generation if model.task == "image.generation" else edit)["model"]["description"]
        for name in (model.id, *model.aliases):
            assert name in described, name
    assert generation["model"]["default"] == catalog.DEFAULT_GENERATION_MODEL
    assert edit["model"]["default"] == catalog.DEFAULT_EDIT_MODEL
    assert (f"default {distilled.generation_steps} ({base.generation_steps} on the base model)"
            in generation["num_inference_steps"]["description"])
    assert f"default {distilled.edit_steps} (distilled) / {base.edit_steps} (base)" in edit["num_steps"]["description"]
    assert f"default {distilled.guidance} (distilled) / {base.guidance} (base)" in edit["guidance"]["description"]
    batch = _properties(images.BatchGenerationRequest)["requests"]
    assert f"1 to {catalog.MAX_BATCH_REQUESTS} generation requests" in batch["description"]
    # The documented maximums are the image service's defaults.
    assert images.MAX_BATCH_REQUESTS == batch["maxItems"] == catalog.MAX_BATCH_REQUESTS
    settings = ImageSettings()
    assert images.MAX_N == _non_null(_properties(images.ImageGenerationRequest)["n"])["maximum"] == settings.max_n
    assert _non_null(edit["n"])["maximum"] == images.MAX_N
    assert images.MAX_INPUT_IMAGES == _non_null(edit["input_images"])["maxItems"] == settings.max_input_images


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_the_tasks_the_edge_asks_defaults_for_are_the_image_service_s(profile):
    # The edge names only the tasks (image.generation, image.edit); the defaults are what is published.
    models = PublishedModels(image_catalog.model_infos(ImageSettings(), profile))
    assert models.find(None, image_translate.GENERATION).id == image_catalog.DEFAULT_GENERATION_MODEL
    assert models.find("", image_translate.EDIT).runs_on == image_catalog.DEFAULT_EDIT_MODEL
    assert models.find("z-image-turbo", image_translate.EDIT).runs_on == image_catalog.DISTILLED_ID
    assert models.find(image_catalog.BASE_ID.lower(), image_translate.EDIT).runs_on == image_catalog.BASE_ID


def test_the_documented_chat_bounds_are_the_llm_service_s():
    assert chat.MAX_TOP_LOGPROBS == llm_requests.MAX_TOP_LOGPROBS
    assert chat.MAX_TOOLS == llm_requests.MAX_TOOLS
    fields = _properties(chat.ChatCompletionRequest)
    assert _non_null(fields["top_logprobs"])["maximum"] == llm_requests.MAX_TOP_LOGPROBS
    assert _non_null(fields["tools"])["maxItems"] == llm_requests.MAX_TOOLS
    for name, (low, high) in llm_requests.RANGES.items():
        schema = _non_null(fields[name])
        assert (schema["minimum"], schema["maximum"]) == (low, high), name


def test_the_documented_upscale_methods_and_scales_are_the_vision_service_s():
    assert {m.id: m.scale for m in vision_catalog.UPSCALE_MODELS} == vision.UPSCALE_SCALES
    assert vision.DEFAULT_UPSCALE_METHOD == vision_catalog.DEFAULT_UPSCALE_MODEL
    assert vision_translate.UPSCALE == vision_catalog.UPSCALE_TASK
    for model in vision_catalog.UPSCALE_MODELS:  # the edge names the proto's method after the API's
        assert vision_translate.upscale_enum(model.id) == model.method, model.id
    models = PublishedModels(vision_catalog.model_infos(VisionSettings(), "tiny"))
    assert models.find(None, vision_translate.UPSCALE).id == vision_catalog.DEFAULT_UPSCALE_MODEL
