"""Signed, expiring links to a conversation's printable summary.

A link names the conversation and when it expires, with an HMAC-SHA256 of both under the
API's link key (``MESO_LINK_SECRET``). It carries no secret: the conversation id opens
nothing by itself, and the link opens only the summary page, until it expires. Shape:
``<conversation id>.<expiry, Unix seconds>.<signature, base64url>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

SUMMARY_PATH = "/api/v1/summaries"
_PURPOSE = b"summary-page\x00"
_LINK = re.compile(r"^([A-Za-z0-9_-]{43,128})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")


def new_key() -> bytes:
    """A random key, for an API started without ``MESO_LINK_SECRET``."""
    return secrets.token_bytes(32)


def _signature(key: bytes, conversation_id: str, expires: int) -> str:
    mac = hmac.new(key, _PURPOSE + f"{conversation_id}.{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


class SummaryLinks:
    """Makes and checks summary links with one key and one lifetime."""

    def __init__(self, key: bytes, lifetime: timedelta) -> None:
        if len(key) < 16:
            raise ValueError("the link key is too short")
        self._key = key
        self.lifetime = lifetime

    def url(self, conversation_id: str, now: datetime) -> str:
        """The relative URL of the summary page, valid for ``lifetime`` from ``now``."""
        expires = int((now + self.lifetime).timestamp())
        signature = _signature(self._key, conversation_id, expires)
        return f"{SUMMARY_PATH}/{conversation_id}.{expires}.{signature}"

    def conversation(self, link: str, now: datetime) -> str | None:
        """The conversation id a link opens, or None when it is malformed, forged or expired."""
        match = _LINK.fullmatch(link)
        if match is None:
            return None
        conversation_id, expires, signature = match.group(1), int(match.group(2)), match.group(3)
        if not hmac.compare_digest(signature, _signature(self._key, conversation_id, expires)):
            return None
        if now.timestamp() >= expires:
            return None
        return conversation_id
