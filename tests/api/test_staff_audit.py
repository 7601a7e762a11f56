"""The audit log: every login, account change and second-factor change is recorded (ids,
names of actions, never a password); admins read it newest first, filtered and paged; no
route edits or deletes it."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pyotp
import pytest
from api_fakes import Harness
from fastapi.routing import iter_route_contexts
from staff_fakes import PASSWORD, StaffClient, new_client, post_login

from api.main import create_app
from api.models import AuditEntry, utcnow
from api.staff.audit import audit

pytestmark = pytest.mark.anyio

WRONG_PASSWORD = "definitely-wrong-password"
NEW_PASSWORD = "another long passphrase"


def entries(h: Harness, action: str | None = None) -> list[Any]:
    if action is None:
        return h.rows("SELECT * FROM audit_log ORDER BY id")
    return h.rows("SELECT * FROM audit_log WHERE action = ? ORDER BY id", action)


async def test_logins_failures_and_logouts_are_recorded_without_passwords(
    h: Harness, admin_client: StaffClient
) -> None:
    async with new_client(h, ip="198.51.100.7") as client:
        assert (await post_login(client, "admin", WRONG_PASSWORD)).status_code == 401
        assert (await post_login(client, "ghost", WRONG_PASSWORD)).status_code == 401
    await admin_client.post("/staff/logout")

    [login] = entries(h, "login")  # admin_client's own
    assert (login["actor_name"], login["actor_id"]) == ("admin", admin_client.user_id)
    failed = entries(h, "login_failed")
    assert [(f["actor_name"], json.loads(f["detail"])) for f in failed] == [
        ("unknown", {"username": "admin"}),
        ("unknown", {"username": "ghost"}),
    ]
    assert failed[0]["target_id"] == str(admin_client.user_id) and failed[1]["target_id"] is None
    [logout] = entries(h, "logout")
    assert logout["actor_name"] == "admin"
    everything = str([tuple(r) for r in entries(h)])
    assert WRONG_PASSWORD not in everything and PASSWORD not in everything


async def test_every_account_change_is_recorded(
    h: Harness, admin_client: StaffClient, reviewer_client: StaffClient
) -> None:
    target = reviewer_client.user_id
    base = f"/staff/admin/users/{target}"
    steps = [
        (
            "/staff/admin/users",
            {
                "username": "cara",
                "role": "reviewer",
                "password": PASSWORD,
                "confirm_password": PASSWORD,
            },
        ),
        (f"{base}/role", {"role": "admin"}),
        (f"{base}/deactivate", {}),
        (f"{base}/reactivate", {}),
        (f"{base}/password", {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}),
    ]
    for url, data in steps:
        assert (await admin_client.post(url, data)).status_code == 303, url
    with sqlite3.connect(h.db_path) as db:
        db.execute(
            "UPDATE staff_users SET totp_secret = ? WHERE id = ?", (pyotp.random_base32(), target)
        )
    assert (await admin_client.post(f"{base}/totp-reset")).status_code == 303

    changes = [
        (r["action"], r["actor_name"], r["target_type"], r["target_id"], json.loads(r["detail"]))
        for r in entries(h)
        if r["action"] not in {"login"}
    ]
    [(_, _, _, cara_id, _)] = [c for c in changes if c[0] == "user_created"]
    user = str(target)
    assert changes == [
        ("user_created", "admin", "staff_user", cara_id, {"username": "cara", "role": "reviewer"}),
        ("user_role_changed", "admin", "staff_user", user, {"old": "reviewer", "new": "admin"}),
        ("user_deactivated", "admin", "staff_user", user, {}),
        ("user_reactivated", "admin", "staff_user", user, {}),
        ("user_password_set", "admin", "staff_user", user, {}),
        ("user_totp_reset", "admin", "staff_user", user, {}),
    ]
    assert NEW_PASSWORD not in str([tuple(r) for r in entries(h)])


async def test_own_password_and_second_step_changes_are_recorded(
    h: Harness, reviewer_client: StaffClient
) -> None:
    page = await reviewer_client.client.get("/staff/account/totp")
    secret = page.text.split('name="secret" value="')[1].split('"')[0]
    await reviewer_client.post(
        "/staff/account/totp", {"secret": secret, "code": pyotp.TOTP(secret).now()}
    )
    await reviewer_client.post("/staff/account/totp/disable", {"password": PASSWORD})
    await reviewer_client.post(
        "/staff/account/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    actions = [r["action"] for r in entries(h) if r["actor_name"] == "reviewer"]
    assert actions == ["login", "totp_enabled", "totp_disabled", "password_changed"]
    assert secret not in str([tuple(r) for r in entries(h)])


async def add_entries(h: Harness, count: int, action: str = "conversation_viewed") -> None:
    async with h.app.state.runtime.sessionmaker() as session:
        for n in range(count):
            entry = audit(session, "someone", action, "conversation", f"c{n:03d}", n=n)
            entry.at = utcnow()
        await session.commit()


class TestAuditPage:
    async def test_newest_first_with_paging(self, h: Harness, admin_client: StaffClient) -> None:
        await add_entries(h, 60)
        first = await admin_client.client.get("/staff/admin/audit")
        assert first.status_code == 200
        assert "read-only" in first.text
        assert first.text.index("c059") < first.text.index("c058")
        assert "c009" not in first.text  # 50 per page
        assert "Older entries" in first.text
        second = await admin_client.client.get("/staff/admin/audit?page=2")
        assert "c009" in second.text and "c059" not in second.text
        assert "Newer entries" in second.text

    async def test_filters_by_action_and_actor(self, h: Harness, admin_client: StaffClient) -> None:
        await add_entries(h, 2, "export_csv")
        await add_entries(h, 1, "tag_added")
        page = await admin_client.client.get("/staff/admin/audit?action=export_csv&actor=someone")
        rows = page.text.split("<tbody>")[1].split("</tbody>")[0]
        assert rows.count("<tr>") == 2 and "tag_added" not in rows
        nobody = await admin_client.client.get("/staff/admin/audit?actor=nobody")
        assert "No entries." in nobody.text
        [viewed] = entries(h, "audit_log_viewed")[:1]
        assert json.loads(viewed["detail"]) == {
            "page": 1,
            "action": "export_csv",
            "actor": "someone",
        }

    async def test_values_are_escaped(self, h: Harness, admin_client: StaffClient) -> None:
        await add_entries(h, 1, "<script>alert(1)</script>")
        page = await admin_client.client.get("/staff/admin/audit")
        assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text

    async def test_a_bad_page_number_shows_the_first_page(
        self, h: Harness, admin_client: StaffClient
    ) -> None:
        response = await admin_client.client.get("/staff/admin/audit?page=-3")
        assert response.status_code == 200


async def test_no_route_can_change_the_audit_log(admin_client: StaffClient) -> None:
    for context in iter_route_contexts(create_app().routes):
        path = context.path or ""
        if "audit" in path:
            assert set(context.methods or ()) <= {"GET", "HEAD"}, path
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await admin_client.client.request(
            method, "/staff/admin/audit", data={"csrf_token": admin_client.csrf}
        )
        assert response.status_code == 405, method


def test_audit_records_the_system_when_there_is_no_actor() -> None:
    class Sink:
        added: list[AuditEntry] = []

        def add(self, entry: AuditEntry) -> None:
            self.added.append(entry)

    sink = Sink()
    entry = audit(sink, None, "retention", None, None, deleted=3)  # type: ignore[arg-type]
    assert (entry.actor_id, entry.actor_name, entry.detail) == (None, "system", {"deleted": 3})
    assert sink.added == [entry]
