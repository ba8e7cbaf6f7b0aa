"""The API's error envelope, `{"error": {"message", "type", "param", "code"}}`, for every failure:
our own errors, validation errors, unknown routes, gRPC errors from services, and surprises.
"""

from __future__ import annotations

import logging

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.rpc import error_details_pb2, status_pb2
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", *,
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.type, self.param, self.code, self.headers)


def error_response(status: int, message: str, type: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


# ErrorInfo.reason from a service → (HTTP status, error type, code).
_REASONS: dict[str, tuple[int, str, str | None]] = {
    "INVALID_REQUEST": (400, "invalid_request_error", None),
    "AUTHENTICATION_FAILED": (401, "authentication_error", "invalid_api_key"),
    "INSUFFICIENT_CREDITS": (402, "insufficient_credits", "insufficient_credits"),
    "PREMIUM_REQUIRED": (403, "premium_required", "premium_required"),
    "NOT_FOUND": (404, "invalid_request_error", "not_found"),
    "PAYLOAD_TOO_LARGE": (413, "invalid_request_error", "payload_too_large"),
    "QUEUE_FULL": (429, "rate_limit_error", "queue_full"),
    "PROCESSING_FAILED": (500, "processing_error", None),
    "MODEL_UNAVAILABLE": (503, "processing_error", "model_unavailable"),
    "IDEMPOTENCY_CONFLICT": (409, "invalid_request_error", "idempotency_conflict"),
    "PERMISSION_DENIED": (403, "authentication_error", "permission_denied"),
    "DEADLINE_EXCEEDED": (504, "processing_error", "timeout"),
}


def from_reason(reason: str, message: str, param: str | None = None) -> APIError:
    """The APIError for a service's ErrorInfo reason (e.g. one failed item of a batch)."""
    status, type_, code = _REASONS.get(reason, (500, "processing_error", None))
    headers = {"Retry-After": "1"} if status == 429 else None
    return APIError(status, message or reason or "the service failed", type_, param=param or None, code=code,
                    headers=headers)


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a Univence service put in the call's google.rpc.Status, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    return None


def from_grpc(error: grpc.aio.AioRpcError, service: str) -> APIError:
    """The APIError for a failed call to `service`, from the ErrorInfo reason or else the gRPC code."""
    info = error_info(error)
    if info is not None and info.reason in _REASONS:
        return from_reason(info.reason, error.details(), info.metadata.get("param"))
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return APIError(503, f"the {service} service is unavailable; retry shortly", "processing_error",
                        code="service_unavailable", headers={"Retry-After": "1"})
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return APIError(504, f"the {service} service did not answer in time", "processing_error", code="timeout")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return APIError(413 if "message larger" in (error.details() or "") else 429,
                        error.details() or "resource exhausted", "invalid_request_error")
    log.error("%s call failed: %s %s", service, code, error.details())
    return APIError(500, f"the {service} service failed to process the request", "processing_error")


def _param(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        param = _param(tuple(first.get("loc", ())))
        message = first.get("msg", "invalid request")
        if param:
            message = f"{param}: {message}"
        return error_response(400, message, "invalid_request_error", param, "invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Unknown request URL: {request.method} {request.url.path}"
            return error_response(404, message, "invalid_request_error", None, "unknown_url")
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed for {request.url.path}"
            return error_response(405, message, "invalid_request_error", None, "method_not_allowed")
        type_ = "processing_error" if exc.status_code >= 500 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), type_, headers=getattr(exc, "headers", None))

    from edge.metering import ClientDisconnected

    @app.exception_handler(ClientDisconnected)
    async def _gone(_: Request, exc: ClientDisconnected) -> JSONResponse:
        # Nobody reads this: the client closed the connection (499, as nginx logs it).
        return error_response(499, "client closed the request", "invalid_request_error", code="client_closed")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error while processing the request", "processing_error")
