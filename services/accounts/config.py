"""Settings of the accounts service (`[accounts]` in the config file, `UNIVENCE_ACCOUNTS_*` in the env)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, NonNegativeInt, PositiveFloat, PositiveInt

from services.common.config import ServiceSettings
from univence import admin
from univence.home import data_path
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


class JwtKey(BaseModel):
    """One key of `[[accounts.jwt_keys]]`: the service signs the access JWTs it issues with the signing key
    (`jwt_signing_kid`) and verifies a token whose header names a `kid` with that key alone. Rotation:
    add the new key, make it the signing key, and drop the old one once its tokens have expired."""

    kid: str = Field(min_length=1, max_length=64)
    algorithm: Literal["HS256", "RS256"]
    # HS256: the shared secret (at least 32 characters).
    secret: str = ""
    # RS256: the private key (PEM text or file) to sign with; its public half verifies.
    private_key: str = ""
    private_key_file: Path | None = None
    # RS256 without a private key: a key that only verifies (e.g. one rotated out of signing).
    public_key: str = ""
    public_key_file: Path | None = None


class AccountsSettings(ServiceSettings):
    section: ClassVar[str] = "accounts"

    port: int = entry("accounts").port
    metrics_port: int = entry("accounts").metrics_port
    # SQLite (embedded default: `accounts.db` in the data folder, univence.home, whatever directory the
    # service starts in) or postgresql://... for replicas.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{data_path('accounts.db')}")
    # Admin RPCs need the metadata `x-univence-admin-token` equal to it. Closed by default: when it is
    # empty, the service generates a token at its first start in `admin_token_file` (mode 0600), which
    # the CLI on this machine reads (univence.admin). Several replicas share one configured token.
    admin_token: str = ""
    admin_token_file: Path = Field(default_factory=admin.default_file)
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
    # How long a hold lives unsettled when the caller does not say (and each RenewHolds extends it by),
    # and the most a caller may ask for. Short, because the edge renews the holds of its running work
    # (every TTL/4): the holds of an edge that died are freed within TTL + hold_sweep_seconds.
    hold_ttl_seconds: PositiveInt = 40
    max_hold_ttl_seconds: PositiveInt = 86400
    # How often the background sweep frees holds that were never settled.
    hold_sweep_seconds: float = Field(default=5.0, gt=0)
    # Commit keeps a response this large or smaller for replays to an Idempotency-Key retry.
    max_stored_response_bytes: NonNegativeInt = 4 * MIB
    # Stored responses are dropped this long after their commit (the retry window of a key).
    stored_response_retention_hours: PositiveInt = 24
    pricing: PricingSettings = Field(default_factory=PricingSettings)

    # -- people: sign-up, passwords, sessions, issued JWTs -----------------------------------------------
    # Self sign-up on the edge's /signup page; false for a closed deployment (operators create users).
    signup_enabled: bool = True
    # New users must follow a mailed link before they can log in (needs the smtp_* settings).
    email_verification: bool = False
    email_verification_ttl_hours: PositiveInt = 48
    # Where people reach the edge: the base of the links in emails.
    public_base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "localhost"
    smtp_port: PositiveInt = 25
    # `starttls` upgrades a plain connection, `tls` connects over TLS (port 465), `none` sends in clear.
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "Univence <no-reply@localhost>"
    smtp_timeout_seconds: PositiveFloat = 30.0
    password_min_length: Annotated[int, Field(ge=8, le=256)] = 10
    # argon2id cost (argon2-cffi's defaults, RFC 9106's second recommendation): memory in KiB, passes, lanes.
    password_hash_memory_kib: Annotated[int, Field(ge=8)] = 65536
    password_hash_time_cost: PositiveInt = 3
    password_hash_parallelism: PositiveInt = 4
    # Hashes computed at once (each takes password_hash_memory_kib): a flood of logins queues instead of
    # exhausting memory.
    password_hash_concurrency: PositiveInt = 4
    # A session (the edge's cookie) ends this long after login, or at logout or a password change.
    session_ttl_seconds: PositiveInt = 7 * 86400
    # Failed logins: past `login_max_failures` for one email (or `login_max_failures_per_ip` for one
    # client address), each further attempt must wait `login_lockout_seconds`, doubling per failure up to
    # `login_max_lockout_seconds`; a key's failures are forgotten after `login_failure_window_seconds`
    # without one, and an account's at its next successful login.
    login_max_failures: PositiveInt = 5
    login_max_failures_per_ip: PositiveInt = 30
    login_lockout_seconds: PositiveInt = 30
    login_max_lockout_seconds: PositiveInt = 900
    login_failure_window_seconds: PositiveInt = 900
    # Sign-ups from one client address: past this many within the window, the next must wait (as above).
    signup_max_per_ip: PositiveInt = 20
    # Access JWTs the service issues (POST /v1/auth/token): signed with `jwt_signing_kid` of `jwt_keys`
    # (empty: the first key that can sign); without jwt_keys none are issued (but see jwt_auto_key).
    jwt_keys: list[JwtKey] = []
    jwt_signing_kid: str = ""
    # With SQLite (one machine) and no jwt_keys: generate an HS256 key once, in `jwt-signing.key` beside
    # the database (mode 0600), so a fresh install issues JWTs. PostgreSQL deployments (several
    # replicas) configure jwt_keys instead.
    jwt_auto_key: bool = True
    access_token_ttl_seconds: Annotated[int, Field(ge=10, le=86400)] = 900
    refresh_token_ttl_seconds: PositiveInt = 30 * 86400
