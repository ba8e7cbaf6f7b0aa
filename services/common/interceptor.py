"""One server interceptor gives every RPC the same treatment: a trace span continuing the caller's
trace, Prometheus timing, a readiness gate (MODEL_UNAVAILABLE until the models load), and errors as
google.rpc.Status: a ServiceError becomes its status, anything unexpected a PROCESSING_FAILED status
instead of a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import grpc
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from services.common.errors import ModelLost, Reason, ServiceError
from services.common.metrics import RPC_SECONDS, RPCS_HANDLED
from univence.telemetry import extract_context, makes_span

log = logging.getLogger(__name__)
tracer = trace.get_tracer("univence.services")

# RPCs that answer whether or not the models are loaded.
_ALWAYS_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.", "/univence.common.v1.ServiceInfoService/")


class RuntimeInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, not_ready_reason: Callable[[], str | None],
                 model_lost: Callable[[str], None] | None = None, *, tracing: bool = True):
        """`not_ready_reason()` returns why the service cannot take work yet, or None when it can;
        `model_lost(reason)` is told when a handler raised ModelLost. `tracing`: whether spans are exported;
        without, an RPC gets a span only when its caller sent a trace context (a span that goes nowhere
        cost ~60 µs of every RPC in a loop, more in place, and the direct callers paid it as the edge did)."""
        self._service = service
        self._not_ready_reason = not_ready_reason
        self._model_lost = model_lost
        self._tracing = tracing

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or details.method.startswith(_ALWAYS_OPEN):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        call = _Call(self, method, details.invocation_metadata)
        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(call.unary(handler.unary_unary), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(call.unary(handler.stream_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(call.streaming(handler.unary_stream), **kwargs)
        return grpc.stream_stream_rpc_method_handler(call.streaming(handler.stream_stream), **kwargs)


class _Call:
    """The bookkeeping of one RPC, shared by the unary- and stream-response wrappers."""

    def __init__(self, owner: RuntimeInterceptor, method: str, metadata):
        self.owner, self.method, self.metadata = owner, method, metadata
        self.code = grpc.StatusCode.OK

    def unary(self, behavior):
        async def wrapped(request, context: grpc.aio.ServicerContext):
            with self._span() as span:
                start = time.perf_counter()
                try:
                    self._gate()
                    return await behavior(request, context)
                except BaseException as exc:  # noqa: BLE001 - every outcome is recorded, then re-raised
                    await self._fail(exc, context, span)
                finally:
                    self._record(start)
        return wrapped

    def streaming(self, behavior):
        async def wrapped(request, context: grpc.aio.ServicerContext):
            with self._span() as span:
                start = time.perf_counter()
                try:
                    self._gate()
                    async for message in behavior(request, context):
                        yield message
                except BaseException as exc:  # noqa: BLE001
                    await self._fail(exc, context, span)
                finally:
                    self._record(start)
        return wrapped

    def _span(self) -> contextlib.AbstractContextManager[Span | None]:
        if not makes_span(self.owner._tracing, (key for key, _ in self.metadata or ())):
            return contextlib.nullcontext()
        return tracer.start_as_current_span(
            f"{self.owner._service}/{self.method}", context=extract_context(self.metadata),
            kind=SpanKind.SERVER, attributes={"rpc.system": "grpc", "rpc.method": self.method},
        )

    def _gate(self) -> None:
        reason = self.owner._not_ready_reason()
        if reason:
            raise ServiceError(Reason.ERROR_REASON_MODEL_UNAVAILABLE, reason)

    async def _fail(self, exc: BaseException, context, span) -> None:
        """Answers the RPC with the error's status; always raises (grpc's abort, or exc itself)."""
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            self.code = grpc.StatusCode.CANCELLED
            raise exc
        if isinstance(exc, grpc.aio.AbortError):  # the servicer already set the status
            self.code = context.code() or grpc.StatusCode.UNKNOWN
            raise exc
        if isinstance(exc, ServiceError):
            error = exc
            if isinstance(exc, ModelLost) and self.owner._model_lost is not None:
                self.owner._model_lost(exc.message)
        else:
            log.exception("unexpected error in %s", self.method)
            error = ServiceError(Reason.ERROR_REASON_PROCESSING_FAILED,
                                 f"internal error while processing the request ({type(exc).__name__})")
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, error.message))
        self.code = error.code
        await context.abort_with_status(error.to_status())

    def _record(self, start: float) -> None:
        RPCS_HANDLED.labels(self.owner._service, self.method, self.code.name).inc()
        RPC_SECONDS.labels(self.owner._service, self.method).observe(time.perf_counter() - start)
