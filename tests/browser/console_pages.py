"""Page objects for the staff console: what a member of staff does, in the console's words.

Also the set-up a console test needs on the real stack: staff accounts made with the
command line (``python -m api.cli create-user``) and conversations made through the public API.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import httpx
import pyotp
from playwright.sync_api import Locator, Page, expect

from api.patient_auth import PatientKeys
from ops.services import API_VENV, ROOT, Services

REPLY_TIMEOUT_S = 60.0


def create_staff(services: Services, username: str, role: str, password: str) -> None:
    """Make an account in the stack's database with the CLI, as an operator would."""
    result = subprocess.run(
        [str(API_VENV / "bin" / "python"), "-m", "api.cli", "create-user",
         "--username", username, "--role", role, "--password-stdin"],
        input=password + "\n",
        env=services.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def new_conversation(api: str, *texts: str) -> str:
    """Start a conversation with transcript consent, say ``texts`` in turn; return its id."""
    with httpx.Client(
        base_url=api, timeout=REPLY_TIMEOUT_S, trust_env=False, auth=PatientKeys()
    ) as client:
        response = client.post("/api/v1/conversations", json={"consent": True})
        assert response.status_code == 201, response.text
        conversation_id = str(response.json()["conversation_id"])
        for text in texts:
            sent = client.post(
                f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}
            )
            assert sent.status_code == 200, sent.text
    return conversation_id


@dataclass
class StaffConsole:
    page: Page
    base: str
    """The API's origin (the console is at ``/staff``)."""

    # --- logging in and out ----------------------------------------------------------------
    def open_login(self) -> None:
        self.page.goto(f"{self.base}/staff/login")

    def log_in(self, username: str, password: str) -> None:
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()

    @property
    def login_error(self) -> Locator:
        return self.page.get_by_role("alert")

    def set_up_two_step_login(self) -> str:
        """On the set-up page (where an admin without a second factor is taken): type the
        shown key into an "authenticator app" and its code into the form; return the key."""
        key = self.page.locator("#totp-key").inner_text().replace(" ", "")
        self.page.get_by_label("6-digit code").fill(pyotp.TOTP(key).now())
        self.page.get_by_role("button", name="Turn on two-step login").click()
        return key

    def log_out(self) -> None:
        self.page.get_by_role("button", name="Log out").click()

    # --- the inbox -------------------------------------------------------------------------
    def open_inbox(self, query: str = "") -> None:
        self.page.goto(f"{self.base}/staff{query}")
        expect(self.page.get_by_role("heading", name="Conversations", level=1)).to_be_visible()

    @property
    def rows(self) -> Locator:
        return self.page.locator("table.inbox tbody tr")

    def row_ids(self) -> list[str]:
        """The conversation ids of the inbox rows, in order (from their links)."""
        hrefs = self.rows.locator('th[scope="row"] a').evaluate_all(
            "(links) => links.map((a) => a.getAttribute('href'))"
        )
        return [href.rsplit("/", 1)[-1] for href in hrefs]

    def row(self, conversation_id: str) -> Locator:
        href = f"/staff/conversations/{conversation_id}"
        link = self.page.locator(f'th[scope="row"] a[href="{href}"]')
        return self.rows.filter(has=link)

    def filter(self, *, search: str | None = None, red_flag: str | None = None,
               tag: str | None = None) -> None:
        """Set the given filters (red flag and tag by their label in the list) and apply them."""
        if search is not None:
            self.page.get_by_label("Search messages").fill(search)
        if red_flag is not None:
            self.page.get_by_label("Red flag").select_option(label=red_flag)
        if tag is not None:
            self.page.get_by_label("Tag", exact=True).select_option(label=tag)
        self.page.get_by_role("button", name="Apply filters").click()
        expect(self.page.get_by_role("heading", name="Conversations", level=1)).to_be_visible()

    # --- a transcript ----------------------------------------------------------------------
    def open_conversation(self, conversation_id: str) -> None:
        self.page.locator(f'a[href="/staff/conversations/{conversation_id}"]').click()
        expect(self.page.get_by_role("heading", name="Transcript")).to_be_visible()

    @property
    def turns(self) -> Locator:
        return self.page.locator("ol.turns > li")

    @property
    def notice(self) -> Locator:
        return self.page.locator(".flash")

    def add_tag(self, tag: str) -> None:
        self.page.get_by_label("New tag").fill(tag)
        self.page.get_by_role("button", name="Add tag").click()

    def add_note(self, text: str) -> None:
        self.page.get_by_label("New note").fill(text)
        self.page.get_by_role("button", name="Add note").click()

    def mark_reviewed(self) -> None:
        self.page.get_by_role("button", name="Mark reviewed").click()
