"""MediaSettings: defaults, the environment, the derived index URL, and refused combinations."""

from __future__ import annotations

import pydantic
import pytest

from services.media.config import MediaSettings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("UNIVENCE_CONFIG", raising=False)
    monkeypatch.setenv("UNIVENCE_HOME", str(tmp_path))
    settings = MediaSettings()
    assert (settings.port, settings.metrics_port, settings.root) == (50052, 9152, str(tmp_path / "media"))
    assert settings.transcode_ttl_seconds == 3600
    assert settings.index_url == f"sqlite:///{tmp_path / 'media' / 'media.db'}"


def test_environment_and_config_file(monkeypatch, tmp_path):
    config = tmp_path / "univence.toml"
    config.write_text('[media]\nroot = "/srv/media"\nchunk_bytes = 65536\n')
    monkeypatch.setenv("UNIVENCE_CONFIG", str(config))
    monkeypatch.setenv("UNIVENCE_MEDIA_CHUNK_BYTES", "131072")
    monkeypatch.setenv("UNIVENCE_MEDIA_DATABASE_URL", "postgresql://db/media")
    settings = MediaSettings()
    assert settings.root == "/srv/media" and settings.chunk_bytes == 131072
    assert settings.index_url == "postgresql://db/media"


def test_an_upload_limit_that_cannot_fit_in_a_message_is_refused(monkeypatch):
    monkeypatch.delenv("UNIVENCE_CONFIG", raising=False)
    with pytest.raises(pydantic.ValidationError, match="max_message_mb"):
        MediaSettings(max_upload_mb=64, max_message_mb=64)
