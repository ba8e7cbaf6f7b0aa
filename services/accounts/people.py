"""Accounts for people: sign-up, email verification, login (password → user), password changes.

A login answers an unknown email and a wrong password with the same error after the same work (one
argon2 verification either way, one throttle write); only someone who knows the password learns more
(that the account is disabled, or its email not confirmed yet).
"""

from __future__ import annotations

import logging
import smtplib
from urllib.parse import urlencode

from sqlalchemy import Engine, insert, select, update

from services.accounts.config import AccountsSettings
from services.accounts.mail import Mailer
from services.accounts.passwords import Passwords, check_email
from services.accounts.sessions import Session, Sessions
from services.accounts.store import (
    User,
    Users,
    authentication_failed,
    new_secret,
    now_us,
    secret_hash,
    user_from_row,
)
from services.accounts.tables import email_verifications, users
from services.accounts.throttle import LoginThrottle
from services.common.database import reading, writing
from services.common.errors import Reason, ServiceError, invalid

log = logging.getLogger(__name__)
HOUR_US = 3600 * 1_000_000
BAD_LOGIN = "invalid email or password"


class People:
    def __init__(self, engine: Engine, settings: AccountsSettings, users_: Users, passwords: Passwords,
                 throttle: LoginThrottle, sessions_: Sessions, mailer: Mailer):
        self.engine, self._s = engine, settings
        self.users, self.passwords, self.throttle, self.sessions = users_, passwords, throttle, sessions_
        self.mailer = mailer
        self._pepper = settings.api_key_pepper.encode()

    # -- sign-up and verification ----------------------------------------------------------------------

    def sign_up(self, email: str, password: str, client_ip: str = "") -> tuple[User | None, bool]:
        """The new user (None while verification hides it) and whether a verification link was mailed."""
        if not self._s.signup_enabled:
            raise ServiceError(Reason.ERROR_REASON_PERMISSION_DENIED,
                               "sign-up is closed on this server; ask its operator for an account")
        email = check_email(email)
        self.passwords.check_policy(password)
        keys = self.throttle.signup_keys(client_ip)
        self.throttle.check(keys, "sign-ups from this address")
        self.throttle.failed(keys)
        password_hash = self.passwords.hash(password)
        verify = self._s.email_verification
        try:
            user = self.users.insert(email, premium=False, password_hash=password_hash, verified=not verify)
        except ServiceError as error:
            if error.param != "email":
                raise
            if not verify:
                raise invalid("this email cannot be used to sign up; log in instead, or use another email",
                              "email") from None
            # The same answer as a new sign-up; the owner of the address learns that someone tried.
            self._mail(email, "Sign-up attempt on Univence",
                       "Someone (maybe you) tried to sign up on Univence with this email address, which "
                       f"already has an account.\n\nLog in at {self._link('/login')}.\n\n"
                       "If it was not you, you can ignore this message.")
            return None, True
        if verify:
            self.send_verification(user)
            return None, True
        log.info("user %s signed up", user.id)
        return user, False

    def send_verification(self, user: User) -> None:
        token = new_secret("")
        now = now_us()
        with writing(self.engine) as conn:
            conn.execute(insert(email_verifications).values(
                token_hash=secret_hash(token, self._pepper), user_id=user.id, created_us=now,
                expires_us=now + self._s.email_verification_ttl_hours * HOUR_US))
        link = self._link("/verify-email", token=token)
        self._mail(user.email, "Confirm your email address for Univence",
                   f"Welcome to Univence.\n\nConfirm your email address by opening this link:\n\n{link}\n\n"
                   f"The link works once, for {self._s.email_verification_ttl_hours} hours. "
                   "If you did not sign up, ignore this message.")
        log.info("verification mail for user %s", user.id)

    def verify_email(self, token: str) -> User:
        if not token:
            raise invalid("token is required", "token")
        now = now_us()
        with writing(self.engine) as conn:
            row = conn.execute(select(email_verifications).where(
                email_verifications.c.token_hash == secret_hash(token, self._pepper))).first()
            if row is None or row.used_us is not None or row.expires_us <= now:
                raise invalid("this confirmation link is invalid, used or expired; log in to get a new one",
                              "token")
            conn.execute(update(email_verifications).where(email_verifications.c.token_hash == row.token_hash)
                         .values(used_us=now))
            conn.execute(update(users).where(users.c.id == row.user_id, users.c.email_verified_us.is_(None))
                         .values(email_verified_us=now))
            user = user_from_row(conn.execute(select(users).where(users.c.id == row.user_id)).one())
        log.info("user %s confirmed their email", user.id)
        return user

    def _link(self, path: str, **query: str) -> str:
        return self._s.public_base_url.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")

    def _mail(self, to: str, subject: str, body: str) -> None:
        """Sends a mail; a failure is logged (without the body, which may carry a token), not raised: the
        user can ask for a new link by logging in."""
        try:
            self.mailer.send(to, subject, body)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("could not send the mail %r: %s", subject, exc)

    # -- logging in ---------------------------------------------------------------------------------------

    def login(self, email: str, password: str, client_ip: str) -> User:
        """The user whose email and password these are, or AUTHENTICATION_FAILED (RATE_LIMITED while the
        email or the address must wait)."""
        keys = self.throttle.keys(email, client_ip)
        self.throttle.check(keys)
        with reading(self.engine) as conn:
            row = self.users.find_by_email(conn, email)
        stored = row.password_hash if row is not None else None
        if not self.passwords.verify(stored, password):
            self.throttle.failed(keys)
            raise authentication_failed(BAD_LOGIN)
        self.throttle.succeeded(keys)
        user = user_from_row(row).ensure_active()
        if not user.email_verified:
            self.send_verification(user)
            raise authentication_failed("confirm your email address first: we have sent you a new link")
        if self.passwords.needs_rehash(stored):
            self._set_password_hash(user.id, self.passwords.hash(password))
        return user

    def create_session(self, email: str, password: str, client_ip: str, user_agent: str,
                       previous_token: str = "") -> tuple[Session, str, User]:
        """Logs in: a new session (the browser's previous one, if any, ends: no session fixation)."""
        user = self.login(email, password, client_ip)
        with writing(self.engine) as conn:
            session, token = self.sessions.create(conn, user.id, client_ip, user_agent)
            if previous_token:
                self.sessions.end_token(conn, previous_token)
        log.info("user %s logged in (session %s)", user.id, session.id)
        return session, token, user

    def change_password(self, session_token: str, current: str, new: str, client_ip: str,
                        user_agent: str) -> tuple[Session, str]:
        """Sets a new password; every session and refresh token of the user ends, and the caller gets a
        new session."""
        user, _ = self.sessions.authenticate(session_token)
        self.passwords.check_policy(new, "new_password")
        keys = self.throttle.keys(user.email, client_ip)
        self.throttle.check(keys)
        with reading(self.engine) as conn:
            stored = conn.execute(select(users.c.password_hash).where(users.c.id == user.id)).scalar()
        if not self.passwords.verify(stored, current):
            self.throttle.failed(keys)
            raise invalid("the current password is not right", "current_password")
        new_hash = self.passwords.hash(new)
        with writing(self.engine) as conn:
            conn.execute(update(users).where(users.c.id == user.id).values(password_hash=new_hash))
            Sessions.end_all(conn, user.id)
            session, token = self.sessions.create(conn, user.id, client_ip, user_agent)
        log.info("user %s changed their password; every other session ended", user.id)
        return session, token

    def _set_password_hash(self, user_id: str, password_hash: str) -> None:
        with writing(self.engine) as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
