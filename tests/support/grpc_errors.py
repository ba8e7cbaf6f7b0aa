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


def error_info(error: grpc.RpcError) -> RpcErrorInfo:
    """The ErrorInfo carried in the trailing metadata of a failed call (sync or aio)."""
    trailers = error.trailing_metadata() or ()
    raw = next((value for key, value in trailers if key == STATUS_DETAILS_KEY), None)
    reason, metadata = "", {}
    if raw is not None:
        status = status_pb2.Status.FromString(raw)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
                break
    return RpcErrorInfo(error.code(), error.details() or "", reason, metadata)


async def expect_error(call: Awaitable[object], reason: str) -> RpcErrorInfo:
    """Awaits an aio call that must fail with ErrorInfo `reason`; returns the error for more checks."""
    try:
        await call
    except grpc.RpcError as error:
        info = error_info(error)
        assert info.reason == reason, f"expected {reason}, got {info.reason or info.code}: {info.message}"
        return info
    raise AssertionError(f"expected the call to fail with {reason}, but it succeeded")
