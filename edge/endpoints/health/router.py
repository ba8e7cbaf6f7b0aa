"""Liveness and readiness for load balancers and Kubernetes probes."""

from __future__ import annotations

import asyncio

import grpc
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from edge.catalog import Catalog
from edge.clients import Clients, ServiceClients
from edge.endpoints.health import translate
from edge.routing import LeanRoute

router = APIRouter(tags=["health"], route_class=LeanRoute)


@router.get("/healthz", summary="The edge process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The edge and the services it needs are serving")
async def readyz(clients: Clients, catalog: Catalog) -> JSONResponse:
    """200 when accounts and media (which every request path needs) are SERVING; modality services
    are reported too (with the reason a modality's models did not load), and a modality that is not
    serving only fails its own endpoints."""
    settings = clients.settings
    targets = {"accounts": settings.accounts_address, "media": settings.media_address}
    targets |= {name: settings.modality_address(name) for name in settings.modalities}
    states = await asyncio.gather(*(_check(clients, address) for address in targets.values()))
    services = dict(zip(targets, states, strict=True))
    infos = await catalog.infos() if any(services[n] == "NOT_SERVING" for n in settings.modalities) else []
    problems = {info.service: info.load_error for info in infos if info.load_error}
    answer = translate.readiness(services, problems)
    return JSONResponse(answer.model_dump(), status_code=200 if answer.status == "ready" else 503)


async def _check(clients: ServiceClients, address: str) -> str:
    try:
        return translate.state(await clients.health(address).Check(translate.CHECK, timeout=2))
    except grpc.aio.AioRpcError as exc:
        return translate.failed_state(exc)
