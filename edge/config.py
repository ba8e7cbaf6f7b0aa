"""Edge settings: defaults, then the `[edge]` table of the UNIVENCE_CONFIG file, then UNIVENCE_EDGE_* env."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# The modality services the edge knows, with their default local addresses.
MODALITY_PORTS = {"image": 50053, "llm": 50054, "audio": 50055, "music": 50056, "video": 50057, "vision": 50058}


class _EdgeTomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls)
        path = os.environ.get("UNIVENCE_CONFIG")
        data: dict[str, Any] = {}
        if path:
            with Path(path).open("rb") as f:
                data = tomllib.load(f).get("edge", {})
        self._values = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class EdgeSettings(BaseSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    accounts_address: str = "127.0.0.1:50051"
    media_address: str = "127.0.0.1:50052"
    # Modality services this edge routes to, by name; others answer 503. Addresses default to localhost.
    modalities: list[str] = []
    modality_addresses: dict[str, str] = {}
    # Metadata sent to accounts for admin RPCs (the CLI uses it; the edge itself calls none).
    admin_token: str = ""
    # Seconds a successful authentication is reused (revocations take effect within this time).
    auth_cache_seconds: float = 5.0
    # Requests per minute per API key (token bucket, per edge process); 0 turns limiting off.
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 60
    # A file whose presence puts the edge in maintenance mode (503, maintenance_mode).
    maintenance_file: str = "data/maintenance"
    maintenance: bool = False
    # Largest request body accepted, in MiB.
    max_body_mb: int = 64
    # Deadline for calls to services, in seconds (long jobs set their own).
    rpc_timeout_seconds: float = 600.0
    # Public base URL for media links; empty means the request's own base URL.
    public_base_url: str = ""
    max_message_mb: int = 64
    log_level: str = "INFO"
    otel_exporter: str = "none"

    model_config = SettingsConfigDict(env_prefix="UNIVENCE_EDGE_", env_nested_delimiter="__", extra="ignore")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _EdgeTomlSource(settings_cls)

    def modality_address(self, name: str) -> str:
        return self.modality_addresses.get(name, f"127.0.0.1:{MODALITY_PORTS[name]}")
