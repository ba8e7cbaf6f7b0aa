"""Settings every service has (TOML table `[<service>]` of the config file, then UNIVENCE_<SERVICE>_*
variables; see univence/settings.py, shared with the edge). A service subclasses ServiceSettings,
setting `section` and its own defaults; modality services subclass ModalitySettings
(services/common/modality.py), which adds what only model-serving services need."""

from __future__ import annotations

from typing import ClassVar, Literal

from univence.settings import SectionSettings


class ServiceSettings(SectionSettings):
    """Settings every gRPC service has."""

    section: ClassVar[str] = "service"

    host: str = "127.0.0.1"
    port: int = 50050
    # Prometheus /metrics on this port; 0 turns it off.
    metrics_port: int = 0
    # Largest gRPC message in either direction, in MiB (images and videos travel inline).
    max_message_mb: int = 64
    # Work items allowed to wait for the model; one more is refused at once with RESOURCE_EXHAUSTED.
    queue_max_pending: int = 32
    # Work items the model runs at once (batches count as one).
    queue_concurrency: int = 1
    # On SIGTERM, in-flight RPCs get this long to finish.
    drain_seconds: float = 30.0
    log_level: str = "INFO"
    # Where OpenTelemetry spans go: `none`, `console`, or `otlp` (OTEL_EXPORTER_OTLP_ENDPOINT).
    otel_exporter: Literal["none", "console", "otlp"] = "none"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def max_message_bytes(self) -> int:
        """`max_message_mb` in bytes: the gRPC limit, and the room a response's image or video has."""
        return self.max_message_mb * 1024 * 1024
