"""Settings come from defaults, then the config file's section, then the environment."""

from __future__ import annotations

from services.common.config import ServiceSettings
from services.common.devices import resolve_device, resolve_profile


class ExampleSettings(ServiceSettings):
    section = "example"
    port: int = 50999
    batch_size: int = 4


def test_file_section_then_environment(tmp_path, monkeypatch):
    config = tmp_path / "univence.toml"
    config.write_text("[example]\nport = 61000\nbatch_size = 8\nprofile = \"tiny\"\n[other]\nport = 1\n")
    monkeypatch.setenv("UNIVENCE_CONFIG", str(config))
    assert ExampleSettings().port == 61000 and ExampleSettings().batch_size == 8
    monkeypatch.setenv("UNIVENCE_EXAMPLE_BATCH_SIZE", "16")
    settings = ExampleSettings()
    assert (settings.port, settings.batch_size, settings.profile) == (61000, 16, "tiny")


def test_defaults_without_file(monkeypatch):
    monkeypatch.delenv("UNIVENCE_CONFIG", raising=False)
    assert ExampleSettings().port == 50999


def test_profile_and_device_on_a_cpu_machine():
    assert resolve_profile("tiny") == "tiny" and resolve_profile("full") == "full"
    assert resolve_profile("auto") in ("tiny", "full")
    assert resolve_device("cpu") == "cpu"
