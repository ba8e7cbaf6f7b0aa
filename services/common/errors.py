"""Errors as google.rpc.Status with an ErrorInfo reason the edge maps to the API's error type."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from univence.common.v1 import common_pb2

DOMAIN = "univence.com"
Reason = common_pb2.ErrorReason

# The gRPC code each reason travels with.
_CODES: dict[int, grpc.StatusCode] = {
    Reason.ERROR_REASON_INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.ERROR_REASON_AUTHENTICATION_FAILED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.ERROR_REASON_INSUFFICIENT_CREDITS: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.ERROR_REASON_PREMIUM_REQUIRED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.ERROR_REASON_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.ERROR_REASON_PAYLOAD_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.ERROR_REASON_QUEUE_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.ERROR_REASON_PROCESSING_FAILED: grpc.StatusCode.INTERNAL,
    Reason.ERROR_REASON_MODEL_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.ERROR_REASON_IDEMPOTENCY_CONFLICT: grpc.StatusCode.ABORTED,
    Reason.ERROR_REASON_PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.ERROR_REASON_DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def reason_name(reason: int) -> str:
    """ErrorInfo.reason for an ErrorReason: its name without the ERROR_REASON_ prefix."""
    return Reason.Name(reason).removeprefix("ERROR_REASON_")


class ServiceError(Exception):
    """Raised anywhere in a service to answer the RPC with this error; never a crash."""

    def __init__(self, reason: int, message: str, *, param: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.param = param

    @property
    def code(self) -> grpc.StatusCode:
        return _CODES[self.reason]

    def to_status(self) -> grpc.Status:
        info = error_details_pb2.ErrorInfo(reason=reason_name(self.reason), domain=DOMAIN)
        if self.param:
            info.metadata["param"] = self.param
        detail = any_pb2.Any()
        detail.Pack(info)
        proto = status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])
        return rpc_status.to_status(proto)


class ModelLost(ServiceError):
    """The model stopped working in a way this process cannot recover from (e.g. vLLM's engine process
    died): the RPC answers MODEL_UNAVAILABLE, and the runtime stops taking work and exits non-zero, so
    the supervisor (`univence up`, Kubernetes) starts a fresh process."""

    def __init__(self, message: str):
        super().__init__(Reason.ERROR_REASON_MODEL_UNAVAILABLE, message)


def invalid(message: str, param: str | None = None) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_INVALID_REQUEST, message, param=param)


def not_found(message: str, param: str | None = None) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_NOT_FOUND, message, param=param)


def too_large(message: str, param: str | None = None) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_PAYLOAD_TOO_LARGE, message, param=param)
