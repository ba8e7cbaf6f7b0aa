"""The shared runtime through real gRPC: health, reflection, errors as google.rpc.Status, readiness,
trace propagation, deadlines, draining, metrics, service info."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import socket
import subprocess
import sys
import urllib.request

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edge.errors import error_info
from services.common.config import ServiceSettings
from services.common.errors import ModelLost, ServiceError, invalid
from services.common.server import GrpcService, ListenError, ServiceDefinition, ServiceRuntime
from services.common.workqueue import WorkQueue
from tests.support.ports import free_port
from tests.support.runtime import running_service
from univence.common.v1 import common_pb2, common_pb2_grpc
from univence.media.v1 import media_pb2, media_pb2_grpc
from univence.telemetry import inject_metadata, setup_tracing


class ProbeSettings(ServiceSettings):
    section = "probe"


class ProbeServicer(media_pb2_grpc.MediaServiceServicer):
    """A servicer whose behaviour the test picks through the media id, to exercise the runtime."""

    def __init__(self) -> None:
        self.queue = WorkQueue("probe", max_pending=2, concurrency=1)
        self.ran: list[str] = []

    async def DeleteMedia(self, request, context):
        match request.media_id:
            case "bad":
                raise invalid("the id is bad", param="media_id")
            case "boom":
                raise RuntimeError("a bug")
            case "lost":
                raise ModelLost("the engine process died")
            case "slow":
                await asyncio.sleep(0.5)
            case "queued":
                await self.queue.run(self._work, "queued", timeout=context.time_remaining())
        return media_pb2.DeleteMediaResponse()

    def _work(self, name: str) -> None:
        import time

        time.sleep(0.3)
        self.ran.append(name)


def definition(servicer: ProbeServicer, load=None) -> ServiceDefinition:
    return ServiceDefinition(
        name="probe", description="the probe model", profile="tiny", device="cpu",
        services=[GrpcService("univence.media.v1.MediaService", media_pb2_grpc.add_MediaServiceServicer_to_server,
                              servicer)],
        load=load, models=[common_pb2.ModelInfo(id="probe-1", aliases=["p1"], task="test", source="tiny-random")],
    )


def settings(**overrides) -> ServiceSettings:
    return ProbeSettings(**{"port": 0, "drain_seconds": 5, **overrides})


async def test_health_goes_serving_after_load_and_rpcs_wait_for_it():
    release = asyncio.Event()

    async def load():
        await release.wait()

    servicer = ProbeServicer()
    async with running_service(definition(servicer, load), settings(), wait_loaded=False) as runtime:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = await health.Check(health_pb2.HealthCheckRequest(service="univence.media.v1.MediaService"))
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(media_pb2.DeleteMediaRequest())
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(failed.value) == "MODEL_UNAVAILABLE"
            assert "the probe model is still loading" in failed.value.details()
            release.set()
            await asyncio.wait_for(runtime.loaded.wait(), 5)
            status = await health.Check(health_pb2.HealthCheckRequest(service=""))
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(media_pb2.DeleteMediaRequest())


async def test_a_load_failure_is_reported_not_crashed():
    async def load():
        raise FileNotFoundError("weights for probe-1 not found in /models; download them first")

    async with running_service(definition(ProbeServicer(), load), settings(), wait_loaded=False) as runtime:
        await asyncio.sleep(0.1)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(media_pb2.DeleteMediaRequest())
            assert "failed to load" in failed.value.details() and "download them first" in failed.value.details()
            info = await common_pb2_grpc.ServiceInfoServiceStub(channel).GetServiceInfo(
                common_pb2.GetServiceInfoRequest())
            assert not info.ready and "weights for probe-1" in info.load_error
            assert info.version == importlib.metadata.version("univence")  # the installed distribution's
        with pytest.raises(RuntimeError, match="probe failed to load: FileNotFoundError: weights for probe-1"):
            await asyncio.wait_for(runtime.wait_loaded(), 5)


async def test_a_lost_model_refuses_work_goes_not_serving_and_stops_the_process():
    async with running_service(definition(ProbeServicer()), settings()) as runtime, \
            grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        media = media_pb2_grpc.MediaServiceStub(channel)
        for media_id in ("lost", "ok"):  # the RPC that found out, then every later one
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await media.DeleteMedia(media_pb2.DeleteMediaRequest(media_id=media_id))
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(failed.value) == "MODEL_UNAVAILABLE"
        assert "stopped working (the engine process died); the service is restarting" in failed.value.details()
        await asyncio.sleep(0)
        status = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        info = await common_pb2_grpc.ServiceInfoServiceStub(channel).GetServiceInfo(common_pb2.GetServiceInfoRequest())
        assert not info.ready and info.load_error == "the engine process died"
        await asyncio.wait_for(runtime.wait_stopped(), 10)  # what run() waits for before it exits 1


async def test_reflection_lists_every_service_and_describes_methods():
    async with running_service(definition(ProbeServicer()), settings()) as runtime:
        channel = grpc.insecure_channel(f"127.0.0.1:{runtime.port}")
        try:
            database = ProtoReflectionDescriptorDatabase(channel)
            names = await asyncio.to_thread(lambda: set(database.get_services()))
            assert {"univence.media.v1.MediaService", "grpc.health.v1.Health",
                    "grpc.reflection.v1alpha.ServerReflection",
                    "univence.common.v1.ServiceInfoService"} <= names
            pool = descriptor_pool.DescriptorPool(database)
            service = await asyncio.to_thread(pool.FindServiceByName, "univence.media.v1.MediaService")
            assert "GetMedia" in service.methods_by_name
        finally:
            channel.close()


async def test_errors_carry_reason_and_param_and_bugs_do_not_crash_the_service():
    async with running_service(definition(ProbeServicer()), settings()) as runtime:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            stub = media_pb2_grpc.MediaServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id="bad"))
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error_reason(bad.value) == "INVALID_REQUEST"
            assert error_param(bad.value) == "media_id"
            with pytest.raises(grpc.aio.AioRpcError) as boom:
                await stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id="boom"))
            assert boom.value.code() == grpc.StatusCode.INTERNAL
            assert error_reason(boom.value) == "PROCESSING_FAILED"
            assert "a bug" not in boom.value.details()  # internals are not leaked to callers
            await stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id="ok"))  # still serving


def error_reason(error: grpc.aio.AioRpcError) -> str | None:
    info = error_info(error)
    return info.reason if info else None


def error_param(error: grpc.aio.AioRpcError) -> str | None:
    info = error_info(error)
    return info.metadata.get("param") if info else None


async def test_service_info_names_profile_device_and_models():
    async with running_service(definition(ProbeServicer()), settings()) as runtime:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            info = await common_pb2_grpc.ServiceInfoServiceStub(channel).GetServiceInfo(
                common_pb2.GetServiceInfoRequest())
    assert (info.service, info.profile, info.device, info.ready) == ("probe", "tiny", "cpu", True)
    assert [m.id for m in info.models] == ["probe-1"] and list(info.models[0].aliases) == ["p1"]


async def test_full_queue_refuses_at_once_and_deadlines_drop_waiting_work():
    servicer = ProbeServicer()
    async with running_service(definition(servicer), settings()) as runtime:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            stub = media_pb2_grpc.MediaServiceStub(channel)
            request = media_pb2.DeleteMediaRequest(media_id="queued")
            first = asyncio.ensure_future(stub.DeleteMedia(request))
            await asyncio.sleep(0.05)
            # The second waits for the slot but its deadline passes first: it never runs.
            second = asyncio.ensure_future(stub.DeleteMedia(request, timeout=0.1))
            await asyncio.sleep(0.02)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(grpc.aio.AioRpcError) as full:  # max_pending=2: the third is refused
                await stub.DeleteMedia(request)
            assert loop.time() - started < 0.2
            assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_reason(full.value) == "QUEUE_FULL"
            await first
            with pytest.raises(grpc.aio.AioRpcError) as late:
                await second
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await asyncio.sleep(0.4)
            assert servicer.ran == ["queued"]


async def test_sigterm_drain_finishes_in_flight_work():
    runtime = ServiceRuntime(definition(ProbeServicer()), settings())
    await runtime.start()
    await runtime.loaded.wait()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
        stub = media_pb2_grpc.MediaServiceStub(channel)
        in_flight = asyncio.ensure_future(stub.DeleteMedia(media_pb2.DeleteMediaRequest(media_id="slow")))
        await asyncio.sleep(0.1)
        runtime.request_stop()
        await runtime.wait_stopped()
        await in_flight  # completed during the drain, not cut off


async def test_trace_context_from_the_caller_is_continued():
    exporter = InMemorySpanExporter()
    setup_tracing("probe", "none")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_service(definition(ProbeServicer()), settings()) as runtime:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            with trace.get_tracer("test").start_as_current_span("edge-request") as parent:
                await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(
                    media_pb2.DeleteMediaRequest(media_id="ok"), metadata=inject_metadata())
    server_spans = [s for s in exporter.get_finished_spans() if s.name == "probe/DeleteMedia"]
    assert server_spans, [s.name for s in exporter.get_finished_spans()]
    assert server_spans[-1].context.trace_id == parent.get_span_context().trace_id
    assert server_spans[-1].parent.span_id == parent.get_span_context().span_id



async def test_an_rpc_gets_a_span_only_where_spans_are_exported_or_the_caller_traces():
    exporter = InMemorySpanExporter()
    setup_tracing("probe", "none")
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))

    async def spans_of_a_call(**overrides) -> int:
        exporter.clear()
        async with running_service(definition(ProbeServicer()), settings(**overrides)) as runtime, \
                grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(media_pb2.DeleteMediaRequest(media_id="ok"))
        return sum(s.name == "probe/DeleteMedia" for s in exporter.get_finished_spans())

    assert await spans_of_a_call() == 0  # no exporter, no caller's trace context: nothing to continue
    assert await spans_of_a_call(otel_exporter="console") == 1

async def test_metrics_endpoint_counts_rpcs():
    metrics_port = free_port()
    async with running_service(definition(ProbeServicer()), settings(metrics_port=metrics_port)) as runtime:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}") as channel:
            await media_pb2_grpc.MediaServiceStub(channel).DeleteMedia(media_pb2.DeleteMediaRequest(media_id="ok"))
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode())
    assert 'univence_grpc_server_handled_total{code="OK",method="DeleteMedia",service="probe"}' in body
    assert 'univence_model_ready{service="probe"}' in body


def test_service_error_status_round_trips():
    error = ServiceError(common_pb2.ERROR_REASON_PAYLOAD_TOO_LARGE, "too big", param="image")
    status = error.to_status()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(status.trailing_metadata)["grpc-status-details-bin"]


@pytest.fixture
def taken_port():
    """A port another process (here, a socket of the test's) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("setting, what",
                         [("port", "cannot listen for gRPC"), ("metrics_port", "cannot serve metrics")])
async def test_a_taken_port_is_one_clear_error_and_leaves_no_port_held(taken_port, setting, what):
    ports = {"port": free_port(), "metrics_port": free_port()}
    ports[setting] = taken_port
    runtime = ServiceRuntime(definition(ProbeServicer()), settings(**ports))
    with pytest.raises(ListenError) as refused:
        await runtime.start()
    assert what in str(refused.value) and str(taken_port) in str(refused.value)
    assert f"UNIVENCE_PROBE_{setting.upper()}" in str(refused.value)  # the setting that moves it
    for port in set(ports.values()) - {taken_port}:  # what the service did bind before it gave up was let go
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))


def test_a_service_whose_port_is_taken_says_so_in_one_line_and_exits(taken_port, tmp_path):
    env = {**os.environ, "UNIVENCE_HOME": str(tmp_path), "UNIVENCE_MEDIA_PORT": str(free_port()),
           "UNIVENCE_MEDIA_METRICS_PORT": str(taken_port)}
    env.pop("UNIVENCE_CONFIG", None)
    served = subprocess.run([sys.executable, "-m", "univence.cli", "serve", "media"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 1
    assert f"media: cannot serve metrics on 127.0.0.1:{taken_port}" in served.stderr
    assert "Traceback" not in served.stderr and "Exception ignored" not in served.stderr
