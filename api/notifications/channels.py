"""How a notice reaches staff: email over SMTP, a JSON POST to a webhook. What it says is
made here, once, for both: the kind, the level, the time and the staff console's link to
the conversation, never health or contact detail."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.message import EmailMessage

import httpx

from api.settings import Settings
from api.staff.inbox_query import level_label

SEND_TIMEOUT_S = 10.0
"""The longest one channel may take to take one notice."""

@dataclass(frozen=True)
class Notice:
    kind: str
    level: str | None
    at: datetime
    url: str
    """The conversation in the staff console."""

    @property
    def subject(self) -> str:
        level = (level_label(self.level) or "").lower()
        when = self.at.strftime("%d %b %H:%M UTC")
        if self.kind == "callback":
            return f"Callback requested ({when})"
        if self.kind == "reminder":
            return f"Not yet reviewed: {level} red flag ({when})"
        return f"Red flag, {level} ({when})"

    @property
    def text(self) -> str:
        what = {"callback": "A patient asked the clinic to contact them.",
                "reminder": "This red flag has not been marked reviewed yet.",
                "red_flag": "A patient's message was flagged."}[self.kind]
        return (f"{self.subject}\n\n{what}\nOpen the conversation in the staff console: "
                f"{self.url}\n\n(Details are in the console only, after signing in.)")

    def payload(self) -> dict[str, str | None]:
        return {"text": self.text, "kind": self.kind, "level": self.level,
                "at": self.at.isoformat(), "url": self.url}


class ChannelError(Exception):
    """A channel did not take a notice; the message names the kind of failure only."""


class Channel(ABC):
    name: str

    @abstractmethod
    async def send(self, notice: Notice) -> None:
        """Deliver ``notice`` or raise :class:`ChannelError`."""

    async def aclose(self) -> None:
        return None


_ONE_LINE_HEADERS = email_policy.SMTP.clone(max_line_length=200)
"""Headers kept on one line (a folded subject shows with a leading space in some clients)."""


class EmailChannel(Channel):
    """One email per notice to every address of ``MESO_NOTIFY_EMAIL_TO``."""

    name = "email"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, notice: Notice) -> None:
        message = EmailMessage(policy=_ONE_LINE_HEADERS)
        message["Subject"] = f"[Clinic assistant] {notice.subject}"
        message["From"] = self._settings.notify_email_from
        message["To"] = ", ".join(self._settings.notify_email_to)
        message.set_content(notice.text)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._deliver, message), SEND_TIMEOUT_S + 1)
        except (OSError, smtplib.SMTPException, TimeoutError) as error:
            raise ChannelError(type(error).__name__) from None

    def _deliver(self, message: EmailMessage) -> None:
        s = self._settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SEND_TIMEOUT_S) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            smtp.send_message(message)


class WebhookChannel(Channel):
    """A JSON POST of :meth:`Notice.payload` (its ``text`` is what a team chat shows)."""

    name = "webhook"

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = settings.notify_webhook_url
        self._secret = settings.notify_webhook_secret.get_secret_value().encode()
        self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT_S, transport=transport)

    async def send(self, notice: Notice) -> None:
        body = json.dumps(notice.payload()).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Meso-Signature"] = f"sha256={digest}"
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ChannelError(type(error).__name__) from None
        if not response.is_success:
            raise ChannelError(f"HTTP {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()


def channels(settings: Settings) -> list[Channel]:
    """The channels the settings configure (none: notices wait, shown in the console)."""
    configured: list[Channel] = []
    if settings.notify_email_to:
        configured.append(EmailChannel(settings))
    if settings.notify_webhook_url:
        configured.append(WebhookChannel(settings))
    return configured
