"""GET /v1/models asks each enabled modality service what it serves (GetServiceInfo) and in which
profile; a service that is down is left out, and the openai SDK reads the list unchanged."""

from __future__ import annotations

import openai
import pytest

from services.common.config import ServiceSettings
from services.common.server import ServiceDefinition
from tests.support.platform import free_port, running_platform
from tests.support.runtime import running_service
from univence.common.v1 import common_pb2


class ImageLikeSettings(ServiceSettings):
    section = "image"


async def test_models_come_from_the_services_with_their_profile(tmp_path):
    definition = ServiceDefinition(name="image", services=[], profile="tiny", device="cpu", models=[
        common_pb2.ModelInfo(id="z-image-turbo", aliases=["dall-e-3", "flux-schnell"], task="image.generation",
                             source="tiny-random")])
    settings = ImageLikeSettings(port=0)
    async with running_service(definition, settings) as image:
        addresses = {"image": f"127.0.0.1:{image.port}", "llm": f"127.0.0.1:{free_port()}"}  # llm: not running
        async with running_platform(tmp_path, modalities=["image", "llm"], modality_addresses=addresses) as platform:
            _, secret = await platform.user_with_key("models@example.com")
            client = openai.AsyncOpenAI(api_key=secret, base_url=f"{platform.base_url}/v1", max_retries=0)
            models = (await client.models.list()).data
            assert [m.id for m in models] == ["z-image-turbo"]
            model = models[0].model_dump()
            assert model["service"] == "image" and model["profile"] == "tiny" and model["aliases"] == [
                "dall-e-3", "flux-schnell"]
            assert (await client.models.retrieve("dall-e-3")).id == "z-image-turbo"
            with pytest.raises(openai.NotFoundError):
                await client.models.retrieve("no-such-model")
