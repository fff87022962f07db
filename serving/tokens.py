"""Event ids over HTTP: the store's int64 id with an HMAC tag, so an id the service did not issue is refused.

The store numbers decisions with an int64 sequence (the ``event_id`` of the
slatewise log format). Over HTTP an ``event_id`` is a 32-character token,
base64url of the 8-byte big-endian id followed by the first 16 bytes (128 bits)
of HMAC-SHA256 of those 8 bytes under the store's secret key (created with the
store, in its meta). :meth:`EventTokens.verify` recomputes the tag: a token the
service did not issue fails there, without a database read; guessing a valid
tag takes 2^128 tries on average.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

TAG_BYTES = 16
TOKEN_CHARS = 32  # base64url of 8 + 16 bytes, no padding


def new_key() -> str:
    """A fresh secret key (64 hex digits, 256 bits)."""
    return secrets.token_hex(32)


class EventTokens:
    """Issue and verify event tokens under one secret key.

    Args:
        key: the store's secret (hex), from :attr:`serving.store.StoreMeta.event_key`.
    """

    def __init__(self, key: str) -> None:
        self._key = bytes.fromhex(key)

    def _tag(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).digest()[:TAG_BYTES]

    def issue(self, event_id: int) -> str:
        """The token of ``event_id`` (a positive int64)."""
        raw = event_id.to_bytes(8, "big")
        return base64.urlsafe_b64encode(raw + self._tag(raw)).decode("ascii")

    def verify(self, token: str) -> int | None:
        """The ``event_id`` a token carries, or None when this service did not issue it."""
        if len(token) != TOKEN_CHARS or not token.isascii():
            return None
        try:
            data = base64.urlsafe_b64decode(token)
        except (binascii.Error, ValueError):
            return None
        raw, tag = data[:8], data[8:]
        if not hmac.compare_digest(tag, self._tag(raw)):
            return None
        return int.from_bytes(raw, "big")
