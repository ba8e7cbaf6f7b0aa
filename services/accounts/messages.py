"""Records of the accounts modules as protobuf messages."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from services.accounts.keys import ApiKey
from services.accounts.ledger import Entry, Hold, HoldState
from services.accounts.sessions import Session
from services.accounts.store import User
from services.accounts.tokens import Issued
from univence.accounts.v1 import accounts_pb2

_HOLD_STATES = {
    HoldState.HELD: accounts_pb2.HOLD_STATE_HELD,
    HoldState.COMMITTED: accounts_pb2.HOLD_STATE_COMMITTED,
    HoldState.RELEASED: accounts_pb2.HOLD_STATE_RELEASED,
    HoldState.EXPIRED: accounts_pb2.HOLD_STATE_EXPIRED,
}


def timestamp(us: int | None) -> Timestamp | None:
    """A Timestamp for microseconds since the epoch; None (field unset) for None."""
    if us is None:
        return None
    seconds, micros = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def user_message(user: User) -> accounts_pb2.User:
    return accounts_pb2.User(user_id=user.id, email=user.email, premium=user.premium,
                             create_time=timestamp(user.created_us), disabled=user.disabled,
                             email_verified=user.email_verified)


def session_message(session: Session) -> accounts_pb2.Session:
    return accounts_pb2.Session(session_id=session.id, user_id=session.user_id,
                                create_time=timestamp(session.created_us), expire_time=timestamp(session.expires_us))


def issued_message(issued: Issued) -> accounts_pb2.IssuedTokens:
    return accounts_pb2.IssuedTokens(
        access_token=issued.access_token, expires_in_seconds=issued.expires_in_seconds,
        refresh_token=issued.refresh_token, refresh_expire_time=timestamp(issued.refresh_expires_us),
        user=user_message(issued.user))


def api_key_message(key: ApiKey) -> accounts_pb2.ApiKey:
    return accounts_pb2.ApiKey(
        key_id=key.id, user_id=key.user_id, name=key.name, prefix=key.prefix,
        create_time=timestamp(key.created_us), last_used_time=timestamp(key.last_used_us),
        revoke_time=timestamp(key.revoked_us),
    )


def hold_message(hold: Hold) -> accounts_pb2.Hold:
    return accounts_pb2.Hold(hold_id=hold.id, user_id=hold.user_id, amount_mc=hold.amount_mc,
                             state=_HOLD_STATES[hold.state], expire_time=timestamp(hold.expires_us),
                             charged_mc=hold.charged_mc)


def entry_message(entry: Entry) -> accounts_pb2.LedgerEntry:
    return accounts_pb2.LedgerEntry(
        entry_id=entry.id, user_id=entry.user_id, amount_mc=entry.amount_mc, kind=entry.kind,
        hold_id=entry.hold_id or "", description=entry.description, balance_after_mc=entry.balance_after_mc,
        create_time=timestamp(entry.created_us),
    )
