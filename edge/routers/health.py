"""Liveness and readiness for load balancers and Kubernetes probes."""

from __future__ import annotations

import asyncio

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from grpc_health.v1 import health_pb2, health_pb2_grpc

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The edge process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The edge and the services it needs are serving")
async def readyz(request: Request) -> JSONResponse:
    """200 when accounts and media (which every request path needs) are SERVING; modality services
    are reported too, and a modality that is not serving only fails its own endpoints."""
    clients = request.app.state.clients
    settings = clients.settings
    targets = {"accounts": settings.accounts_address, "media": settings.media_address}
    targets |= {name: settings.modality_address(name) for name in settings.modalities}
    names = list(targets)
    results = await asyncio.gather(*(_check(clients.channel(targets[n])) for n in names))
    services = dict(zip(names, results, strict=True))
    ready = services["accounts"] == "SERVING" and services["media"] == "SERVING"
    return JSONResponse({"status": "ready" if ready else "not_ready", "services": services},
                        status_code=200 if ready else 503)


async def _check(channel: grpc.aio.Channel) -> str:
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.aio.AioRpcError as exc:
        return "UNREACHABLE" if exc.code() == grpc.StatusCode.UNAVAILABLE else exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
