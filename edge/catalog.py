"""What each modality service says about itself (GetServiceInfo): its models, its profile and the limits
the edge checks before reserving credits. Cached per modality for a few seconds, so an image request
waits on the image service's answer only (never on every modality's), and only when there is none yet
(an answer in use is renewed before its time runs out); concurrent requests share one call.

Each answer is read once into a `Published`: the service's limits, and its models by every name they
answer to (`PublishedModels`: case-insensitive ids and aliases, the default model of each task, the
sizes and per-model bounds). Endpoints resolve names and check bounds from it: the service's table is
the only one, so the edge has no model list or limit of its own to keep in step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import Depends, Request

from edge.clients import ServiceClients
from edge.tasks import started
from univence.common.v1 import common_pb2

CACHE_SECONDS = 5.0
INFO_TIMEOUT_SECONDS = 2.0
ServiceInfo = common_pb2.GetServiceInfoResponse
B = TypeVar("B")


def bound(value: float) -> float:
    """A published bound as messages should show it: whole numbers as ints ("at most 4", not 4.0)."""
    return int(value) if math.isfinite(value) and float(value).is_integer() else value


def read_bounds(cls: type[B], published: Mapping[str, float]) -> B:
    """The dataclass `cls` (every field a bound with a default) with the published values of its fields;
    one that is not published keeps its default."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{name: bound(value) for name, value in published.items() if name in known})


@dataclasses.dataclass(frozen=True)
class PublishedModel:
    """One model as its service publishes it (common.v1.ModelInfo)."""

    id: str
    task: str
    # The id of the model whose weights run this name (its own id when the service says nothing).
    runs_on: str
    sizes: tuple[str, ...]
    default_size: str
    limits: Mapping[str, float]

    @classmethod
    def of(cls, info: common_pb2.ModelInfo) -> PublishedModel:
        return cls(info.id, info.task, info.runs_on or info.id, tuple(info.sizes), info.default_size,
                   MappingProxyType(dict(info.limits)))

    def limit(self, name: str) -> float:
        """The model's own bound `name` (unbounded where it publishes none)."""
        return bound(self.limits.get(name, math.inf))


class PublishedModels:
    """A service's models by every name they answer to: ids and aliases, matched case-insensitively; a
    request that names none gets its task's default."""

    def __init__(self, infos: Sequence[common_pb2.ModelInfo]):
        self.models = tuple(PublishedModel.of(info) for info in infos)
        self.aliases = tuple(alias for info in infos for alias in info.aliases)
        self._by_name: dict[str, PublishedModel] = {}
        self._defaults: dict[str, PublishedModel] = {}
        for info, model in zip(infos, self.models, strict=True):
            for name in (info.id, *info.aliases):
                self._by_name.setdefault(name.lower(), model)
            if info.task_default:
                self._defaults.setdefault(info.task, model)

    def find(self, name: str | None, task: str) -> PublishedModel | None:
        """The model `name` means (any task: an edit may name a text-to-image model), or for an empty
        name the default of `task`; None when there is none."""
        if not name:
            return self._defaults.get(task)
        return self._by_name.get(name.strip().lower())

    def names(self) -> list[str]:
        """Every id, then every alias: the names a request may use."""
        return [m.id for m in self.models] + list(self.aliases)

    def ids(self, task: str) -> list[str]:
        """The ids of `task`'s models."""
        return [m.id for m in self.models if m.task == task]


@dataclasses.dataclass(frozen=True, eq=False)
class Published:
    """One GetServiceInfo answer, read once: the service's limits and its models."""

    info: ServiceInfo
    limits: Mapping[str, float]
    models: PublishedModels
    _bounds: dict[type, Any] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, info: ServiceInfo) -> Published:
        return cls(info, MappingProxyType(dict(info.limits)), PublishedModels(info.models))

    def bounds(self, cls: type[B]) -> B:
        """The published limits as `cls` (see read_bounds), made once per answer."""
        made = self._bounds.get(cls)
        if made is None:
            made = self._bounds[cls] = read_bounds(cls, self.limits)
        return made


class ServiceCatalog:
    """GetServiceInfo per enabled modality service. A service that does not answer has no info (None)
    until the next refresh: its models are not listed, its limits are left to the service itself."""

    def __init__(self, clients: ServiceClients, cache_seconds: float = CACHE_SECONDS):
        self._clients = clients
        self._cache_seconds = cache_seconds
        # modality → (expiry, its answer read once; None while it does not answer)
        self._cached: dict[str, tuple[float, Published | None]] = {}
        self._fetching: dict[str, asyncio.Future[tuple[float, Published | None]]] = {}

    def forget(self) -> None:
        """Drops the cached answers (the next request asks again)."""
        self._cached.clear()

    async def info(self, modality: str) -> ServiceInfo | None:
        """The service's info, None when it is not enabled here or did not answer."""
        published = await self.published(modality)
        return published.info if published is not None else None

    async def published(self, modality: str) -> Published | None:
        """The service's answer (its models and limits), None when it is not enabled here or did not
        answer. The same object until the next refresh, so what is derived from it is kept as long."""
        return (await self._entry(modality))[1]

    async def _entry(self, modality: str) -> tuple[float, Published | None]:
        if not self._clients.enabled(modality):
            return 0.0, None
        hit = self._cached.get(modality)
        if hit is not None:
            left = hit[0] - time.monotonic()
            if left > 0:
                # Past half its time, the answer is asked for again beside the request that found it, so
                # requests to a service in use never wait for GetServiceInfo (every 5 s one did: a round
                # trip to a model service on its path, a p99 item). Never used past its own time.
                if left < self._cache_seconds / 2 and modality not in self._fetching:
                    self._fetch_started(modality)
                return hit
        fetching = self._fetching.get(modality) or self._fetch_started(modality)
        # Shielded: one waiting request that is cancelled does not cancel the others' answer.
        return await asyncio.shield(fetching)

    def _fetch_started(self, modality: str) -> asyncio.Future[tuple[float, Published | None]]:
        fetching = self._fetching[modality] = started(self._fetch(modality))  # a renewal is awaited by nobody
        return fetching

    async def _fetch(self, modality: str) -> tuple[float, Published | None]:
        try:
            info = await self._clients.info(modality).GetServiceInfo(common_pb2.GetServiceInfoRequest(),
                                                                     timeout=INFO_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError:
            info = None
        finally:
            del self._fetching[modality]
        entry = self._cached[modality] = (time.monotonic() + self._cache_seconds,
                                          Published.of(info) if info is not None else None)
        return entry

    async def infos(self) -> list[ServiceInfo]:
        """The info of every enabled modality service that answers, in the configured order."""
        names = self._clients.settings.modalities
        return [info for info in await asyncio.gather(*(self.info(n) for n in names)) if info is not None]


async def get_catalog(request: Request) -> ServiceCatalog:
    return request.app.state.catalog


Catalog = Annotated[ServiceCatalog, Depends(get_catalog)]
