"""The modality layer: what every model-serving service (image, llm, and the modalities to come) shares
on top of the runtime, so that a modality's own code is its requests, its engine and its catalog.

- `ModalitySettings`: the settings only model-serving services have (profile, device, warm-up).
- `Placement`: where the models run, decided once at start (profile, device, the work queue), or why
  they cannot run here.
- `ModalityServicer`: the base of a modality's servicer; the loaded engine reaches it through `attach`,
  and until then `engine` answers MODEL_UNAVAILABLE.
- `modality_definition`: the one way a modality becomes a ServiceDefinition. A bad profile or device, or
  a GPU that is not there, leaves the service up, NOT_SERVING, answering MODEL_UNAVAILABLE with the
  reason (never a traceback at start); the engine loads in a thread, warms up, is attached; the service
  reports its models and the limits the edge checks before reserving credits.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from services.common.config import ServiceSettings
from services.common.devices import resolve_device, resolve_profile
from services.common.errors import ModelLoadError, Reason, ServiceError
from services.common.server import GrpcService, ServiceDefinition
from services.common.workqueue import WorkQueue
from univence.common.v1 import common_pb2

log = logging.getLogger(__name__)
E = TypeVar("E")
# ModelInfo.source of a model the tiny profile builds (random weights, no files).
TINY_SOURCE = "tiny-random"


class ModalitySettings(ServiceSettings):
    """Settings of a service that runs models (a modality subclasses it, setting `section`)."""

    # `full` (real models on a GPU), `tiny` (tiny random models, offline) or `auto` (full with CUDA).
    profile: Literal["auto", "full", "tiny"] = "auto"
    # `auto`, `cpu`, `cuda` or `cuda:N`.
    device: str = "auto"
    # Run the engine once at load (where the modality has a warm-up), so the first request does not pay.
    warmup: bool = True


@dataclass(frozen=True)
class Placement:
    """Where a modality's models run: decided once at start, logged, and reported by GetServiceInfo."""

    profile: str  # full or tiny
    device: str  # cpu, cuda or cuda:N (the setting as given, where it could not be resolved)
    # The bounded queue the model's work runs on (settings' queue_max_pending / queue_concurrency).
    queue: WorkQueue
    # Why the models cannot run here (a bad setting, a GPU that is not there); None when they can.
    problem: str | None = None


def place(settings: ModalitySettings, *, profile: str | None = None, no_gpu: str | None = None) -> Placement:
    """The placement for `settings`. `profile` is one the modality's own settings fix (a GGUF file is real
    weights: full). `no_gpu` is the problem to report when the full profile would land on the CPU only
    because `device = auto` found no GPU (models too large to run there in earnest)."""
    profile = profile or resolve_profile(settings.profile)
    problem = None
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:
        device, problem = settings.device, str(exc)
    if problem is None and no_gpu and profile == "full" and device == "cpu" and settings.device == "auto":
        problem = no_gpu
    queue = WorkQueue(settings.section, max_pending=settings.queue_max_pending,
                      concurrency=settings.queue_concurrency)
    return Placement(profile, device, queue, problem)


class ModalityServicer(Generic[E]):
    """Base of a modality's servicer (listed before the generated `…Servicer` base). The runtime keeps
    RPCs out until the models are loaded; `engine` makes the servicer itself safe too (a servicer driven
    directly, or an RPC that slips past the gate, gets MODEL_UNAVAILABLE, not an AttributeError)."""

    placement: Placement

    def __init__(self, settings: ModalitySettings):
        self.settings = settings
        self._engine: E | None = None

    @property
    def engine(self) -> E:
        if self._engine is None:
            raise ServiceError(Reason.ERROR_REASON_MODEL_UNAVAILABLE,
                               f"the {self.settings.section} models are not loaded yet; retry shortly")
        return self._engine

    @property
    def queue(self) -> WorkQueue:
        """The work queue the models run on (set with the placement, at `attach`)."""
        return self.placement.queue

    def attach(self, engine: E, placement: Placement) -> None:
        """Called once, when the engine is loaded (a subclass extending it calls super() last, so nothing
        serves before its own parts are ready)."""
        self.placement = placement
        self._engine = engine


def modality_definition(
    settings: ModalitySettings,
    service: GrpcService,
    *,
    load: Callable[[Placement], E] | Callable[[Placement], Awaitable[E]],
    description: Callable[[Placement], str],
    models: Callable[[Placement], list[common_pb2.ModelInfo]],
    limits: Mapping[str, float] | None = None,
    profile: str | None = None,
    no_gpu: str | None = None,
    warm_up: Callable[[E], None] | None = None,
    close: Callable[[E], Awaitable[None]] | None = None,
) -> ServiceDefinition:
    """A modality's ServiceDefinition. `service.servicer` is its ModalityServicer.

    load: builds or loads the engine (a plain function runs in a thread; a coroutine function is
      awaited, for engines that start their own processes). Raise ModelLoadError with what to do.
    description: names the models in log lines and MODEL_UNAVAILABLE messages.
    models: the public models served (GetServiceInfo, the edge's /v1/models), known before loading so
      that a service that cannot load still says what it would serve.
    limits: what the edge checks before reserving credits (GetServiceInfoResponse.limits), from settings;
      the work queue's capacity (`queue_max_pending`, waiting plus running) is added to them, so the edge
      answers 429 before reserving credits when its calls in flight fill the queue (edge.admission).
    profile, no_gpu: see `place`. warm_up: runs once after load when settings.warmup is on (a thread).
    close: frees the engine at shutdown (the work queue is closed after it).
    """
    name = settings.section
    servicer: ModalityServicer[E] = service.servicer
    placement = place(settings, profile=profile, no_gpu=no_gpu)
    loaded: list[E] = []

    async def load_models() -> None:
        if placement.problem:
            raise ModelLoadError(placement.problem)
        if inspect.iscoroutinefunction(load):
            engine = await load(placement)
        else:
            engine = await asyncio.to_thread(load, placement)
        loaded.append(engine)
        if settings.warmup and warm_up is not None:
            await asyncio.to_thread(warm_up, engine)
        servicer.attach(engine, placement)
        if placement.profile == "tiny":
            log.warning("%s: tiny profile - random weights, every output is noise (by design)", name)

    async def close_models() -> None:
        while loaded:
            engine = loaded.pop()
            if close is not None:
                await close(engine)
        placement.queue.close()

    return ServiceDefinition(
        name=name,
        services=[service],
        load=load_models,
        close=close_models,
        description=description(placement),
        profile=placement.profile,
        device=placement.device,
        models=models(placement),
        limits={"queue_max_pending": settings.queue_max_pending, **(limits or {})},
    )
