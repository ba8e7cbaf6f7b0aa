"""Settings of the accounts service (`[accounts]` in the config file, `UNIVENCE_ACCOUNTS_*` in the env)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field, NonNegativeInt, PositiveInt

from services.common.config import ServiceSettings
from univence.registry import entry

MIB = 1024 * 1024
Percent = Annotated[int, Field(ge=0, lt=100)]


class PricingSettings(BaseModel):
    """The price table in milli-credits (1 credit = 1000 mc = $0.01); `[accounts.pricing]` overrides it.

    A dict field given in the config file replaces the whole default dict, so list every entry.
    """

    # Image generation: per output megapixel (2**20 pixels), by public model name, per image.
    image_generation_per_megapixel_mc: dict[str, NonNegativeInt] = Field(
        default_factory=lambda: {"z-image-turbo": 1000, "longcat-image-edit": 1500})
    # The rate for a model not in the table (the edge maps aliases before asking).
    default_image_model: str = "z-image-turbo"
    image_generation_minimum_mc: NonNegativeInt = 250
    image_edit_mc: NonNegativeInt = 500
    image_segmentation_mc: NonNegativeInt = 250
    image_background_removal_mc: NonNegativeInt = 250
    video_background_removal_per_frame_mc: NonNegativeInt = 250
    voice_clone_mc: NonNegativeInt = 1000
    music_generation_mc: NonNegativeInt = 1000
    music_cover_mc: NonNegativeInt = 1000
    music_repaint_mc: NonNegativeInt = 1000
    image_to_video_mc: NonNegativeInt = 1000
    # Upscaling: per output megapixel, by method, per image.
    upscale_per_megapixel_mc: dict[str, NonNegativeInt] = Field(default_factory=lambda: {
        "lanczos": 100, "realesrgan_2x": 300, "realesrgan_4x": 500, "realesrgan_4x_anime": 500, "swin2sr": 750,
    })
    upscale_minimum_mc: NonNegativeInt = 100
    # Chat is for premium users only, who pay nothing; this is what a non-premium user would pay.
    chat_completion_mc: NonNegativeInt = 0
    # Purchases: credits bought at or above the key get that percent off (1 credit = 1 cent).
    bulk_discount_percent: dict[PositiveInt, Percent] = Field(default_factory=lambda: {1000: 10, 10000: 20})


class AccountsSettings(ServiceSettings):
    section: ClassVar[str] = "accounts"

    port: int = entry("accounts").port
    metrics_port: int = entry("accounts").metrics_port
    # SQLite (embedded default, relative to the working directory) or postgresql://... for replicas.
    database_url: str = "sqlite:///data/accounts.db"
    # When set, admin RPCs need the metadata `x-univence-admin-token` equal to it.
    admin_token: str = ""
    # Optional server secret mixed into API key hashes (HMAC-SHA256). Changing it invalidates every key.
    api_key_pepper: str = ""
    # JWT verification: HS256 with this shared secret, and/or RS256 with this public key (PEM text or file).
    jwt_hs256_secret: str = ""
    jwt_rs256_public_key: str = ""
    jwt_rs256_public_key_file: Path | None = None
    # Checked when set.
    jwt_issuer: str = ""
    jwt_audience: str = ""
    # Clock skew allowed on `exp`/`nbf`/`iat`.
    jwt_leeway_seconds: NonNegativeInt = 30
    # How long a hold lives unsettled when the caller does not say, and the most a caller may ask for.
    hold_ttl_seconds: PositiveInt = 900
    max_hold_ttl_seconds: PositiveInt = 86400
    # How often the background sweep frees holds that were never settled.
    hold_sweep_seconds: float = Field(default=5.0, gt=0)
    # Commit keeps a response this large or smaller for replays to an Idempotency-Key retry.
    max_stored_response_bytes: NonNegativeInt = 4 * MIB
    # Stored responses are dropped this long after their commit (the retry window of a key).
    stored_response_retention_hours: PositiveInt = 24
    pricing: PricingSettings = Field(default_factory=PricingSettings)
