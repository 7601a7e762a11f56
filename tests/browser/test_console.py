"""The staff console in a real browser against the real stack: log in, find the red flags first,
filter, read a transcript (untrusted text shown as text), tag, note, mark reviewed, export,
log out. The accounts are made with the command line, the conversations through the public
API with the real assistant. Screenshots and axe-core scans are saved for people to read."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Site, screenshot
from console_pages import StaffConsole, create_staff, new_conversation
from playwright.sync_api import Browser, Dialog, Page, expect
from test_widget_accessibility import scan

USERNAME = "browser-reviewer"
ADMIN = "browser-admin"
PASSWORD = "a long browser test password"
RED_FLAG_TEXT = "I have a fever and the treated area is hot and swollen"
MARKER = "zebra7341"
"""A word no other test sends, so a search finds only this file's conversation."""
IMG_TEXT = f"<img src=x onerror=alert(1)> {MARKER}"
TAG = "browser check"


@dataclass(frozen=True)
class Conversations:
    red_flag: str
    plain: str
    attack: str


@pytest.fixture(scope="module")
def conversations(site: Site) -> Conversations:
    """The red-flag conversation is the oldest: only its priority can put it first."""
    create_staff(site.services, USERNAME, "reviewer", PASSWORD)
    red_flag = new_conversation(site.api, RED_FLAG_TEXT)
    attack = new_conversation(site.api, IMG_TEXT)
    plain = new_conversation(site.api, "how much does it cost")
    return Conversations(red_flag=red_flag, plain=plain, attack=attack)


@pytest.fixture(scope="module")
def staff_cookies(browser: Browser, site: Site, conversations: Conversations) -> list[Any]:
    """One login shared by the tests (logins are rate-limited to a few a minute)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        console = StaffConsole(page, site.api)
        console.open_login()
        console.log_in(USERNAME, PASSWORD)
        expect(page.get_by_role("heading", name="Conversations", level=1)).to_be_visible()
        return list(context.cookies())
    finally:
        context.close()


@pytest.fixture
def console(page: Page, site: Site, staff_cookies: list[Any]) -> Iterator[StaffConsole]:
    """The inbox of the logged-in console; any alert, confirm or prompt the page opens is
    recorded (there must be none)."""
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.context.add_cookies(staff_cookies)
    console = StaffConsole(page, site.api)
    console.open_inbox()
    yield console
    assert dialogs == []


def test_login_refuses_a_wrong_password_then_lets_the_right_one_in(
    page: Page, site: Site, conversations: Conversations
) -> None:
    console = StaffConsole(page, site.api)
    page.goto(f"{site.api}/staff")
    expect(page).to_have_url(f"{site.api}/staff/login?next=%2Fstaff")
    screenshot(page, "console-login")

    console.log_in(USERNAME, "not the password at all")
    expect(console.login_error).to_contain_text("Wrong username or password.")

    console.log_in(USERNAME, PASSWORD)
    expect(page).to_have_url(f"{site.api}/staff")
    expect(page.get_by_role("heading", name="Conversations", level=1)).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "meso_staff")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/staff")


def test_a_new_admin_sets_up_two_step_login_before_anything_else(
    page: Page, site: Site, conversations: Conversations
) -> None:
    """The bootstrap: an admin made with the command line has no second factor yet; the
    password leads to setting one up, every other page leads back there, then on."""
    create_staff(site.services, ADMIN, "admin", PASSWORD)
    console = StaffConsole(page, site.api)
    console.open_login()
    console.log_in(ADMIN, PASSWORD)
    setup = page.get_by_role("heading", name="Set up two-step login", level=1)
    expect(setup).to_be_visible()
    page.goto(f"{site.api}/staff/admin/users")
    expect(setup).to_be_visible()
    screenshot(page, "console-totp-setup")
    scan(page, "console-totp-setup")

    console.set_up_two_step_login()
    expect(page).to_have_url(f"{site.api}/staff/admin/users")
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    expect(console.notice).to_contain_text("Two-step login is on")


def test_the_red_flag_comes_first_and_the_filters_find_it(
    console: StaffConsole, conversations: Conversations
) -> None:
    ids = console.row_ids()
    first_row = console.rows.first
    expect(first_row.locator(".red-flag")).to_be_visible()  # a flagged row heads the inbox
    assert ids.index(conversations.red_flag) < ids.index(conversations.plain)
    assert ids.index(conversations.red_flag) < ids.index(conversations.attack)
    level = console.row(conversations.red_flag).locator(".red-flag").inner_text().strip(" ⚠●")
    screenshot(console.page, "console-inbox")

    console.filter(red_flag=level)
    flagged = console.row_ids()
    assert conversations.red_flag in flagged and conversations.plain not in flagged
    expect(console.rows.locator(".red-flag")).to_have_count(len(flagged))

    console.filter(red_flag="Any", search=MARKER.upper())
    assert console.row_ids() == [conversations.attack]
    expect(console.page.get_by_role("status")).to_contain_text("1 conversation")


def test_a_transcript_shows_intents_and_sources_and_untrusted_text_as_text(
    console: StaffConsole, conversations: Conversations
) -> None:
    console.open_conversation(conversations.plain)
    patient = console.turns.filter(has_text="how much does it cost")
    expect(patient.locator("dt", has_text="Intent")).to_be_visible()
    expect(patient.locator("dd", has_text=re.compile(r"\(confidence \d\.\d\d\)"))).to_be_visible()
    answer = console.turns.filter(has=console.page.locator("dt", has_text="Knowledge entry"))
    expect(answer.first.locator("dt", has_text="Topic")).to_be_visible()
    expect(answer.first.locator("ul.sources li").first).to_be_visible()  # the knowledge's
    # sources have no web address yet: their titles are listed
    screenshot(console.page, "console-transcript")

    console.open_inbox()
    console.open_conversation(conversations.attack)
    expect(console.page.get_by_text(IMG_TEXT, exact=True)).to_be_visible()
    assert console.page.locator("main img").count() == 0


def test_tag_note_and_review_then_the_tag_filter_finds_it(
    console: StaffConsole, conversations: Conversations
) -> None:
    console.open_conversation(conversations.plain)

    console.add_tag("Browser Check")
    expect(console.notice).to_have_text("Tag added.")
    expect(console.page.locator(".tag-list .tag")).to_have_text([TAG])
    console.add_note("Checked in the browser test.")
    expect(console.notice).to_have_text("Note added.")
    expect(console.page.locator(".note__text")).to_have_text(["Checked in the browser test."])
    console.mark_reviewed()
    expect(console.notice).to_have_text("Marked as reviewed.")
    expect(console.page.get_by_role("button", name="Mark not reviewed")).to_be_visible()

    console.open_inbox()
    console.filter(tag=TAG)
    assert console.row_ids() == [conversations.plain]
    expect(console.row(conversations.plain)).to_contain_text("Yes")  # reviewed


def test_the_filtered_set_downloads_as_csv(
    console: StaffConsole, conversations: Conversations
) -> None:
    console.filter(search=MARKER)
    with console.page.expect_download() as started:
        console.page.get_by_role("button", name="Download CSV").click()
    download = started.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert "conversation_id" in header
    assert rows and {row[header.index("conversation_id")] for row in rows} == {
        conversations.attack
    }


def test_log_out_ends_the_session(page: Page, site: Site, conversations: Conversations) -> None:
    console = StaffConsole(page, site.api)  # its own session: the shared one must stay
    console.open_login()
    console.log_in(USERNAME, PASSWORD)
    expect(page.get_by_role("heading", name="Conversations", level=1)).to_be_visible()

    console.log_out()
    expect(page.get_by_role("heading", name="Log in to the staff console")).to_be_visible()
    page.goto(f"{site.api}/staff")
    expect(page).to_have_url(f"{site.api}/staff/login?next=%2Fstaff")


def test_axe_on_the_inbox_and_a_transcript(
    console: StaffConsole, conversations: Conversations
) -> None:
    scan(console.page, "console-inbox")
    console.open_conversation(conversations.red_flag)
    scan(console.page, "console-transcript")


def test_on_a_tablet_only_the_inbox_table_scrolls_sideways(
    console: StaffConsole, conversations: Conversations
) -> None:
    page = console.page
    page.set_viewport_size({"width": 820, "height": 1180})
    overflow = "document.documentElement.scrollWidth - window.innerWidth"

    console.open_inbox()
    assert page.evaluate(overflow) <= 0
    screenshot(page, "console-inbox-tablet")
    console.open_conversation(conversations.red_flag)
    assert page.evaluate(overflow) <= 0
    screenshot(page, "console-transcript-tablet")
