"""Staff notifications (``api.notifications``) against a real local SMTP server (aiosmtpd)
and a real local webhook receiver: a red flag and a callback request reach staff at once by
both, with no health or contact detail; a channel that fails is retried (without sending
again by the one that worked), shown in the console, and given up after its last try; a
same-day-or-worse flag nobody reviewed is notified again, once; each notice goes out once
however many workers dispatch."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from api_fakes import CALLBACK_REQUEST, Harness, messages_url
from notify_receivers import Hook, Inbox, MailServer, mail_server, webhook_receiver
from pydantic import ValidationError
from staff_fakes import logged_in

from api.models import utcnow
from api.notifications import dispatch, outbox
from api.notifications.channels import channels
from api.notifications.dispatch import MAX_ATTEMPTS, Dispatcher
from api.settings import Settings

pytestmark = pytest.mark.anyio

CONSOLE = "https://assistant.clinic.test"
SECRET = "w" * 32
WORDS = "my lips are swelling and i cant breathe"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, MailServer]]:
    with mail_server() as server:
        yield server.inbox, server


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    with webhook_receiver() as received:
        yield received, received.url


@pytest.fixture
def notifying(
    start: Callable[..., Any], smtp: tuple[Inbox, MailServer], hook: tuple[Hook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Any]:
    """``async with notifying(**settings) as h``: the app with both channels set."""
    monkeypatch.setattr(dispatch, "EVERY_S", 0.05)

    def _start(**overrides: Any) -> Any:
        values = {"notify_email_to": ["staff@clinic.test", "lead@clinic.test"],
                  "notify_email_from": "assistant@clinic.test",
                  "smtp_host": "127.0.0.1", "smtp_port": smtp[1].port, "smtp_starttls": False,
                  "notify_webhook_url": hook[1], "notify_webhook_secret": SECRET,
                  "public_url": CONSOLE, **overrides}
        return start(**values)

    return _start


def replying(*custom: dict[str, Any]) -> Callable[[str, str, bool], dict[str, Any]]:
    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": [{"text": "Noted.", "custom": c} for c in custom] or [{"text": "Noted."}]}
    return reply


async def say(h: Harness, conversation_id: str, text: str = WORDS) -> None:
    response = await h.client.post(messages_url(conversation_id), json={"text": text})
    assert response.status_code == 200, response.text


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def notices(h: Harness) -> list[Any]:
    return h.rows("SELECT * FROM staff_notifications ORDER BY id")


async def test_a_red_flag_reaches_staff_at_once_by_email_and_webhook_with_no_detail(
    notifying: Callable[..., Any], smtp: tuple[Inbox, MailServer], hook: tuple[Hook, str],
) -> None:
    inbox, received = smtp[0], hook[0]
    async with notifying() as h:
        conversation_id = await h.new_conversation()
        h.rasa.reply = replying({"red_flag": {"level": "emergency", "flags": ["breathing"]}},
                                {"callback": CALLBACK_REQUEST})
        await say(h, conversation_id)
        await until(lambda: len(inbox.mails) == 2 and len(received.posts) == 2)
        await until(lambda: [r["status"] for r in notices(h)] == ["sent", "sent"])  # recorded
        rows = notices(h)
    link = f"{CONSOLE}/staff/conversations/{conversation_id}"
    [flag_mail, callback_mail] = sorted(inbox.mails, key=lambda m: "Callback" in m["Subject"])
    assert flag_mail["Subject"].startswith("[Clinic assistant] Red flag, emergency (")
    assert callback_mail["Subject"].startswith("[Clinic assistant] Callback requested (")
    assert flag_mail["To"] == "staff@clinic.test, lead@clinic.test"
    bodies = [m.get_content() for m in inbox.mails] + [body.decode() for _, body in received.posts]
    assert all(link in body for body in bodies)
    for secret in (WORDS, "breathing", CALLBACK_REQUEST["name"], CALLBACK_REQUEST["phone"], "swelling"):
        assert not any(secret in body for body in bodies), secret
    headers, body = received.posts[0]
    assert headers["x-meso-signature"] == "sha256=" + hmac.new(
        SECRET.encode(), body, hashlib.sha256).hexdigest()
    payloads = sorted((json.loads(b) for _, b in received.posts), key=lambda p: p["kind"])
    assert [(p["kind"], p["level"], p["url"]) for p in payloads] == [
        ("callback", None, link), ("red_flag", "emergency", link)]
    assert [(r["kind"], r["status"], r["attempts"], sorted(r["delivered"] if isinstance(
        r["delivered"], list) else json.loads(r["delivered"]))) for r in rows] == [
        ("red_flag", "sent", 1, ["email", "webhook"]), ("callback", "sent", 1, ["email", "webhook"])]


async def test_only_a_rising_flag_is_news_and_consent_decides_what_is_told(
    notifying: Callable[..., Any],
) -> None:
    """The same level again is not notified, a more severe one is; a red flag without
    transcript consent is not stored, so not notified; a callback request always is."""
    async with notifying() as h:
        consented, unconsented = await h.new_conversation(), await h.new_conversation(consent=False)
        for level in ("same_day", "same_day", "prompt", "emergency"):
            h.rasa.reply = replying({"red_flag": {"level": level}})
            await say(h, consented)
        h.rasa.reply = replying({"red_flag": {"level": "crisis"}})
        await say(h, unconsented)
        h.rasa.reply = replying({"callback": CALLBACK_REQUEST})
        await say(h, unconsented, "please call me")
        told = [(r["conversation_id"], r["kind"], r["level"]) for r in notices(h)]
    assert told == [(consented, "red_flag", "same_day"), (consented, "red_flag", "emergency"),
                    (unconsented, "callback", None)]


async def test_a_failing_channel_is_retried_shown_to_staff_and_given_up_after_its_last_try(
    notifying: Callable[..., Any], smtp: tuple[Inbox, MailServer], hook: tuple[Hook, str],
) -> None:
    inbox, (controller, received) = smtp[0], (smtp[1], hook[0])
    controller.stop()  # the mail server is down
    async with notifying() as h:
        conversation_id = await h.new_conversation()
        h.rasa.reply = replying({"red_flag": {"level": "same_day"}})
        await say(h, conversation_id)
        await until(lambda: bool(notices(h)) and notices(h)[0]["attempts"] == 1)
        [row] = notices(h)
        assert (row["status"], row["last_error"]) == ("pending", "email: ConnectionRefusedError")
        assert len(received.posts) == 1  # the webhook took it
        async with logged_in(h, "ana") as staff:
            page = await staff.client.get("/staff/notifications")
            assert "1 notice has not got through yet" in page.text
            assert "Not yet: retrying" in page.text and "email: ConnectionRefusedError" in page.text
            assert "did not get through" in (await staff.client.get("/staff")).text

        controller.start()  # back; the retry's wait over
        h.execute("UPDATE staff_notifications SET next_attempt_at = ?", utcnow())
        await until(lambda: notices(h)[0]["status"] == "sent")
        assert len(inbox.mails) == 1 and len(received.posts) == 1  # the webhook not sent again

        received.status = 500  # now the webhook fails, to its last try
        h.rasa.reply = replying({"red_flag": {"level": "emergency"}})
        await say(h, conversation_id)
        await until(lambda: len(notices(h)) == 2 and notices(h)[1]["attempts"] == 1)
        h.execute("UPDATE staff_notifications SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                  MAX_ATTEMPTS - 1, utcnow(), notices(h)[1]["id"])
        await until(lambda: notices(h)[1]["status"] == "failed")
        assert notices(h)[1]["last_error"] == "webhook: HTTP 500"
        async with logged_in(h, "ben") as staff:
            assert "No: given up" in (await staff.client.get("/staff/notifications")).text


async def test_a_serious_flag_nobody_reviewed_is_notified_again_once(
    notifying: Callable[..., Any], smtp: tuple[Inbox, MailServer],
) -> None:
    inbox = smtp[0]
    async with notifying(notify_remind_minutes=30) as h:
        waiting, reviewed, mild = [await h.new_conversation() for _ in range(3)]
        for conversation_id, level in ((waiting, "same_day"), (reviewed, "emergency"), (mild, "prompt")):
            h.rasa.reply = replying({"red_flag": {"level": level}})
            await say(h, conversation_id)
        await until(lambda: len(inbox.mails) == 3)
        await asyncio.sleep(0.3)
        assert len(inbox.mails) == 3  # not yet 30 minutes
        back = utcnow() - timedelta(minutes=31)
        h.execute("UPDATE conversations SET red_flag_at = ?", back)
        h.execute("UPDATE conversations SET reviewed_at = ? WHERE id = ?", utcnow(), reviewed)
        await until(lambda: len(inbox.mails) == 4)
        await asyncio.sleep(0.3)  # and only once
        reminders = [r for r in notices(h) if r["kind"] == "reminder"]
    assert [(r["conversation_id"], r["level"]) for r in reminders] == [(waiting, "same_day")]
    assert inbox.mails[-1]["Subject"].startswith("[Clinic assistant] Not yet reviewed: same day red flag")


async def test_each_notice_goes_out_once_however_many_workers_dispatch(
    h: Harness, make_settings: Callable[..., Settings], smtp: tuple[Inbox, MailServer],
) -> None:
    """Three dispatchers (as in three API workers) on one database, racing."""
    inbox = smtp[0]
    opened = [await h.new_conversation() for _ in range(5)]
    h.rasa.reply = replying({"callback": CALLBACK_REQUEST})
    for conversation_id in opened:
        await say(h, conversation_id, "call me")
    settings = make_settings(notify_email_to=["staff@clinic.test"], notify_email_from="a@clinic.test",
                             smtp_host="127.0.0.1", smtp_port=smtp[1].port, smtp_starttls=False)
    runtime = h.app.state.runtime
    dispatchers = [Dispatcher(runtime.sessionmaker, channels(settings), console_url=CONSOLE,
                              remind_after=None, across_workers=True) for _ in range(3)]
    taken = await asyncio.gather(*(d.run_once() for d in dispatchers))
    assert sum(taken) == 5 and len(inbox.mails) == 5
    assert {r["status"] for r in notices(h)} == {"sent"}


async def test_a_notice_read_by_two_dispatchers_is_taken_by_one(h: Harness) -> None:
    """Both read the same due notices; the one that updates first gets them."""
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"callback": CALLBACK_REQUEST}, {"red_flag": {"level": "prompt"}})
    await say(h, conversation_id)
    maker, now = h.app.state.runtime.sessionmaker, utcnow()
    async with maker() as first, maker() as second:
        read_by_first = await outbox.due(first, now)
        read_by_second = await outbox.due(second, now)
        assert len(read_by_first) == 2 and read_by_second == read_by_first
        assert await outbox.take(second, read_by_second, now, dispatch.LEASE) == read_by_second
        assert await outbox.take(first, read_by_first, now, dispatch.LEASE) == []


async def test_without_a_channel_nothing_is_sent_and_the_console_says_so(
    h: Harness, admin_client: Any,
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"red_flag": {"level": "crisis"}})
    await say(h, conversation_id)
    [row] = notices(h)
    assert (row["kind"], row["status"], row["attempts"]) == ("red_flag", "pending", 0)
    page = await admin_client.client.get("/staff/notifications")
    assert "No channel is set" in page.text and "Waiting" in page.text


def test_email_needs_a_server_and_a_sender() -> None:
    with pytest.raises(ValidationError, match="MESO_NOTIFY_EMAIL_TO needs MESO_SMTP_HOST"):
        Settings(notify_email_to="staff@clinic.test")
    with pytest.raises(ValidationError, match="must be an http"):
        Settings(notify_webhook_url="ftp://hooks.example")


async def test_the_dispatcher_stops_with_the_app(notifying: Callable[..., Any]) -> None:
    async with notifying():
        assert "notify" in {task.get_name() for task in asyncio.all_tasks()}
    assert "notify" not in {task.get_name() for task in asyncio.all_tasks()}
