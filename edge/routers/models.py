"""GET /v1/models: what this deployment serves, asked of each modality service (cached briefly)."""

from __future__ import annotations

import asyncio
import time

import grpc
from fastapi import APIRouter, Depends, Request

from edge.auth import require_principal
from edge.errors import APIError
from edge.protocol.common import COMMON_ERRORS, error_responses
from edge.protocol.models import ModelList, ModelObject
from univence.common.v1 import common_pb2

router = APIRouter(tags=["models"], dependencies=[Depends(require_principal)], responses=COMMON_ERRORS)
CACHE_SECONDS = 5.0
_STARTED = int(time.time())


class ModelCatalog:
    """Collects GetServiceInfo from every enabled modality service; a service that does not answer
    is left out (its models are not served right now)."""

    def __init__(self) -> None:
        self._cached: tuple[float, list[ModelObject]] | None = None
        self._profiles: dict[str, str] = {}

    async def profile(self, request: Request, service: str) -> str:
        """The profile a modality service reported (refreshed with the model list)."""
        await self.models(request)
        return self._profiles.get(service, "")

    async def models(self, request: Request) -> list[ModelObject]:
        now = time.monotonic()
        if self._cached and self._cached[0] > now:
            return self._cached[1]
        clients = request.app.state.clients
        names = list(clients.settings.modalities)
        infos = await asyncio.gather(*(self._info(clients, n) for n in names))
        self._profiles = {info.service: info.profile for info in infos if info is not None}
        models = [
            ModelObject(id=m.id, created=_STARTED, service=info.service, task=m.task, profile=info.profile,
                        aliases=list(m.aliases), ready=info.ready)
            for info in infos if info is not None for m in info.models
        ]
        self._cached = (now + CACHE_SECONDS, models)
        return models

    @staticmethod
    async def _info(clients, name: str) -> common_pb2.GetServiceInfoResponse | None:
        stub = clients.info_stub(clients.settings.modality_address(name))
        try:
            return await stub.GetServiceInfo(common_pb2.GetServiceInfoRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return None


@router.get("/v1/models", response_model=ModelList, summary="List the served models")
async def list_models(request: Request) -> ModelList:
    return ModelList(data=await request.app.state.catalog.models(request))


@router.get("/v1/models/{model_id:path}", response_model=ModelObject, summary="One served model",
            responses=error_responses(404))
async def get_model(model_id: str, request: Request) -> ModelObject:
    for model in await request.app.state.catalog.models(request):
        if model_id == model.id or model_id in model.aliases:
            return model
    raise APIError(404, f"The model '{model_id}' does not exist or is not served here", param="model",
                   code="model_not_found")
