"""The aio gRPC server every service runs: health, reflection, telemetry, metrics, drain on SIGTERM.

A service hands over a ServiceDefinition (its servicers and how to load its models); health stays
NOT_SERVING, and RPCs answer MODEL_UNAVAILABLE, until `load` has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.config import ServiceSettings
from services.common.interceptor import RuntimeInterceptor
from services.common.metrics import MODEL_READY, start_metrics_server
from univence import version
from univence.common.v1 import common_pb2, common_pb2_grpc
from univence.process import freeze_startup_heap
from univence.telemetry import configure_logging, setup_tracing

log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class GrpcService:
    """One gRPC service a process serves: its full name and how to add its servicer to a server."""

    full_name: str  # e.g. "univence.accounts.v1.AccountsService"
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any

    @classmethod
    def of(cls, pb2: ModuleType, pb2_grpc: ModuleType, name: str, servicer: Any) -> GrpcService:
        """The service `name` of a generated module pair, e.g. `GrpcService.of(image_pb2, image_pb2_grpc,
        "ImageService", servicer)`."""
        return cls(pb2.DESCRIPTOR.services_by_name[name].full_name,
                   getattr(pb2_grpc, f"add_{name}Servicer_to_server"), servicer)


@dataclass
class ServiceDefinition:
    """What a service is: its name, its gRPC services, and how to load and close its models."""

    name: str
    services: list[GrpcService]
    load: Callable[[], Awaitable[None]] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    # Called when draining starts, before in-flight RPCs get their grace: ends streams that would never
    # end by themselves (a subscription), which would otherwise hold the process for the whole grace.
    draining: Callable[[], Awaitable[None]] | None = None
    # Names the model(s) in log lines and MODEL_UNAVAILABLE messages.
    description: str = ""
    # `full` or `tiny` for modality services; empty for services without models.
    profile: str = ""
    # Where the models run; empty for services without models.
    device: str = ""
    # The models served, for GetServiceInfo (filled in by `load` where they are only known then).
    models: list[common_pb2.ModelInfo] = field(default_factory=list)
    # Request limits the edge checks before reserving credits (GetServiceInfoResponse.limits), e.g.
    # {"max_n": 4}: published by the service, so the edge never keeps its own copy of its settings.
    limits: dict[str, float] = field(default_factory=dict)


def server_options(settings: ServiceSettings) -> list[tuple[str, Any]]:
    size = settings.max_message_bytes
    return [
        ("grpc.max_receive_message_length", size),
        ("grpc.max_send_message_length", size),
        ("grpc.so_reuseport", 0),
    ]


class ListenError(OSError):
    """A port the service was told to use is not available: said in one line (the port and the setting
    that moves it), not a traceback, since the fix is the operator's."""


class ServiceRuntime:
    """Runs one ServiceDefinition: `await start()`, then `await wait_stopped()` or `await stop()`."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings):
        self.definition = definition
        self.settings = settings
        self.port: int = 0
        self._stop_metrics: Callable[[], None] = lambda: None
        self.loaded = asyncio.Event()
        self.load_error: str | None = None
        # Why the loaded model stopped working (ModelLost); the process then drains and exits non-zero.
        self.lost: str | None = None
        self._stop_requested = asyncio.Event()
        self._health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._load_task: asyncio.Task | None = None

    def not_ready_reason(self) -> str | None:
        what = self.definition.description or self.definition.name
        if self.lost:
            return f"{what} stopped working ({self.lost}); the service is restarting, retry shortly"
        if self.loaded.is_set():
            return None
        if self.load_error:
            return f"{what} failed to load: {self.load_error}"
        return f"{what} is still loading; retry shortly"

    async def start(self) -> int:
        d, s = self.definition, self.settings
        setup_tracing(f"univence-{d.name}", s.otel_exporter)
        server = grpc.aio.server(
            interceptors=[RuntimeInterceptor(d.name, self.not_ready_reason, self.model_lost,
                                            tracing=s.otel_exporter != "none")], options=server_options(s)
        )
        services = [*d.services,
                    GrpcService.of(common_pb2, common_pb2_grpc, "ServiceInfoService", _ServiceInfoServicer(self))]
        for svc in services:
            svc.add_to_server(svc.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [svc.full_name for svc in services]
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        prefix = type(s).model_config["env_prefix"]
        try:
            self._stop_metrics = start_metrics_server(s.metrics_port, s.host)
        except OSError as exc:
            raise ListenError(f"{d.name}: cannot serve metrics on {s.host}:{s.metrics_port}: {exc.strerror} "
                              f"({prefix}METRICS_PORT moves it; 0 turns it off)") from None
        try:
            self.port = server.add_insecure_port(s.address)
        except RuntimeError:  # grpcio raises "Failed to bind" (older ones returned 0)
            self.port = 0
        if self.port == 0:
            self._stop_metrics()
            raise ListenError(f"{d.name}: cannot listen for gRPC on {s.address} (another process has the "
                              f"port, or the address is not this machine's; {prefix}PORT moves it)")
        await self._set_health(NOT_SERVING)
        await server.start()
        self._server = server
        log.info("%s listening on %s:%d%s", d.name, s.host, self.port,
                 f" (profile {d.profile}, device {d.device})" if d.profile else "")
        self._load_task = asyncio.create_task(self._load())
        return self.port

    async def _load(self) -> None:
        try:
            if self.definition.load is not None:
                await self.definition.load()
        except Exception as exc:  # noqa: BLE001 - a load failure is reported, not a crash
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("%s: %s", self.definition.name, self.not_ready_reason())
            return
        self.loaded.set()
        MODEL_READY.labels(self.definition.name).set(1)
        await self._set_health(SERVING)
        log.info("%s is SERVING", self.definition.name)

    async def wait_loaded(self) -> None:
        """Returns once the models are loaded; raises RuntimeError with the reason when loading failed."""
        if self._load_task is not None:
            await asyncio.shield(self._load_task)
        if self.load_error is not None:
            raise RuntimeError(f"{self.definition.name} failed to load: {self.load_error}")

    async def _set_health(self, status: int) -> None:
        await self._health.set("", status)
        for svc in self.definition.services:
            await self._health.set(svc.full_name, status)

    def model_lost(self, reason: str) -> None:
        """The model cannot recover in this process: refuse new work, then drain and stop (run() exits 1)."""
        if self.lost is None:
            log.critical("%s: the model stopped working: %s; stopping so that a fresh process starts",
                         self.definition.name, reason)
            self.lost = reason
            MODEL_READY.labels(self.definition.name).set(0)
            self._lost_health = asyncio.get_running_loop().create_task(self._set_health(NOT_SERVING))
            self.request_stop()

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def wait_stopped(self) -> None:
        """Serves until request_stop() (SIGTERM/SIGINT in `run`), then drains."""
        await self._stop_requested.wait()
        await self.stop()

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first (load balancers stop sending), then in-flight RPCs get `grace` to finish."""
        if self._server is None:
            return
        grace = self.settings.drain_seconds if grace is None else grace
        await self._set_health(NOT_SERVING)
        log.info("%s draining (up to %.0fs)", self.definition.name, grace)
        if self._load_task and not self._load_task.done():
            self._load_task.cancel()
        if self.definition.draining is not None:
            await self.definition.draining()
        await self._server.stop(grace)
        self._server = None
        self._stop_metrics()
        if self.definition.close is not None:
            await self.definition.close()
        MODEL_READY.labels(self.definition.name).set(0)


class _ServiceInfoServicer(common_pb2_grpc.ServiceInfoServiceServicer):
    """Answers GetServiceInfo from the runtime's definition and load state (open before load ends)."""

    def __init__(self, runtime: ServiceRuntime):
        self._runtime = runtime

    async def GetServiceInfo(self, request, context) -> common_pb2.GetServiceInfoResponse:
        d = self._runtime.definition
        return common_pb2.GetServiceInfoResponse(
            service=d.name, profile=d.profile, device=d.device, models=d.models, limits=d.limits,
            ready=self._runtime.loaded.is_set() and not self._runtime.lost,
            load_error=self._runtime.load_error or self._runtime.lost or "",
            version=version(),
        )


def run(settings: ServiceSettings, definition: Callable[[ServiceSettings], ServiceDefinition]) -> None:
    """A service process's entry point: builds the definition, serves, drains on SIGTERM/SIGINT."""
    configure_logging(settings.log_level)

    async def main() -> None:
        runtime = ServiceRuntime(definition(settings), settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runtime.request_stop)
        try:
            await runtime.start()
        except ListenError as exc:
            log.error("%s", exc)
            raise SystemExit(1) from None
        frozen = asyncio.create_task(_freeze_once_loaded(runtime))
        await runtime.wait_stopped()
        frozen.cancel()
        if runtime.lost:
            raise SystemExit(1)

    asyncio.run(main())


async def _freeze_once_loaded(runtime: ServiceRuntime) -> None:
    """The process's startup heap (its models included) frozen out of collection once they are loaded
    (univence.process); a failed load leaves it as it is."""
    with contextlib.suppress(RuntimeError):
        await runtime.wait_loaded()
        freeze_startup_heap()
