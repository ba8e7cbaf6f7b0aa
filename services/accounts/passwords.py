"""Passwords: argon2id hashes (argon2-cffi), a length policy, and checks that take the same time whether
or not the account exists. Passwords are never logged or kept beyond the call that hashes them."""

from __future__ import annotations

import re
import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.accounts.config import AccountsSettings
from services.common.errors import invalid

# Longer passwords are refused before hashing: argon2 reads all of it, and nobody types more.
MAX_PASSWORD_LENGTH = 1024
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Passwords:
    def __init__(self, settings: AccountsSettings):
        self._hasher = PasswordHasher(time_cost=settings.password_hash_time_cost,
                                      memory_cost=settings.password_hash_memory_kib,
                                      parallelism=settings.password_hash_parallelism, type=Type.ID)
        self.min_length = settings.password_min_length
        self._slots = threading.BoundedSemaphore(settings.password_hash_concurrency)
        # Verified instead of a real hash when the email is unknown (or has no password), so that an
        # unknown email costs exactly what a wrong password does.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(24))

    def check_policy(self, password: str, param: str = "password") -> None:
        if len(password) < self.min_length:
            raise invalid(f"the password must have at least {self.min_length} characters", param)
        if len(password) > MAX_PASSWORD_LENGTH:
            raise invalid(f"the password must have at most {MAX_PASSWORD_LENGTH} characters", param)

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; a missing hash still runs one full verification (against the decoy)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            password = password[:MAX_PASSWORD_LENGTH]  # the same work as any other wrong password
        try:
            with self._slots:
                return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other costs than the configured ones (rehash at login)."""
        return self._hasher.check_needs_rehash(stored_hash)


def check_email(email: str) -> str:
    """The email, stripped; INVALID_REQUEST unless it looks like one (a mail is what verification sends)."""
    email = email.strip()
    if len(email) > 320 or not EMAIL.match(email) or not email.isprintable():
        raise invalid("enter a valid email address", "email")
    return email
