"""Logging in and out of the staff console: passwords, the login form's own CSRF token,
rate limits, session cookies, idle expiry and the optional TOTP second step."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from api_fakes import Harness
from argon2 import PasswordHasher
from staff_fakes import (
    PASSWORD,
    StaffClient,
    csrf_in,
    make_staff,
    new_client,
    post_login,
    sql_time,
)

from api.models import StaffUser, utcnow
from api.staff.passwords import verify_password

pytestmark = pytest.mark.anyio

WRONG = "Wrong username or password."


async def add_user(h: Harness, username: str = "ana", role: str = "reviewer", **kw: Any) -> int:
    async with h.app.state.runtime.sessionmaker() as session:
        return (await make_staff(session, username, role, **kw)).id


def with_sqlite(h: Harness, sql: str, *params: Any) -> None:
    connection = sqlite3.connect(h.db_path)
    try:
        connection.execute(sql, params)
        connection.commit()
    finally:
        connection.close()


def reviewer_secret(h: Harness) -> str | None:
    [row] = h.rows("SELECT totp_secret FROM staff_users WHERE username = 'reviewer'")
    return row["totp_secret"]  # type: ignore[no-any-return]


def session_rows(h: Harness) -> list[Any]:
    return h.rows("SELECT * FROM staff_sessions")


async def test_login_sets_a_strict_http_only_secure_cookie_holding_only_a_hash(
    start: Callable[..., Any],
) -> None:
    async with start(staff_cookie_secure=True) as h:
        await add_user(h)
        async with new_client(h, base_url="https://testserver") as client:
            response = await post_login(client, "ana", PASSWORD)

        assert response.status_code == 303
        assert response.headers["location"] == "/staff"
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("meso_staff=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/staff"} <= flags
        token = cookie.split(";")[0].split("=", 1)[1]
        assert len(token) >= 43
        [row] = session_rows(h)
        assert row["id"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in str(dict(row))
        [user] = h.rows("SELECT last_login_at FROM staff_users")
        assert user["last_login_at"] is not None


async def test_the_username_is_not_case_sensitive_and_next_is_followed(h: Harness) -> None:
    await add_user(h)
    async with new_client(h) as client:
        response = await post_login(client, "  ANA ", PASSWORD, next_url="/staff/account")
        assert response.headers["location"] == "/staff/account"


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/staff", "/staffing", "/\\evil.example"]
)
async def test_next_never_leads_off_the_console(h: Harness, next_url: str) -> None:
    await add_user(h)
    async with new_client(h) as client:
        response = await post_login(client, "ana", PASSWORD, next_url=next_url)
        assert response.headers["location"] == "/staff"


@pytest.mark.parametrize(
    ("username", "password"),
    [("ana", "wrong password here"), ("nobody", PASSWORD), ("ana", ""), ("", "")],
)
async def test_a_wrong_username_or_password_gets_the_same_answer_and_no_session(
    h: Harness, username: str, password: str
) -> None:
    await add_user(h)
    async with new_client(h) as client:
        response = await post_login(client, username, password)
        assert response.status_code == 401
        assert WRONG in response.text
        assert not client.cookies.get("meso_staff")
        assert (await client.get("/staff/account")).status_code == 303
    assert session_rows(h) == []


async def test_an_unknown_username_still_costs_a_password_verification(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.routes.staff.auth as routes

    calls: list[str] = []
    monkeypatch.setattr(routes, "verify_unknown_user", lambda password: calls.append(password))
    async with new_client(h) as client:
        await post_login(client, "nobody", "some password")
    assert calls == ["some password"]


async def test_a_deactivated_account_cannot_log_in(h: Harness) -> None:
    await add_user(h)
    with_sqlite(h, "UPDATE staff_users SET is_active = 0")
    async with new_client(h) as client:
        response = await post_login(client, "ana", PASSWORD)
    assert response.status_code == 401 and WRONG in response.text


async def test_an_old_hash_is_upgraded_at_login(h: Harness) -> None:
    await add_user(h)
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    with_sqlite(h, "UPDATE staff_users SET password_hash = ?", weak)
    async with new_client(h) as client:
        assert (await post_login(client, "ana", PASSWORD)).status_code == 303
    [row] = h.rows("SELECT password_hash FROM staff_users")
    assert row["password_hash"] != weak
    assert row["password_hash"].startswith("$argon2id$")
    assert verify_password(row["password_hash"], PASSWORD)


async def test_a_token_planted_before_login_is_replaced(h: Harness) -> None:
    await add_user(h)
    planted = "planted-token-" + "x" * 40
    async with new_client(h) as client:
        client.cookies.set("meso_staff", planted, domain="testserver.local", path="/staff")
        response = await post_login(client, "ana", PASSWORD)
        issued = response.cookies.get("meso_staff")
    assert issued and issued != planted
    assert [r["id"] for r in session_rows(h)] == [hashlib.sha256(issued.encode()).hexdigest()]


class TestLoginCsrf:
    async def test_a_login_post_without_the_forms_token_is_refused(self, h: Harness) -> None:
        await add_user(h)
        async with new_client(h) as client:
            await client.get("/staff/login")  # the browser has the cookie, the post no field
            response = await client.post(
                "/staff/login", data={"username": "ana", "password": PASSWORD}
            )
        assert response.status_code == 403
        assert session_rows(h) == []

    async def test_a_token_from_another_browser_is_refused(self, h: Harness) -> None:
        await add_user(h)
        async with new_client(h) as attacker, new_client(h) as victim:
            token = csrf_in((await attacker.get("/staff/login")).text)
            await victim.get("/staff/login")
            response = await victim.post(
                "/staff/login", data={"csrf_token": token, "username": "ana", "password": PASSWORD}
            )
        assert response.status_code == 403
        assert session_rows(h) == []

    @pytest.mark.parametrize("origin", ["https://evil.example", "null"])
    async def test_a_login_posted_from_another_origin_is_refused(
        self, h: Harness, origin: str
    ) -> None:
        await add_user(h)
        async with new_client(h) as client:
            token = csrf_in((await client.get("/staff/login")).text)
            response = await client.post(
                "/staff/login",
                data={"csrf_token": token, "username": "ana", "password": PASSWORD},
                headers={"Origin": origin},
            )
        assert response.status_code == 403
        assert session_rows(h) == []

    async def test_the_own_origin_is_accepted_behind_a_tls_proxy(self, h: Harness) -> None:
        """The browser says https, the app behind the proxy sees http: the host decides."""
        await add_user(h)
        async with new_client(h) as client:
            page = await client.get("/staff/login")
            # Browsers send a real Origin on the console's own forms only under this policy.
            assert page.headers["referrer-policy"] == "same-origin"
            host = str(client.base_url.netloc.decode())
            response = await client.post(
                "/staff/login",
                data={"csrf_token": csrf_in(page.text), "username": "ana", "password": PASSWORD},
                headers={"Origin": f"https://{host}"},
            )
        assert response.status_code == 303
        assert len(session_rows(h)) == 1

    async def test_a_stale_login_form_is_refused(self, h: Harness) -> None:
        await add_user(h)
        stale = f"{int(time.time()) - 3 * 3600}.{'s' * 32}"
        async with new_client(h) as client:
            client.cookies.set("meso_staff_login", stale, domain="testserver.local")
            response = await client.post(
                "/staff/login", data={"csrf_token": stale, "username": "ana", "password": PASSWORD}
            )
            assert response.status_code == 403
            fresh = csrf_in((await client.get("/staff/login")).text)
        assert fresh != stale


class TestRateLimit:
    async def test_per_client_address(self, start: Callable[..., Any]) -> None:
        async with start(login_attempts_per_minute=2) as h:
            await add_user(h)
            async with new_client(h) as client:
                for name in ("a1", "a2"):
                    assert (await post_login(client, name, "x" * 12)).status_code == 401
                refused = await post_login(client, "ana", PASSWORD)
            async with new_client(h, ip="198.51.100.9") as elsewhere:
                allowed = await post_login(elsewhere, "ana", PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many login attempts. Please wait" in refused.text
        assert allowed.status_code == 303

    async def test_per_username(self, start: Callable[..., Any]) -> None:
        async with start(login_attempts_per_minute=2) as h:
            await add_user(h)
            for n, ip in enumerate(("198.51.100.1", "198.51.100.2", "198.51.100.3")):
                async with new_client(h, ip=ip) as client:
                    password = "wrong password!" if n < 2 else PASSWORD
                    response = await post_login(client, "ana", password)
            assert response.status_code == 429
            assert session_rows(h) == []


class TestSessions:
    async def test_logout_deletes_the_session_and_the_old_token_is_useless(
        self, h: Harness, admin_client: StaffClient
    ) -> None:
        token = admin_client.client.cookies.get("meso_staff")
        response = await admin_client.post("/staff/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/staff/login"
        assert session_rows(h) == []
        async with new_client(h) as replay:
            replay.cookies.set("meso_staff", token or "", domain="testserver.local")
            assert (await replay.get("/staff/account")).status_code == 303

    async def test_a_session_idle_past_the_limit_ends(
        self, h: Harness, admin_client: StaffClient
    ) -> None:
        back = sql_time(utcnow() - timedelta(minutes=29))
        with_sqlite(h, "UPDATE staff_sessions SET last_seen_at = ?", back)
        assert (await admin_client.client.get("/staff/account")).status_code == 200
        [row] = session_rows(h)
        assert row["last_seen_at"] > back  # moved forward by that request

        back = sql_time(utcnow() - timedelta(minutes=30, seconds=1))
        with_sqlite(h, "UPDATE staff_sessions SET last_seen_at = ?", back)
        response = await admin_client.client.get("/staff/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/staff/login?next=%2Fstaff%2Faccount"
        assert session_rows(h) == []

    async def test_the_idle_limit_is_a_setting(self, start: Callable[..., Any]) -> None:
        async with start(staff_idle_minutes=5) as h:
            await add_user(h)
            async with new_client(h) as client:
                await post_login(client, "ana", PASSWORD)
                back = sql_time(utcnow() - timedelta(minutes=6))
                with_sqlite(h, "UPDATE staff_sessions SET last_seen_at = ?", back)
                assert (await client.get("/staff/account")).status_code == 303

    async def test_a_deactivated_accounts_session_is_refused(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        with_sqlite(h, "UPDATE staff_users SET is_active = 0 WHERE username = 'reviewer'")
        assert (await reviewer_client.client.get("/staff/account")).status_code == 303


def wrong_code(secret: str) -> str:
    """A 6-digit code that is none of the codes accepted now."""
    totp = pyotp.TOTP(secret)
    accepted = {totp.at(time.time() + step * 30) for step in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


async def enable_totp(staff: StaffClient) -> str:
    page = await staff.client.get("/staff/account/totp")
    assert page.status_code == 200
    secret = page.text.split('name="secret" value="')[1].split('"')[0]
    assert f"secret={secret}" in page.text.replace("&amp;", "&")  # the otpauth:// URI
    refused = await staff.post(
        "/staff/account/totp", {"secret": secret, "code": wrong_code(secret)}
    )
    assert refused.status_code == 400
    code = pyotp.TOTP(secret).now()
    done = await staff.post("/staff/account/totp", {"secret": secret, "code": code})
    assert done.status_code == 303
    return secret


class TestTotp:
    async def test_enabling_needs_a_right_code(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        secret = await enable_totp(reviewer_client)
        assert reviewer_secret(h) == secret
        page = await reviewer_client.client.get("/staff/account")
        assert "Two-step login is <strong>on</strong>" in page.text

    async def test_login_then_asks_for_the_code_and_issues_a_new_token(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        secret = await enable_totp(reviewer_client)
        async with new_client(h) as client:
            first = await post_login(client, "reviewer", PASSWORD, next_url="/staff/account")
            assert first.status_code == 303
            assert first.headers["location"] == "/staff/login/totp?next=%2Fstaff%2Faccount"
            pending = client.cookies.get("meso_staff")
            # half logged in: no staff page yet
            blocked = await client.get("/staff/account")
            assert (blocked.status_code, blocked.headers["location"]) == (303, "/staff/login/totp")
            form = await client.get(first.headers["location"])
            assert form.status_code == 200
            response = await client.post(
                "/staff/login/totp",
                data={
                    "csrf_token": csrf_in(form.text),
                    "code": pyotp.TOTP(secret).now(),
                    "next": "/staff/account",
                },
            )
            assert (response.status_code, response.headers["location"]) == (303, "/staff/account")
            assert client.cookies.get("meso_staff") not in {None, pending}
            assert (await client.get("/staff/account")).status_code == 200
        pending_id = hashlib.sha256((pending or "").encode()).hexdigest()
        assert pending_id not in {r["id"] for r in session_rows(h)}

    async def test_five_wrong_codes_end_the_attempt(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        secret = await enable_totp(reviewer_client)
        async with new_client(h) as client:
            await post_login(client, "reviewer", PASSWORD)
            csrf = csrf_in((await client.get("/staff/login/totp")).text)
            statuses = []
            for _ in range(5):
                response = await client.post(
                    "/staff/login/totp", data={"csrf_token": csrf, "code": wrong_code(secret)}
                )
                statuses.append(response.status_code)
            assert statuses == [401, 401, 401, 401, 303]
            assert response.headers["location"] == "/staff/login"
            # the half-open session is gone: even the right code does nothing now
            late = await client.post(
                "/staff/login/totp", data={"csrf_token": csrf, "code": pyotp.TOTP(secret).now()}
            )
            assert late.headers["location"].startswith("/staff/login")
            assert (await client.get("/staff/account")).status_code == 303
        assert len(session_rows(h)) == 1  # only reviewer_client's own

    async def test_turning_it_off_needs_the_password(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        await enable_totp(reviewer_client)
        refused = await reviewer_client.post(
            "/staff/account/totp/disable", {"password": "not my password"}
        )
        assert refused.status_code == 400
        assert reviewer_secret(h)
        done = await reviewer_client.post("/staff/account/totp/disable", {"password": PASSWORD})
        assert done.status_code == 303
        assert reviewer_secret(h) is None

    async def test_a_tampered_secret_is_not_stored(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        response = await reviewer_client.post(
            "/staff/account/totp", {"secret": "not base32!", "code": "123456"}
        )
        assert response.status_code == 400
        assert reviewer_secret(h) is None


async def test_the_login_page_escapes_what_was_typed(h: Harness) -> None:
    async with new_client(h) as client:
        response = await post_login(client, "<script>alert(1)</script>", "whatever password")
    assert "<script>alert(1)" not in response.text
    assert "&lt;script&gt;" in response.text


async def test_a_staff_user_model_round_trip(h: Harness) -> None:
    """Usernames are unique (the database refuses a second one)."""
    await add_user(h, "ana")
    async with h.app.state.runtime.sessionmaker() as session:
        session.add(StaffUser(username="ana", display_name="x", role="admin", password_hash="x"))
        with pytest.raises(Exception, match="UNIQUE"):
            await session.commit()

