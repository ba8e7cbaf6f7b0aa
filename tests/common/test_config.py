"""Settings come from defaults, then the config file's section, then the environment."""

from __future__ import annotations

from services.common.devices import resolve_device, resolve_profile
from services.common.modality import ModalitySettings


class ExampleSettings(ModalitySettings):
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


def test_a_missing_or_broken_config_file_is_a_clear_error_for_every_process(tmp_path, monkeypatch):
    """Services and the edge read the file through one source (univence/settings.py): the same message."""
    import pytest

    from edge.config import EdgeSettings
    from univence.settings import ConfigError

    monkeypatch.setenv("UNIVENCE_CONFIG", str(tmp_path / "absent.toml"))
    for settings_class in (ExampleSettings, EdgeSettings):
        with pytest.raises(ConfigError, match=r"absent\.toml, which does not exist"):
            settings_class()
    broken = tmp_path / "broken.toml"
    broken.write_text("[example\nport = 1\n")
    monkeypatch.setenv("UNIVENCE_CONFIG", str(broken))
    for settings_class in (ExampleSettings, EdgeSettings):
        with pytest.raises(ConfigError, match=r"broken\.toml is not valid TOML"):
            settings_class()
