"""A page object for the chat widget: what a patient does, in the widget's own words.

Playwright's CSS and role locators pierce open shadow roots, so these reach inside the widget.
"""

from __future__ import annotations

import json

import re
from typing import Any

from playwright.sync_api import Locator, Page, expect

REPLY_TIMEOUT_MS = 30_000


class ChatWidget:
    def __init__(self, page: Page) -> None:
        self.page = page

    # --- parts -------------------------------------------------------------------------
    @property
    def launcher(self) -> Locator:
        return self.page.get_by_role("button", name="Open chat")

    @property
    def panel(self) -> Locator:
        return self.page.get_by_role("dialog")

    @property
    def log(self) -> Locator:
        return self.page.get_by_role("log", name="Conversation")

    @property
    def input(self) -> Locator:
        """The message box (by element, so it works in every interface language)."""
        return self.page.locator("#meso-chat .composer textarea")

    @property
    def send_button(self) -> Locator:
        return self.page.locator("#meso-chat .composer button.send")

    @property
    def assistant_messages(self) -> Locator:
        return self.page.locator("#meso-chat .msg-assistant")

    @property
    def patient_messages(self) -> Locator:
        return self.page.locator("#meso-chat .msg-patient")

    @property
    def quick_replies(self) -> Locator:
        return self.page.locator("#meso-chat .quick-replies button:enabled")

    @property
    def typing(self) -> Locator:
        return self.page.locator("#meso-chat .typing")

    @property
    def offline_banner(self) -> Locator:
        return self.page.locator("#meso-chat .banner-offline")

    # --- actions -----------------------------------------------------------------------
    def open(self) -> None:
        self.launcher.click()
        expect(self.panel).to_be_visible()

    def start(self, *, consent: bool = True) -> None:
        """Open the widget if needed, choose on the privacy notice, wait for the opening."""
        if not self.panel.is_visible():
            self.open()
        self.panel.locator(".consent-yes" if consent else ".consent-no").click()
        expect(self.assistant_messages.first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        expect(self.input).to_be_enabled()

    def ask(self, text: str) -> Locator:
        """Type and send a question; return the first assistant message of the reply."""
        before = self.assistant_messages.count()
        self.input.fill(text)
        self.send_button.click()
        return self.wait_for_reply(before)

    def wait_for_reply(self, before: int) -> Locator:
        expect(self.assistant_messages).not_to_have_count(before, timeout=REPLY_TIMEOUT_MS)
        expect(self.typing).to_have_count(0, timeout=REPLY_TIMEOUT_MS)
        return self.assistant_messages.nth(before)

    def press_quick_reply(self, title: str | re.Pattern[str]) -> Locator:
        before = self.assistant_messages.count()
        self.page.locator("#meso-chat .quick-replies").get_by_role("button", name=title).last.click()
        return self.wait_for_reply(before)

    # --- state -------------------------------------------------------------------------
    def storage(self) -> dict[str, Any]:
        """Everything the page keeps in session and local storage."""
        return self.page.evaluate(
            "() => ({session: {...sessionStorage}, local: {...localStorage}})"
        )

    def stored(self) -> dict[str, Any]:
        """What the widget keeps in session storage: the conversation's id, token, consent."""
        values = list(self.storage()["session"].values())
        assert len(values) == 1, values
        kept = json.loads(values[0])
        assert set(kept) == {"id", "token", "consent"}, kept
        return dict(kept)

    def conversation_id(self) -> str:
        return str(self.stored()["id"])

    def token(self) -> str:
        return str(self.stored()["token"])
