"""Settings for every Univence process (the services and the edge): defaults, overridden by a table of
the TOML config file, overridden by the environment.

One TOML file (path in UNIVENCE_CONFIG, or `--config`) holds a table per process, e.g. `[accounts]`,
`[edge]`; environment variables `UNIVENCE_<SECTION>_<FIELD>` win over it (nested fields use `__`).
Both `services.common.config.ServiceSettings` and `edge.config.EdgeSettings` subclass
`SectionSettings`, so the file is read, and a bad file reported, the same way everywhere.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "UNIVENCE_CONFIG"


class ConfigError(ValueError):
    """The config file is missing or is not valid TOML; the message says which file and why."""


def read_config_section(section: str, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The `[section]` table of the config file (`path`, else UNIVENCE_CONFIG), or {} when no file is
    configured or it has no such table."""
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return {}
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{CONFIG_ENV} points to {file}, which does not exist")
    try:
        with file.open("rb") as f:
            table = tomllib.load(f).get(section, {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {file} is not valid TOML: {exc}") from None
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] in {file} must be a table")
    return dict(table)


def configured(section: str, name: str, default: Any = None) -> Any:
    """One setting of `[section]` as the process that owns the section reads it (its environment variable
    `UNIVENCE_<SECTION>_<NAME>`, then the config file), else `default`, for a process that does not load
    that section's settings class: the edge and the CLI finding where a service listens
    (`univence.registry.address`), the CLI finding the admin token. Environment values come back as
    strings, file values as TOML typed them."""
    variable = f"UNIVENCE_{section}_{name}".upper()
    for key, value in os.environ.items():  # matched without case, as pydantic-settings matches them
        if key.upper() == variable:
            return value
    return read_config_section(section).get(name, default)


class _TomlSectionSource(PydanticBaseSettingsSource):
    """The `[section]` table of the config file, as a pydantic-settings source."""

    def __init__(self, settings_cls: type[BaseSettings], section: str):
        super().__init__(settings_cls)
        self._values = read_config_section(section)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class SectionSettings(BaseSettings):
    """Settings read from `[section]` of the config file and `UNIVENCE_<SECTION>_*` variables. A subclass
    sets `section`; precedence is: constructor arguments, the environment, the file, the defaults."""

    section: ClassVar[str] = "univence"

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
