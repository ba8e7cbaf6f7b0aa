"""The modality layer (services/common/modality.py) with a stand-in engine: a bad device or a missing GPU
is a reported problem, not a crash; the engine loads in a thread, warms up, is attached and closed; the
servicer answers MODEL_UNAVAILABLE until then; models and limits are published."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from services.common.errors import ServiceError
from services.common.modality import ModalityServicer, ModalitySettings, Placement, modality_definition, place
from services.common.server import GrpcService
from services.common.testing import connected, tiny_settings
from tests.support.grpc_errors import expect_error
from univence.common.v1 import common_pb2, common_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc


class ProbeSettings(ModalitySettings):
    section = "probe"


class Engine:
    def __init__(self, placement: Placement):
        self.placement = placement
        self.thread = threading.current_thread()
        self.warm = self.closed = False


class ProbeServicer(ModalityServicer[Engine], media_pb2_grpc.MediaServiceServicer):
    async def DeleteMedia(self, request, context):
        assert self.engine.warm
        return media_pb2.DeleteMediaResponse()


def probe(settings: ProbeSettings, **hooks):
    servicer = ProbeServicer(settings)

    def warm_up(engine: Engine) -> None:
        engine.warm = True

    async def close(engine: Engine) -> None:
        engine.closed = True

    definition = modality_definition(
        settings, GrpcService.of(media_pb2, media_pb2_grpc, "MediaService", servicer),
        load=Engine, description=lambda p: f"the probe model ({p.profile})",
        models=lambda p: [common_pb2.ModelInfo(id="probe-1", task="test", source=p.profile)],
        limits={"max_n": 4, "max_prompt_chars": 100}, warm_up=warm_up, close=close, **hooks)
    return definition, servicer


async def test_loads_in_a_thread_warms_up_attaches_and_closes(caplog):
    settings = tiny_settings(ProbeSettings, warmup=True)
    definition, servicer = probe(settings)
    with pytest.raises(ServiceError, match="not loaded"):
        _ = servicer.engine
    caplog.set_level(logging.WARNING)
    async with connected(definition, settings) as (_, channel):
        engine = servicer.engine
        assert engine.thread is not threading.main_thread() and engine.warm
        assert engine.placement.profile == "tiny" and engine.placement.device == "cpu"
        assert servicer.queue is engine.placement.queue
        await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(media_pb2.DeleteMediaRequest())
        info = await common_pb2_grpc.ServiceInfoServiceStub(channel).GetServiceInfo(
            common_pb2.GetServiceInfoRequest())
        assert (info.service, info.profile, info.device, info.ready) == ("probe", "tiny", "cpu", True)
        assert [m.id for m in info.models] == ["probe-1"]
        # the service's own limits, and its queue's capacity (the edge admits calls before Reserve by it)
        assert dict(info.limits) == {"max_n": 4, "max_prompt_chars": 100,
                                     "queue_max_pending": settings.queue_max_pending}
    assert engine.closed
    assert "probe: tiny profile" in caplog.text


@pytest.mark.parametrize(("device", "problem"), [("gpu", "unknown device 'gpu'"), ("cuda:x", "unknown device"),
                                                 ("cuda:99", "cuda:99")])
async def test_a_bad_device_leaves_the_service_up_answering_model_unavailable(device, problem):
    settings = tiny_settings(ProbeSettings, device=device)
    definition, _ = probe(settings)
    assert definition.device == device
    async with connected(definition, settings, wait_loaded=False) as (runtime, channel):
        with pytest.raises(RuntimeError, match=problem):
            await asyncio.wait_for(runtime.wait_loaded(), 5)
        error = await expect_error(media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(
            media_pb2.DeleteMediaRequest()), "MODEL_UNAVAILABLE")
        assert problem in error.message and "the probe model (tiny) failed to load" in error.message


def test_the_full_profile_on_a_cpu_found_by_auto_is_the_modality_s_problem(monkeypatch):
    monkeypatch.setattr("services.common.devices.cuda_available", lambda: False)
    settings = tiny_settings(ProbeSettings, profile="full", device="auto")
    assert place(settings, no_gpu="needs a GPU").problem == "needs a GPU"
    assert place(settings).problem is None  # a modality that runs its full profile on CPUs too
    assert place(tiny_settings(ProbeSettings, profile="full", device="cpu"), no_gpu="x").problem is None
    assert place(tiny_settings(ProbeSettings, profile="auto"), profile="full").profile == "full"
