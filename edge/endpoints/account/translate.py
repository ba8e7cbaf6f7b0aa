"""The accounts service's answers → what the pages show (credits, times, keys, usage, prices, videos) and
the token endpoints' JSON. Amounts are exact: milli-credits printed as decimal credits, no floats."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import Request
from google.protobuf.timestamp_pb2 import Timestamp

from edge.endpoints.account.protocol import KeyRow, PriceRow, TokenResponse, UsageRow, VideoRow
from edge.endpoints.videos.protocol import UserVideo
from univence.accounts.v1 import accounts_pb2 as pb

UNITS = {pb.PRICE_UNIT_REQUEST: "per request", pb.PRICE_UNIT_IMAGE: "per image", pb.PRICE_UNIT_FRAME: "per frame",
         pb.PRICE_UNIT_MEGAPIXEL: "per megapixel"}
# A flash message after a redirect, by the code in `?done=`.
NOTICES = {
    "logged-out": "You are logged out.",
    "revoked": "The key is revoked: requests with it are refused from now on.",
    "password": "Your password is changed; every other session was logged out.",
    "welcome": "Welcome! Create an API key below to start making requests.",
}


def credits(mc: int, signed: bool = False) -> str:
    """1250 mc → "1.25"; signed: "+1.25" / "-0.25"."""
    text = f"{Decimal(abs(mc)) / 1000:f}"
    sign = "-" if mc < 0 else ("+" if signed and mc > 0 else "")
    return sign + text


def credits_text(mc: int) -> str:
    return f"{credits(mc)} credit{'' if mc == 1000 else 's'}"


def when(ts: Timestamp | None) -> str:
    if ts is None or not ts.seconds:
        return ""
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def seconds_left(ts: Timestamp) -> int:
    return math.ceil(ts.seconds + ts.nanos / 1e9 - time.time())


def client_ip(request: Request) -> str:
    """The address the login rate limits count against (uvicorn resolves X-Forwarded-For from the proxies
    it trusts: --forwarded-allow-ips / FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:255]


def key_rows(keys: list[pb.ApiKey]) -> list[KeyRow]:
    """Active keys first, newest first."""
    ordered = sorted(keys, key=lambda k: (k.HasField("revoke_time"), -k.create_time.seconds))
    return [KeyRow(k.key_id, k.name or "(no name)", k.prefix + "…", when(k.create_time),
                   when(k.last_used_time) if k.HasField("last_used_time") else "never",
                   when(k.revoke_time) if k.HasField("revoke_time") else "") for k in ordered]


def usage_rows(entries: list[pb.LedgerEntry]) -> list[UsageRow]:
    return [UsageRow(when(e.create_time), e.kind, e.description, credits(e.amount_mc, signed=True),
                     credits(e.balance_after_mc)) for e in entries]


def operation_label(operation: int) -> str:
    """OPERATION_IMAGE_TO_VIDEO → "Image to video"."""
    return pb.Operation.Name(operation).removeprefix("OPERATION_").replace("_", " ").capitalize()


def price_rows(table: pb.GetPriceTableResponse) -> list[PriceRow]:
    rows = []
    for p in table.prices:
        detail = p.model or p.method.replace("_", " ")
        if p.premium_only:
            rows.append(PriceRow(operation_label(p.operation), detail, "Premium only", "Free"))
            continue
        price = f"{credits_text(p.amount_mc)} {UNITS.get(p.unit, '')}".strip()
        if p.minimum_mc:
            price += f" (at least {credits(p.minimum_mc)} per image)"
        rows.append(PriceRow(operation_label(p.operation), detail, price, "Free"))
    return rows


def discounts(table: pb.GetPriceTableResponse) -> list[str]:
    return [f"{d.min_credits}+ credits: {d.percent}% off" for d in table.bulk_discounts]


def video_rows(videos: list[UserVideo]) -> list[VideoRow]:
    """The user's videos (their video jobs): linked once completed, else their status (queued, failed...)."""
    return [VideoRow(v.url or "", datetime.fromtimestamp(v.created, UTC).strftime("%Y-%m-%d %H:%M UTC"),
                     v.prompt or "", v.status) for v in videos]


def token_response(tokens: pb.IssuedTokens) -> TokenResponse:
    return TokenResponse(access_token=tokens.access_token, expires_in=tokens.expires_in_seconds,
                         refresh_token=tokens.refresh_token)
