"""gRPC health checks → the readiness answer: the edge is ready when accounts and media (which every
request path needs) are SERVING; a modality that is not serving only fails its own endpoints."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from edge.endpoints.health.protocol import Readiness

NEEDED = ("accounts", "media")
CHECK = health_pb2.HealthCheckRequest()


def state(response: health_pb2.HealthCheckResponse) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def failed_state(error: grpc.aio.AioRpcError) -> str:
    return "UNREACHABLE" if error.code() == grpc.StatusCode.UNAVAILABLE else error.code().name


def readiness(services: dict[str, str], problems: dict[str, str]) -> Readiness:
    ready = all(services[name] == "SERVING" for name in NEEDED)
    return Readiness(status="ready" if ready else "not_ready", services=services, problems=problems)
