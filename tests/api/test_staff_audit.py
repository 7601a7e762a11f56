"""The audit log: every login, account change and second-factor change is recorded (ids,
names of actions, never a password) with the client's address; admins read it newest first,
filtered and paged; no route edits or deletes it; its hash chain shows an entry altered,
deleted or inserted in the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pyotp
import pytest
from api_fakes import Harness, stored_time
from fastapi.routing import iter_route_contexts
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from staff_fakes import PASSWORD, StaffClient, new_client, post_login

from api.db import upgrade_on_connection
from api.main import create_app
from api.models import AuditEntry, utcnow
from api.staff.audit import GENESIS, ChainReport, audit, entry_hash, verify_chain

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
    h.execute("UPDATE staff_users SET totp_secret = ? WHERE id = ?", pyotp.random_base32(), target)
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


# --- the client's address and the hash chain -------------------------------------------------


async def verify(h: Harness, expect: tuple[int, str] | None = None) -> ChainReport:
    async with h.app.state.runtime.sessionmaker() as session:
        return await verify_chain(session, expect)


def tamper(h: Harness, sql: str, *params: Any) -> None:
    """Change the log behind the API's back, as someone with access to the database could."""
    h.execute("DROP INDEX IF EXISTS uq_audit_log_prev_hash")  # they could do that too
    h.execute(sql, *params)


async def test_an_entry_records_the_client_address(h: Harness) -> None:
    async with new_client(h, ip="198.51.100.7") as client:
        assert (await post_login(client, "ghost", WRONG_PASSWORD)).status_code == 401
    [failed] = entries(h, "login_failed")
    assert failed["client_address"] == "198.51.100.7"
    await add_entries(h, 1, "retention")  # not a request: no address
    assert entries(h, "retention")[0]["client_address"] is None


async def test_the_audit_page_shows_the_client_address(
    h: Harness, admin_client: StaffClient
) -> None:
    async with new_client(h, ip="198.51.100.23") as client:
        await post_login(client, "ghost", WRONG_PASSWORD)
    page = await admin_client.client.get("/staff/admin/audit?action=login_failed")
    assert page.status_code == 200
    assert ">From<" in page.text and "198.51.100.23" in page.text
    [viewed] = entries(h, "audit_log_viewed")
    assert viewed["client_address"] == "203.0.113.7"  # the admin's own client


async def test_entries_form_a_hash_chain(h: Harness) -> None:
    await add_entries(h, 5)
    rows = entries(h)
    assert rows[0]["prev_hash"] == GENESIS
    for before, entry in zip(rows, rows[1:], strict=False):
        assert entry["prev_hash"] == before["entry_hash"]
    assert len({r["entry_hash"] for r in rows}) == len(rows)
    assert all(len(r["entry_hash"]) == 64 for r in rows)
    report = await verify(h)
    assert report.intact and report.entries == len(rows) == 5
    assert (report.last_id, report.last_hash) == (rows[-1]["id"], rows[-1]["entry_hash"])


async def test_the_hash_is_sha256_of_the_canonical_entry(h: Harness) -> None:
    await add_entries(h, 1)
    [row] = entries(h)
    fields = {
        "v": 1,
        "at": stored_time(row["at"]).isoformat(timespec="microseconds"),
        "actor_id": None,
        "actor_name": "someone",
        "action": "conversation_viewed",
        "target_type": "conversation",
        "target_id": "c000",
        "client_address": None,
        "detail": {"n": 0},
        "prev_hash": GENESIS,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert row["entry_hash"] == hashlib.sha256(canonical.encode()).hexdigest()


async def test_concurrent_writers_keep_one_chain(h: Harness) -> None:
    async def one(n: int) -> None:
        async with h.app.state.runtime.sessionmaker() as session:
            audit(session, "writer", "concurrent", None, None, n=n)
            await asyncio.sleep(0)
            await session.commit()

    await asyncio.gather(*(one(n) for n in range(20)))
    assert len(entries(h, "concurrent")) == 20
    report = await verify(h)
    assert report.intact and report.entries == 20


class TestVerify:
    async def test_an_altered_entry_is_named(self, h: Harness) -> None:
        await add_entries(h, 4)
        third = entries(h)[2]["id"]
        tamper(h, "UPDATE audit_log SET detail = '{\"n\": 99}' WHERE id = ?", third)
        report = await verify(h)
        assert (report.bad_id, report.entries) == (third, 2)
        assert "altered" in report.problem

    async def test_a_deleted_entry_is_found_at_the_next(self, h: Harness) -> None:
        await add_entries(h, 4)
        ids = [r["id"] for r in entries(h)]
        tamper(h, "DELETE FROM audit_log WHERE id = ?", ids[1])
        report = await verify(h)
        assert report.bad_id == ids[2]
        assert f"does not follow entry {ids[0]}" in report.problem

    async def test_an_inserted_entry_is_named(self, h: Harness) -> None:
        await add_entries(h, 3)
        first, second, _ = entries(h)
        # A forged entry with a correct hash, slotted in between (a free id, before the 2nd).
        tamper(h, "UPDATE audit_log SET id = id + 100 WHERE id > ?", first["id"])
        forged = AuditEntry(
            at=utcnow(), actor_id=None, actor_name="someone", action="forged",
            target_type=None, target_id=None, client_address=None, detail={},
        )
        tamper(
            h,
            "INSERT INTO audit_log (id, at, actor_name, action, detail, prev_hash, entry_hash) "
            "VALUES (?, ?, 'someone', 'forged', '{}', ?, ?)",
            first["id"] + 1,
            forged.at,
            first["entry_hash"],
            entry_hash(forged, first["entry_hash"]),
        )
        report = await verify(h)
        assert report.bad_id == first["id"] + 1 and "inserted" in report.problem

    async def test_a_rewritten_chain_fails_against_a_noted_head(self, h: Harness) -> None:
        await add_entries(h, 3)
        noted = await verify(h)
        assert noted.last_id is not None and noted.last_hash is not None
        head = (noted.last_id, noted.last_hash)
        assert (await verify(h, head)).intact
        tamper(h, "DELETE FROM audit_log WHERE id = ?", noted.last_id)
        cut = await verify(h, head)
        assert cut.bad_id is None and not cut.intact and "missing" in cut.problem

    async def test_a_row_written_outside_the_api_has_no_hash(self, h: Harness) -> None:
        await add_entries(h, 1)
        tamper(h, "INSERT INTO audit_log (at, actor_name, action, detail) "
                  "VALUES ('2026-01-01 00:00:00.000000', 'x', 'y', '{}')")
        report = await verify(h)
        assert report.bad_id == entries(h)[-1]["id"] and "no hash" in report.problem


def test_the_upgrade_chains_the_entries_from_before(tmp_path: Path) -> None:
    """Entries made before revision 0008 are chained by it, in id order; new ones follow."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            upgrade_on_connection(connection, "0007")
            for n in range(3):
                connection.exec_driver_sql(
                    "INSERT INTO audit_log (at, actor_id, actor_name, action, target_type, "
                    "target_id, detail) VALUES (?, NULL, 'ana', 'login', 'staff_user', '1', ?)",
                    (f"2026-0{n + 1}-01 10:00:00.000000", json.dumps({"n": n})),
                )
        with engine.begin() as connection:
            upgrade_on_connection(connection, "head")
        with Session(engine) as session:
            audit(session, "ana", "logout", "staff_user", "1")  # type: ignore[arg-type]
            session.commit()
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
            assert [r.prev_hash for r in rows[1:]] == [r.entry_hash for r in rows[:-1]]
            assert rows[0].prev_hash == GENESIS
            for row in rows:
                assert entry_hash(row, row.prev_hash or "") == row.entry_hash
    finally:
        engine.dispose()
