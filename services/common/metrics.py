"""Prometheus metrics every service exports on its metrics port."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RPCS_HANDLED = Counter(
    "univence_grpc_server_handled_total", "RPCs completed, by method and status code.",
    ["service", "method", "code"],
)
RPC_SECONDS = Histogram(
    "univence_grpc_server_handling_seconds", "RPC time from arrival to last message, by method.",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
QUEUE_DEPTH = Gauge("univence_work_queue_depth", "Work items waiting or running.", ["queue"])
QUEUE_REJECTED = Counter("univence_work_queue_rejected_total", "Work refused because the queue was full.",
                         ["queue"])
BATCH_SIZE = Histogram("univence_batch_size", "Items per model call.", ["queue"],
                       buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32))
MODEL_READY = Gauge("univence_model_ready", "1 once the service's models are loaded.", ["service"])


def start_metrics_server(port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serves /metrics over HTTP (port 0 means off); returns what stops it and lets its port go. Raises
    OSError when the port cannot be had."""
    if not port:
        return lambda: None
    server, _thread = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
