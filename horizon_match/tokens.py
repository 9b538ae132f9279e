"""Signed unsubscribe tokens: a member id plus an HMAC, so a link cannot be forged for others.

The token never expires (an unsubscribe link in a two-year-old email must still work) and is
URL- and subject-line-safe. Changing `Settings.secret` invalidates every token sent before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from horizon_match.errors import ConfigError, InputError

DEFAULT_SECRET = "change-me"
_PURPOSE = b"horizon-match unsubscribe v1\x00"
_MAC_BYTES = 16  # 128 bits is plenty for a token nobody can query at scale


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, member_id: str) -> bytes:
    if not secret:
        raise ConfigError("the secret is empty; set HORIZON_MATCH_SECRET to a long random string")
    digest = hmac.new(secret.encode(), _PURPOSE + member_id.encode(), hashlib.sha256).digest()
    return digest[:_MAC_BYTES]


def make_unsubscribe_token(secret: str, member_id: str) -> str:
    """`<base64url member id>.<base64url mac>`."""
    return f"{_b64(member_id.encode())}.{_b64(_mac(secret, member_id))}"


def read_unsubscribe_token(secret: str, token: str) -> str:
    """The member id a token was made for; InputError if it is malformed or not ours."""
    bad = InputError(
        f"{token.strip()[:80]!r} is not a valid unsubscribe token; copy the whole token from the "
        "email's unsubscribe link (the part after token=) or from its subject line"
    )
    parts = token.strip().split(".")
    if len(parts) != 2:
        raise bad
    try:
        member_id = _unb64(parts[0]).decode()
        mac = _unb64(parts[1])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    if not hmac.compare_digest(mac, _mac(secret, member_id)):
        raise bad
    return member_id
