"""The bot's input channel the API talks to: its name, its path and what a call may carry.

``POST /webhooks/meso/webhook`` with ``{"sender", "message", "command", "message_id"}``
(``bot/channels/meso.py`` serves it, ``api/rasa_client.py`` calls it) and the header
``Authorization: Bearer <MESO_RASA_TOKEN>`` (a call without it is refused with 401). The reply is
``{"messages": [...], "nlu": {...}}``; each message's ``custom`` follows ``contract.payloads``.
"""

from __future__ import annotations

import hmac

NAME = "meso"
"""The channel's name: Rasa's ``input_channel`` on every user event it receives."""
WEBHOOK_PATH = f"/webhooks/{NAME}/webhook"
MAX_TEXT_CHARS = 5000
"""The longest message the channel takes (the API's own limit, MESO_MAX_TEXT_CHARS, is lower)."""
MAX_MESSAGE_ID_CHARS = 64
"""The longest turn name (``message_id``) the channel takes."""

AUTH_HEADER = "Authorization"
"""The header carrying the caller's token (Rasa's own ``MESO_RASA_TOKEN``)."""


def auth_value(token: str) -> str:
    """The value of :data:`AUTH_HEADER` for ``token``."""
    return f"Bearer {token}"


def authorised(header: str | None, token: str) -> bool:
    """True when ``header`` is :func:`auth_value` of ``token``, compared in constant time.

    An empty ``token`` (none configured) authorises nobody.
    """
    if not token or not header:
        return False
    return hmac.compare_digest(header.encode("utf-8"), auth_value(token).encode("utf-8"))
