"""The bot's input channel the API talks to: its name, its path and what a call may carry.

``POST /webhooks/meso/webhook`` with ``{"sender", "message", "command", "message_id"}``
(``bot/channels/meso.py`` serves it, ``api/rasa_client.py`` calls it). The reply is
``{"messages": [...], "nlu": {...}}``; each message's ``custom`` follows ``contract.payloads``.
"""

from __future__ import annotations

NAME = "meso"
"""The channel's name: Rasa's ``input_channel`` on every user event it receives."""
WEBHOOK_PATH = f"/webhooks/{NAME}/webhook"
MAX_TEXT_CHARS = 5000
"""The longest message the channel takes (the API's own limit, MESO_MAX_TEXT_CHARS, is lower)."""
MAX_MESSAGE_ID_CHARS = 64
"""The longest turn name (``message_id``) the channel takes."""
