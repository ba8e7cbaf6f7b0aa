"""Service settings: defaults, overridden by a TOML file section, overridden by the environment.

One TOML file (path in UNIVENCE_CONFIG) holds a table per service, e.g. `[accounts]`; environment
variables `UNIVENCE_<SERVICE>_<FIELD>` win over it (nested fields use `__`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "UNIVENCE_CONFIG"


def read_config_section(section: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The `[section]` table of the config file, or {} when there is no file or no such table."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return {}
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{CONFIG_ENV} points to {file}, which does not exist")
    with file.open("rb") as f:
        return dict(tomllib.load(f).get(section, {}))


class _TomlSectionSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], section: str):
        super().__init__(settings_cls)
        self._values = read_config_section(section)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class ServiceSettings(BaseSettings):
    """Settings every service has. A service subclasses it, setting `section` and its own defaults."""

    section: ClassVar[str] = "service"

    host: str = "127.0.0.1"
    port: int = 50050
    # Prometheus /metrics on this port; 0 turns it off.
    metrics_port: int = 0
    # `full` (real models on a GPU), `tiny` (tiny random models, offline) or `auto` (full with CUDA).
    profile: Literal["auto", "full", "tiny"] = "auto"
    # `auto`, `cpu`, `cuda` or `cuda:N`.
    device: str = "auto"
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

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.model_config = {**cls.model_config, "env_prefix": f"UNIVENCE_{cls.section.upper()}_"}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSectionSource(settings_cls, cls.section)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
