"""Edge settings: defaults, then the `[edge]` table of the UNIVENCE_CONFIG file, then UNIVENCE_EDGE_* env
(read the same way as every service's, by univence.settings). Where each service listens by default
comes from the service registry (`univence.registry.address`: the port the service itself is configured
with, so moving a service's port moves the edge's default address for it); the maintenance flag is in
the data folder (univence.home) by default, where `univence maintenance` switches it from any directory."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from univence.home import data_path
from univence.registry import LOCALHOST, MODALITIES, address, entry
from univence.settings import SectionSettings


class EdgeSettings(SectionSettings):
    section: ClassVar[str] = "edge"

    host: str = LOCALHOST
    port: int = entry("edge").port
    # Prometheus /metrics on this port (on `host`), not on the API's; 0 turns it off.
    metrics_port: int = entry("edge").metrics_port
    workers: int = 1
    # Defaults: where this machine's settings put the service (`univence.registry.address`).
    accounts_address: str = Field(default_factory=lambda: address("accounts"))
    media_address: str = Field(default_factory=lambda: address("media"))
    # Modality services this edge routes to, by name; others answer 503. An address not given here is
    # the service's own (`univence.registry.address`).
    modalities: list[str] = []
    modality_addresses: dict[str, str] = {}
    # Seconds a successful authentication is reused, only while accounts' revocation stream is connected
    # (a revocation drops the user's entries at once, edge.auth); 0 asks accounts on every request.
    auth_cache_seconds: float = 5.0
    # Requests per minute per API key (token bucket, per edge process); 0 turns limiting off.
    rate_limit_per_minute: int = 600
    rate_limit_burst: int = 60
    # Failed authentications per minute per client address (token bucket, per edge process): past them
    # the address gets 429 without the key being checked; 0 turns this off.
    auth_failures_per_minute: int = 30
    auth_failures_burst: int = 30
    # A file whose presence puts the edge in maintenance mode (503, maintenance_mode); `univence
    # maintenance on|off` creates and removes it.
    maintenance_file: str = Field(default_factory=lambda: str(data_path("maintenance")))
    maintenance: bool = False
    # The settlement outbox (SQLite): commits and releases accounts did not answer, delivered again until
    # it does, also after a restart (edge.settlement). Several workers of one edge may share it.
    outbox_path: str = Field(default_factory=lambda: str(data_path("edge-outbox.db")))
    # Credit leases (edge.leases): a priced request without an Idempotency-Key spends from a lease this
    # process holds for its user (lease_target_mc at most, taken when at least lease_minimum_mc is free;
    # returned after lease_idle_seconds unused) and its charge is reported in a batch every lease_flush_ms,
    # instead of a Reserve and a Commit on its path. Off: every priced request holds its own credits.
    credit_leases: bool = True
    lease_target_mc: int = Field(default=20_000, gt=0)
    lease_minimum_mc: int = Field(default=5_000, ge=0)
    lease_idle_seconds: float = Field(default=5.0, gt=0)
    # A batch every 200 ms rather than every 20: at a request every ~40 ms (an image edit on the tiny
    # profile) a 20 ms batch carried one charge, one accounts call per request, which cost the edge ~0.6 ms
    # of CPU per edit (besides accounts' own work) on cores the services share. The account page flushes
    # first, so a user reading it through this edge sees every charge at once either way.
    lease_flush_ms: float = Field(default=200.0, ge=0)
    # Largest request body accepted, in MiB.
    max_body_mb: int = 64
    # Deadline for calls to services, in seconds (long jobs set their own).
    rpc_timeout_seconds: float = 600.0
    # Long jobs (POST /v1/videos): their runner reports at least this often, and holds each job for
    # job_lease_seconds after each report; a job whose edge died is failed once its lease runs out.
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_lease_seconds: int = Field(default=30, ge=2, le=3600)
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
        return self.modality_addresses.get(name) or address(name)
