"""API tokens of the gateway: their text form, and checking one in constant time.

A token reads `kpt_<token id>_<secret>`: the id is public (it names the
token in `klimapuls tokens list` and in logs), the secret is 256 random
bits, stored only as its SHA-256 digest. A slow password hash is not needed:
the secret is random, not chosen by a person, so it cannot be guessed from
its digest. Digests are compared with `hmac.compare_digest`, so the time a
check takes says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

__all__ = [
    "TOKEN_PREFIX",
    "PresentedToken",
    "format_token",
    "parse_token",
    "secret_digest",
    "secret_matches",
]

TOKEN_PREFIX = "kpt_"  # noqa: S105 - a prefix, not a secret
_TOKEN = re.compile(r"^kpt_([0-9a-f]{12})_([A-Za-z0-9_-]{32,128})$")


@dataclass(frozen=True)
class PresentedToken:
    """A token as a client sent it, split into its id and secret."""

    token_id: str
    secret: str


def format_token(token_id: str, secret: str) -> str:
    """The text form of a token, shown once when it is created."""
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(text: str) -> PresentedToken | None:
    """Split a presented token; None when it is not of the token form."""
    match = _TOKEN.match(text.strip())
    if match is None:
        return None
    return PresentedToken(match.group(1), match.group(2))


def secret_digest(secret: str) -> str:
    """The stored form of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    """Whether `secret` is the one `stored_digest` was made from (constant time)."""
    return hmac.compare_digest(secret_digest(secret), stored_digest)
