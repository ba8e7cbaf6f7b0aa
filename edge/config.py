"""Edge settings: defaults, then the `[edge]` table of the UNIVENCE_CONFIG file, then UNIVENCE_EDGE_* env
(read the same way as every service's, by univence.settings). Where each service listens by default
comes from the service registry (univence.registry)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator

from univence.registry import LOCALHOST, MODALITIES, entry
from univence.settings import SectionSettings


class EdgeSettings(SectionSettings):
    section: ClassVar[str] = "edge"

    host: str = LOCALHOST
    port: int = entry("edge").port
    # Prometheus /metrics on this port (on `host`), not on the API's; 0 turns it off.
    metrics_port: int = entry("edge").metrics_port
    workers: int = 1
    accounts_address: str = entry("accounts").default_address
    media_address: str = entry("media").default_address
    # Modality services this edge routes to, by name; others answer 503. Addresses default to the
    # registry's local ones.
    modalities: list[str] = []
    modality_addresses: dict[str, str] = {}
    # Metadata sent to accounts for admin RPCs (the CLI uses it; the edge itself calls none).
    admin_token: str = ""
    # Seconds a successful authentication is reused (revocations take effect within this time).
    auth_cache_seconds: float = 5.0
    # Requests per minute per API key (token bucket, per edge process); 0 turns limiting off.
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 60
    # Failed authentications per minute per client address (token bucket, per edge process): past them
    # the address gets 429 without the key being checked; 0 turns this off.
    auth_failures_per_minute: int = 30
    auth_failures_burst: int = 30
    # A file whose presence puts the edge in maintenance mode (503, maintenance_mode).
    maintenance_file: str = "data/maintenance"
    maintenance: bool = False
    # Largest request body accepted, in MiB.
    max_body_mb: int = 64
    # Deadline for calls to services, in seconds (long jobs set their own).
    rpc_timeout_seconds: float = 600.0
    # Public base URL for media links, and the origin the session's pages and cookie belong to (an
    # `https://` one makes the cookies Secure); empty means the request's own base URL.
    public_base_url: str = ""
    # The login session's cookie (HttpOnly, SameSite=Lax; Secure over HTTPS), and the cookie that guards
    # the login and sign-up forms against cross-site posts.
    session_cookie: str = "univence_session"
    form_cookie: str = "univence_form"
    max_message_mb: int = 64
    log_level: str = "INFO"
    otel_exporter: str = "none"

    @field_validator("modalities")
    @classmethod
    def _known_modalities(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in MODALITIES]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; the registry knows {', '.join(MODALITIES)}")
        return names

    def modality_address(self, name: str) -> str:
        return self.modality_addresses.get(name) or entry(name).default_address
