"""SQLAlchemy Core views of the tables `migrations.py` creates, for building queries."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("premium", Boolean, nullable=False),
    Column("balance_mc", BigInteger, nullable=False),
    Column("held_mc", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("password_hash", String(255)),
    Column("email_verified_us", BigInteger),
    Column("disabled_us", BigInteger),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("last_used_us", BigInteger),
    Column("revoked_us", BigInteger),
)

holds = Table(
    "holds", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("amount_mc", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("idempotency_key", String(255)),
    Column("request_fingerprint", String(255), nullable=False),
    Column("charged_mc", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("settled_us", BigInteger),
    Column("release_reason", String(200), nullable=False),
    Column("response_body", LargeBinary),
    Column("response_content_type", String(255), nullable=False),
)

ledger_entries = Table(
    "ledger_entries", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("amount_mc", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("hold_id", String(40)),
    Column("description", Text, nullable=False),
    Column("balance_after_mc", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger),
    Column("client_ip", String(64), nullable=False),
    Column("user_agent", String(255), nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("family_id", String(40), nullable=False),
    Column("session_id", String(40)),
    Column("token_hash", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used_us", BigInteger),
    Column("revoked_us", BigInteger),
)

email_verifications = Table(
    "email_verifications", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used_us", BigInteger),
)

login_throttle = Table(
    "login_throttle", metadata,
    Column("throttle_key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_us", BigInteger, nullable=False),
)

revocations = Table(
    "revocations", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

lease_charges = Table(
    "lease_charges", metadata,
    Column("request_id", String(64), primary_key=True),
    Column("hold_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("charged_mc", BigInteger, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("entry_seq", BigInteger),
    Column("created_us", BigInteger, nullable=False),
)
