"""Staff notifications on the real stack: a patient's red flag, as the real bot detects it,
reaches a local SMTP server and a local webhook receiver within seconds, carrying the level,
the time and the console link, and none of what the patient wrote. The session's API is restarted with the notification settings for this module, and
restarted as it was afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from notify_receivers import Hook, MailServer, mail_server, webhook_receiver

from api.patient_auth import PatientKeys
from ops.services import Services

PUBLIC = "https://assistant.clinic.test"
WORDS = "my throat is closing up and I cant breathe after the injections"


@pytest.fixture(scope="module")
def receivers(services: Services) -> Iterator[tuple[MailServer, Hook]]:
    with mail_server() as smtp, webhook_receiver() as hook:
        index = services.index_of("api")
        kept = dict(services.env)
        services.stop_one(index)
        services.env.update(
            MESO_NOTIFY_EMAIL_TO="staff@clinic.test", MESO_NOTIFY_EMAIL_FROM="assistant@clinic.test",
            MESO_SMTP_HOST="127.0.0.1", MESO_SMTP_PORT=str(smtp.port), MESO_SMTP_STARTTLS="false",
            MESO_NOTIFY_WEBHOOK_URL=hook.url, MESO_PUBLIC_URL=PUBLIC,
        )
        services.start_one(index)
        try:
            yield smtp, hook
        finally:
            services.stop_one(index)
            services.env.clear()
            services.env.update(kept)
            services.start_one(index)


def _wait_for(what: str, check: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} within {seconds:g} s"
        time.sleep(0.1)


def test_a_red_flag_the_bot_detects_reaches_staff_by_email_and_webhook(
    receivers: tuple[MailServer, Hook], stack: dict[str, str],
) -> None:
    smtp, hook = receivers
    with httpx.Client(base_url=stack["MESO_API_URL"], timeout=30, auth=PatientKeys()) as client:
        opened = client.post("/api/v1/conversations", json={"consent": True})
        conversation_id = opened.json()["conversation_id"]
        started = time.monotonic()
        reply = client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": WORDS})
    assert reply.status_code == 200 and reply.json()["messages"][0]["red_flag"] == "emergency"
    # The session's stack has run other tests: their notices, waiting until now (no channel
    # was set), go out too. This conversation's are the ones with its link.
    link = f"{PUBLIC}/staff/conversations/{conversation_id}"
    mails = lambda: [m for m in smtp.inbox.mails if link in m.get_content()]  # noqa: E731
    posts = lambda: [b for _, b in hook.posts if json.loads(b)["url"] == link]  # noqa: E731
    _wait_for("email", mails)
    _wait_for("webhook POST", posts)
    seconds = time.monotonic() - started
    [mail], [body] = mails(), posts()
    assert mail["Subject"].startswith("[Clinic assistant] Red flag, emergency (")
    assert link in mail.get_content() and json.loads(body)["url"] == link
    assert json.loads(body)["level"] == "emergency"
    for text in (mail.get_content(), body.decode()):
        assert "throat" not in text and "breathe" not in text
    print(f"[red flag to staff: {seconds:.1f} s]", end=" ")
    assert seconds < 10
