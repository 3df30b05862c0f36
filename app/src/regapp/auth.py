"""Users of the app: argon2id password hashes, lockout after repeated failures."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from regapp.db import Register

ROLES = ("clerk", "supervisor", "auditor")
MIN_PASSWORD = 12
# One answer for every refusal, so that it tells nobody which names exist.
REFUSED = (
    "wrong name or password, or the account is locked after repeated failures "
    "(it unlocks by itself; an administrator can unlock it at once: regapp user unlock)"
)
_hasher = PasswordHasher()
# Verified when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    name: str
    full_name: str
    role: str
    password_changed_at: dt.datetime


class LoginRefused(Exception):
    """Wrong name or password, or a locked account; the message is safe to show."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def login(
    db: Register, name: str, password: str, address: str | None, *, failures: int, lock_minutes: int
) -> User:
    """The user, or LoginRefused; failures are counted and audited even when refused."""
    refusal: str | None = None
    user: User | None = None
    with db.transaction() as cur:
        cur.execute("SELECT * FROM register.app_user WHERE name = %s FOR UPDATE", [name])
        row = cur.fetchone()
        if row is None or row["disabled"]:
            _verify(_DUMMY, password)
            cur.execute(
                "SELECT register.audit_login(%s, %s, 'login.refused', "
                "jsonb_build_object('reason', 'unknown or disabled'))",
                [name[:64], address],
            )
            refusal = REFUSED
        now = dt.datetime.now(dt.UTC)
        if refusal is not None or row is None:
            pass
        elif row["locked_until"] is not None and row["locked_until"] > now:
            cur.execute(
                "SELECT register.audit_login(%s, %s, 'login.refused', "
                "jsonb_build_object('reason', 'locked'))",
                [name, address],
            )
            refusal = REFUSED
        elif not _verify(row["password_hash"], password):
            count = row["failed_logins"] + 1
            locked = now + dt.timedelta(minutes=lock_minutes) if count >= failures else None
            cur.execute(
                "UPDATE register.app_user SET failed_logins = %s, locked_until = %s "
                "WHERE name = %s",
                [0 if locked else count, locked, name],
            )
            cur.execute(
                "SELECT register.audit_login(%s, %s, %s, jsonb_build_object('failures', %s::int))",
                [name, address, "login.locked" if locked else "login.refused", count],
            )
            refusal = REFUSED
        else:
            if _hasher.check_needs_rehash(row["password_hash"]):
                cur.execute(
                    "UPDATE register.app_user SET password_hash = %s WHERE name = %s",
                    [_hasher.hash(password), name],
                )
            cur.execute(
                "UPDATE register.app_user SET failed_logins = 0, locked_until = NULL "
                "WHERE name = %s",
                [name],
            )
            cur.execute(
                "SELECT register.audit_login(%s, %s, 'login', NULL)",
                [name, address],
            )
            user = User(row["name"], row["full_name"], row["role"], row["password_changed_at"])
    if user is None:
        raise LoginRefused(refusal or REFUSED)
    return user


def _verify(encoded: str, password: str) -> bool:
    try:
        return _hasher.verify(encoded, password)
    except (VerifyMismatchError, InvalidHashError, VerificationError):
        return False


# Accounts read in the last few seconds, per worker: a locked or changed account takes effect
# within CACHE_SECONDS, and a request costs one round trip to the register less.
CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, User | None, bool]] = {}


def current(db: Register, name: str, since: str) -> User | None:
    """The user of a session, if the account is still usable and its password unchanged."""
    now = time.monotonic()
    cached = _cache.get(name)
    if cached is None or now - cached[0] > CACHE_SECONDS:
        with db.transaction() as cur:
            cur.execute("SELECT * FROM register.app_user WHERE name = %s", [name])
            row = cur.fetchone()
        user = (
            None
            if row is None
            else User(row["name"], row["full_name"], row["role"], row["password_changed_at"])
        )
        cached = (now, user, bool(row is None or row["disabled"]))
        _cache[name] = cached
    _, user, disabled = cached
    if user is None or disabled or user.password_changed_at.isoformat() != since:
        return None
    return user
