"""Residents who report by QR code (扫码上报): phone numbers, one-time codes, ownership.

A resident is known only by their phone number, verified with a one-time code; the platform
keeps a keyed hash of the number (HMAC-SHA256) to recognise their reports, and the number
itself only with the report, where the office needs it to call back. Pure functions: the
secret, the time and the random source are arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from gis.errors import GisError

_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class PhoneError(GisError):
    """Not a mainland China mobile number."""


class CodeError(GisError):
    """A one-time code that is wrong, expired or tried too often."""


def normalise_phone(raw: str) -> str:
    """An 11-digit mainland mobile number from what a resident typed (+86, spaces, dashes)."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.match(digits):
        raise PhoneError(f"not a mainland mobile number: {raw!r}")
    return digits


def phone_key(phone: str, secret: str) -> str:
    """The keyed hash that identifies a resident without storing their number with it."""
    return hmac.new(secret.encode(), phone.encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    """138****1234: what is shown back."""
    return phone[:3] + "****" + phone[-4:]


@dataclass(frozen=True)
class CodePolicy:
    """How long a code lives, how many tries it gets, how many codes a number may ask for."""

    ttl: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    max_sends: int = 3
    send_window: timedelta = timedelta(minutes=10)


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


def code_hash(code: str, key: str) -> str:
    """Codes are stored hashed, bound to the number's key."""
    return hashlib.sha256(f"{key}:{code}".encode()).hexdigest()


def check_code(
    given: str,
    *,
    stored_hash: str,
    key: str,
    expires_at: datetime,
    attempts: int,
    now: datetime,
    policy: CodePolicy,
) -> None:
    """Raise CodeError unless ``given`` is the right, fresh code within the allowed tries."""
    if attempts >= policy.max_attempts:
        raise CodeError("too many wrong codes: ask for a new one")
    if now > expires_at:
        raise CodeError("the code has expired: ask for a new one")
    if not hmac.compare_digest(code_hash(given.strip(), key), stored_hash):
        raise CodeError("wrong code")
