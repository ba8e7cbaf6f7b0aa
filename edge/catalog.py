"""What each modality service says about itself (GetServiceInfo): its models, its profile and the limits
the edge checks before reserving credits. Cached per modality for a few seconds, so an image request
waits on the image service's answer only (never on every modality's), and at most once per interval;
concurrent requests share one call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated

import grpc
from fastapi import Depends, Request

from edge.clients import ServiceClients
from univence.common.v1 import common_pb2

CACHE_SECONDS = 5.0
INFO_TIMEOUT_SECONDS = 2.0
ServiceInfo = common_pb2.GetServiceInfoResponse
NO_LIMITS: Mapping[str, float] = MappingProxyType({})


class ServiceCatalog:
    """GetServiceInfo per enabled modality service. A service that does not answer has no info (None)
    until the next refresh: its models are not listed, its limits are left to the service itself."""

    def __init__(self, clients: ServiceClients, cache_seconds: float = CACHE_SECONDS):
        self._clients = clients
        self._cache_seconds = cache_seconds
        # modality → (expiry, its info, its limits as a read-only dict made once per answer)
        self._cached: dict[str, tuple[float, ServiceInfo | None, Mapping[str, float]]] = {}
        self._fetching: dict[str, asyncio.Future[ServiceInfo | None]] = {}

    def forget(self) -> None:
        """Drops the cached answers (the next request asks again)."""
        self._cached.clear()

    async def info(self, modality: str) -> ServiceInfo | None:
        """The service's info, None when it is not enabled here or did not answer."""
        return (await self._entry(modality))[1]

    async def _entry(self, modality: str) -> tuple[float, ServiceInfo | None, Mapping[str, float]]:
        if not self._clients.enabled(modality):
            return 0.0, None, NO_LIMITS
        hit = self._cached.get(modality)
        if hit is not None and hit[0] > time.monotonic():
            return hit
        fetching = self._fetching.get(modality)
        if fetching is None:
            fetching = self._fetching[modality] = asyncio.ensure_future(self._fetch(modality))
        # Shielded: one waiting request that is cancelled does not cancel the others' answer.
        return await asyncio.shield(fetching)

    async def _fetch(self, modality: str) -> tuple[float, ServiceInfo | None, Mapping[str, float]]:
        try:
            info = await self._clients.info(modality).GetServiceInfo(common_pb2.GetServiceInfoRequest(),
                                                                     timeout=INFO_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError:
            info = None
        finally:
            del self._fetching[modality]
        limits = MappingProxyType(dict(info.limits)) if info is not None else NO_LIMITS
        entry = self._cached[modality] = (time.monotonic() + self._cache_seconds, info, limits)
        return entry

    async def infos(self) -> list[ServiceInfo]:
        """The info of every enabled modality service that answers, in the configured order."""
        names = self._clients.settings.modalities
        return [info for info in await asyncio.gather(*(self.info(n) for n in names)) if info is not None]

    async def profile(self, modality: str) -> str:
        """`full` or `tiny` as the service reports it; empty when it did not answer."""
        info = await self.info(modality)
        return info.profile if info is not None else ""

    async def limits(self, modality: str) -> Mapping[str, float]:
        """The limits the service publishes (GetServiceInfoResponse.limits, e.g. image `max_n`); empty
        when it did not answer (the service still checks its own). The same object until the next
        refresh, so what is derived from it can be kept as long (see ImageLimits.of)."""
        return (await self._entry(modality))[2]


async def get_catalog(request: Request) -> ServiceCatalog:
    return request.app.state.catalog


Catalog = Annotated[ServiceCatalog, Depends(get_catalog)]
