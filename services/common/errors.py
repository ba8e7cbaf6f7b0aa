"""Errors as google.rpc.Status with an ErrorInfo reason the edge maps to the API's error type."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from univence.common.v1 import common_pb2
from univence.imaging import ImageRejected

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
    Reason.ERROR_REASON_RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def reason_name(reason: int) -> str:
    """ErrorInfo.reason for an ErrorReason: its name without the ERROR_REASON_ prefix."""
    return Reason.Name(reason).removeprefix("ERROR_REASON_")


class ServiceError(Exception):
    """Raised anywhere in a service to answer the RPC with this error; never a crash."""

    def __init__(self, reason: int, message: str, *, param: str | None = None,
                 metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.param = param
        # More ErrorInfo metadata, e.g. `retry_after_seconds` of RATE_LIMITED.
        self.metadata = metadata or {}

    @property
    def code(self) -> grpc.StatusCode:
        return _CODES[self.reason]

    def status(self, param_prefix: str = "") -> status_pb2.Status:
        """The google.rpc.Status of this error: the call's status (to_status), and a batch item's error
        (AIP-193), whose param gets the item's place as `param_prefix` ("requests[1].")."""
        info = error_details_pb2.ErrorInfo(reason=reason_name(self.reason), domain=DOMAIN, metadata=self.metadata)
        if self.param:
            info.metadata["param"] = param_prefix + self.param
        detail = any_pb2.Any()
        detail.Pack(info)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=[detail])

    def to_status(self) -> grpc.Status:
        return rpc_status.to_status(self.status())


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


def check_text(text: str, max_chars: int, param: str) -> None:
    """A request's free text (a prompt): at most `max_chars` characters (PAYLOAD_TOO_LARGE) and no NUL
    characters (INVALID_REQUEST), which models' tokenizers and logs mishandle."""
    if len(text) > max_chars:
        raise too_large(f"{param} is {len(text)} characters; at most {max_chars} are accepted", param)
    if "\x00" in text:
        raise invalid(f"{param} must not contain NUL characters", param)


def model_failed(modality: str, exc: BaseException) -> ServiceError:
    """A model that raised while running a request: PROCESSING_FAILED naming the modality ("image") and the
    exception, so the caller learns what broke without a traceback."""
    return ServiceError(Reason.ERROR_REASON_PROCESSING_FAILED,
                        f"the {modality} model failed while running the request ({type(exc).__name__}: {exc})")


def rejected(exc: ImageRejected) -> ServiceError:
    """An input image refused by univence.imaging: PAYLOAD_TOO_LARGE past a limit, else INVALID_REQUEST,
    with its message and the request field it names."""
    return (too_large if exc.too_large else invalid)(exc.message, exc.param)


@contextlib.contextmanager
def image_input() -> Iterator[None]:
    """Decodes in the block answer the RPC as `rejected` says, e.g. `with image_input(): decode(...)`."""
    try:
        yield
    except ImageRejected as exc:
        raise rejected(exc) from None


class ModelLoadError(RuntimeError):
    """A model cannot load here (a missing GPU or weights, a bad setting): the message names it and says
    what to do. The runtime reports it as the load error and answers MODEL_UNAVAILABLE with it."""
