"""GET /v1/models asks each enabled modality service what it serves (GetServiceInfo) and in which
profile; a service that is down is left out, and the openai SDK reads the list unchanged."""

from __future__ import annotations

import openai
import pytest

from services.common.config import ServiceSettings
from services.common.server import ServiceDefinition
from tests.support.platform import running_platform
from tests.support.ports import free_port
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


async def test_a_service_that_starts_after_the_edge_asked_is_listed_soon(tmp_path):
    """The edge's channel to a service that was not up yet reconnects within seconds, not minutes."""
    import asyncio

    port = free_port()
    async with running_platform(tmp_path, modalities=["image"],
                                modality_addresses={"image": f"127.0.0.1:{port}"}) as platform:
        _, secret = await platform.user_with_key("late@example.com")
        client = openai.AsyncOpenAI(api_key=secret, base_url=f"{platform.base_url}/v1", max_retries=0)
        assert (await client.models.list()).data == []  # nothing listens yet: the channel backs off
        await asyncio.sleep(10)  # gRPC's default backoff would have grown to ~6 s by now
        definition = ServiceDefinition(name="image", services=[], profile="tiny", models=[
            common_pb2.ModelInfo(id="z-image-turbo", task="image.generation")])
        async with running_service(definition, ImageLikeSettings(port=port)):
            platform.app.state.catalog.forget()  # skip the 5 s info cache, not the channel's backoff
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3
            while not (await client.models.list()).data and loop.time() < deadline:
                platform.app.state.catalog.forget()
                await asyncio.sleep(0.2)
            assert [m.id for m in (await client.models.list()).data] == ["z-image-turbo"]
