"""Settings of the media service (TOML section `[media]`, environment prefix UNIVENCE_MEDIA_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from services.common.config import ServiceSettings
from univence.home import data_path
from univence.registry import entry


class MediaSettings(ServiceSettings):
    section: ClassVar[str] = "media"

    port: int = entry("media").port
    metrics_port: int = entry("media").metrics_port
    # Transcodes are CPU work; two run at once, the rest wait (up to queue_max_pending).
    queue_concurrency: int = 2
    # The filesystem store's folder (blobs, and the SQLite index unless database_url is set); by default
    # `media/` in the data folder (univence.home), whatever directory the service starts in.
    root: str = Field(default_factory=lambda: str(data_path("media")))
    # SQLAlchemy URL of the metadata index; empty means sqlite:///<root>/media.db. PostgreSQL when
    # several replicas share one store.
    database_url: str = ""
    # Largest file CreateMedia accepts, in MiB (must fit in one gRPC message with room to spare).
    max_upload_mb: int = Field(default=60, gt=0)
    # GetMedia streams the bytes in chunks of this size.
    chunk_bytes: int = Field(default=256 * 1024, ge=1024, le=4 * 1024 * 1024)
    # In-memory cache of transcoded images, in MiB; 0 turns it off.
    transcode_cache_mb: int = Field(default=256, ge=0)
    # A cached variant lives this long after its last use (sliding expiration).
    transcode_ttl_seconds: int = Field(default=3600, gt=0)
    # Images with more pixels (all frames together) are not decoded for transcoding.
    max_transcode_pixels: int = Field(default=64_000_000, gt=0)
    # A job's runner (an edge) renews its lease with every report; a job whose lease runs out while it is
    # queued or running is marked failed (its runner died) by a sweep every job_sweep_seconds.
    job_lease_seconds: float = Field(default=30, gt=0, le=3600)
    job_sweep_seconds: float = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _upload_fits_in_a_message(self) -> MediaSettings:
        if self.max_upload_mb >= self.max_message_mb:
            raise ValueError(
                f"max_upload_mb ({self.max_upload_mb}) must be below max_message_mb ({self.max_message_mb}),"
                " or uploads would fail in gRPC before the service sees them"
            )
        return self

    @property
    def index_url(self) -> str:
        """The metadata index's database URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.root).resolve() / 'media.db'}"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024
