"""The API's error envelope, `{"error": {"message", "type", "param", "code"}}`, for every failure:
our own errors, validation errors, rejected images, unknown routes, gRPC errors from services, and
surprises; and its OpenAPI shape, which every endpoint group documents.

Nothing here imports the rest of the edge, so any edge module can raise these errors.
"""

from __future__ import annotations

import json
import logging

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from univence.imaging import ImageRejected

log = logging.getLogger(__name__)
# The methods a 405's Allow may name (RFC 9110's, less CONNECT and TRACE, which no route serves).
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class APIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error", *,
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.headers = param, code, headers or {}

    def fields(self) -> dict[str, str | None]:
        """The inside of the envelope: what `{"error": …}` holds (also a failed batch item's or stream's)."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}

    def body(self) -> bytes:
        """The envelope as JSON bytes, for answers written below FastAPI (edge.middleware, edge.http_protocol)."""
        return json.dumps({"error": self.fields()}).encode()

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.fields()}, status_code=self.status, headers=self.headers)


class ClientDisconnected(Exception):
    """The client went away before the work finished; the work was cancelled and nothing is charged."""


def error_response(status: int, message: str, type: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return APIError(status, message, type, param=param, code=code, headers=headers).response()


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
    "RATE_LIMITED": (429, "rate_limit_error", "rate_limit_exceeded"),
}


def from_reason(reason: str, message: str, param: str | None = None, retry_after: str = "") -> APIError:
    """The APIError for a service's ErrorInfo reason (e.g. one failed item of a batch); a 429 carries
    Retry-After: the service's `retry_after_seconds`, else 1."""
    status, type_, code = _REASONS.get(reason, (500, "processing_error", None))
    headers = {"Retry-After": retry_after if retry_after.isdigit() else "1"} if status == 429 else None
    return APIError(status, message or reason or "the service failed", type_, param=param or None, code=code,
                    headers=headers)


def status_error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo in a google.rpc.Status, if any: a failed call's, or a failed batch item's (AIP-193)."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a Univence service put in the call's google.rpc.Status, if any."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_error_info(status_pb2.Status.FromString(value))
    return None


def from_status(status: status_pb2.Status, fallback: str) -> APIError:
    """The APIError for a google.rpc.Status a service put in a result (a failed batch item), read like a
    failed call's; `fallback` is the message when the status has none."""
    info = status_error_info(status)
    if info is None:
        return APIError(500, status.message or fallback, "processing_error")
    error = from_reason(info.reason, status.message or fallback, info.metadata.get("param"))
    error.code = info.metadata.get("code") or error.code
    return error


def to_status(error: APIError) -> status_pb2.Status:
    """The google.rpc.Status that from_status reads back as `error` (its reason, message and param): how
    a job keeps the error it failed with."""
    reason = next((name for name, (status, type_, _) in _REASONS.items()
                   if (status, type_) == (error.status, error.type)), "PROCESSING_FAILED")
    info = error_details_pb2.ErrorInfo(reason=reason, domain="univence.com")
    if error.param:
        info.metadata["param"] = error.param
    if error.code:
        info.metadata["code"] = error.code
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=code_pb2.CANCELLED if error.code == "cancelled" else code_pb2.UNKNOWN,
                             message=error.message, details=[detail])


def service_unavailable(service: str) -> APIError:
    """503 for a service that cannot be reached (or has not said what it serves): retry shortly."""
    return APIError(503, f"the {service} service is unavailable; retry shortly", "processing_error",
                    code="service_unavailable", headers={"Retry-After": "1"})


def from_grpc(error: grpc.aio.AioRpcError, service: str) -> APIError:
    """The APIError for a failed call to `service`, from the ErrorInfo reason or else the gRPC code."""
    info = error_info(error)
    if info is not None and info.reason in _REASONS:
        return from_reason(info.reason, error.details(), info.metadata.get("param"),
                           info.metadata.get("retry_after_seconds", ""))
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return service_unavailable(service)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return APIError(504, f"the {service} service did not answer in time", "processing_error", code="timeout")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return APIError(413 if "message larger" in (error.details() or "") else 429,
                        error.details() or "resource exhausted", "invalid_request_error")
    log.error("%s call failed: %s %s", service, code, error.details())
    return APIError(500, f"the {service} service failed to process the request", "processing_error")


def from_image_rejected(exc: ImageRejected) -> APIError:
    """An input image refused by univence.imaging: 413 past a size limit, 400 otherwise."""
    if exc.too_large:
        return APIError(413, exc.message, param=exc.param, code="payload_too_large")
    return APIError(400, exc.message, param=exc.param, code="invalid_image")


def _param(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(ImageRejected)
    async def _image(_: Request, exc: ImageRejected) -> JSONResponse:
        return from_image_rejected(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
        if first.get("type") == "json_invalid":  # loc holds the character offset, not a field
            where = first.get("loc", ())[-1:]
            reason = first.get("ctx", {}).get("error", "")
            return error_response(400, f"The request body is not valid JSON ({reason or 'decode error'}"
                                  f"{f' at character {where[0]}' if where else ''})", "invalid_request_error",
                                  None, "invalid_json")
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
            headers = dict(getattr(exc, "headers", None) or {})
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
            return error_response(405, message, "invalid_request_error", None, "method_not_allowed",
                                  headers=headers)
        type_ = "processing_error" if exc.status_code >= 500 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), type_, headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnected)
    async def _gone(_: Request, exc: ClientDisconnected) -> JSONResponse:
        # Nobody reads this: the client closed the connection (499, as nginx logs it).
        return error_response(499, "client closed the request", "invalid_request_error", code="client_closed")

    @app.exception_handler(ClientDisconnect)
    async def _left(request: Request, _: ClientDisconnect) -> JSONResponse:
        # The client went away while sending its body (an aborted upload): its doing, not a server error.
        log.info("client disconnected while sending %s %s", request.method, request.url.path)
        return error_response(499, "client closed the request", "invalid_request_error", code="client_closed")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error while processing the request", "processing_error")


# -- the envelope in the OpenAPI document ------------------------------------------------------------

class ErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, insufficient_credits, "
                                  "processing_error, maintenance_mode, premium_required or rate_limit_error")
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorBody


def allowed_methods(request: Request) -> str:
    """The `Allow` of a 405 (RFC 9110 requires it): every method some route serves at the request's path.
    Starlette names only the methods of the first route whose path matched, so a path served by two
    route objects (GET /login and POST /login) would list half of them; so each method is asked of
    every route (`matches`, the router's own test) on a probe scope that leaves the request's alone."""
    allowed = []
    for method in HTTP_METHODS:
        probe = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", ""),
                 "method": method, "headers": [], "query_string": b""}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` entries for these statuses, all with the error envelope."""
    described = {
        400: "Invalid request", 401: "Authentication failed", 402: "Insufficient credits",
        403: "Premium required", 404: "Not found", 409: "Idempotency conflict", 413: "Payload too large",
        429: "Rate limited or queue full", 500: "Processing error", 503: "Maintenance or service unavailable",
    }
    return {s: {"model": ErrorResponse, "description": described.get(s, "Error")} for s in statuses}


COMMON_ERRORS = error_responses(400, 401, 429, 500, 503)
