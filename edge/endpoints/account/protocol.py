"""The JSON of POST /v1/auth/token and /v1/auth/refresh (OAuth 2's token response shape), and what the
account page shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field


class TokenRequest(BaseModel):
    """Email and password; or no body at all, with the session cookie of a logged-in browser."""

    email: str = Field(default="", max_length=320)
    password: str = Field(default="", max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=256)


class TokenResponse(BaseModel):
    access_token: str = Field(description="A JWT for `Authorization: Bearer`")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Works once, at POST /v1/auth/refresh, for a new pair")


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    name: str
    prefix: str
    created: str
    last_used: str
    revoked: str


@dataclass(frozen=True)
class UsageRow:
    when: str
    kind: str
    description: str
    credits: str
    balance_after: str


@dataclass(frozen=True)
class PriceRow:
    service: str
    detail: str
    price: str
    premium: str


@dataclass(frozen=True)
class VideoRow:
    url: str  # '' until the video is completed
    created: str
    prompt: str
    status: str
