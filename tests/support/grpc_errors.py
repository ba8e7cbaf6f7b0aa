"""Reading a service's error (google.rpc.Status with an ErrorInfo) from a failed gRPC call."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class RpcErrorInfo:
    """What a caller learns from a failed RPC: the gRPC code, message and ErrorInfo reason/metadata."""

    code: grpc.StatusCode
    message: str
    reason: str = ""  # e.g. "INSUFFICIENT_CREDITS"; empty when the status had no ErrorInfo
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def param(self) -> str | None:
        return self.metadata.get("param")


def _reason(status: status_pb2.Status) -> tuple[str, dict[str, str]]:
    """(ErrorInfo reason, metadata) of a google.rpc.Status; empty when it has no ErrorInfo."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason, dict(info.metadata)
    return "", {}


def error_info(error: grpc.RpcError) -> RpcErrorInfo:
    """The ErrorInfo carried in the trailing metadata of a failed call (sync or aio)."""
    trailers = error.trailing_metadata() or ()
    raw = next((value for key, value in trailers if key == STATUS_DETAILS_KEY), None)
    reason, metadata = _reason(status_pb2.Status.FromString(raw)) if raw is not None else ("", {})
    return RpcErrorInfo(error.code(), error.details() or "", reason, metadata)


def status_error_info(status: status_pb2.Status) -> RpcErrorInfo:
    """The same, read from a google.rpc.Status carried in a result (a failed batch item, AIP-193)."""
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    return RpcErrorInfo(code, status.message, *_reason(status))


async def expect_error(call: Awaitable[object], reason: str) -> RpcErrorInfo:
    """Awaits an aio call that must fail with ErrorInfo `reason`; returns the error for more checks."""
    try:
        await call
    except grpc.RpcError as error:
        info = error_info(error)
        assert info.reason == reason, f"expected {reason}, got {info.reason or info.code}: {info.message}"
        return info
    raise AssertionError(f"expected the call to fail with {reason}, but it succeeded")
