"""Logging in and out of the staff console: passwords, the login form's own CSRF token,
rate limits and capped per-account waits, session cookies, idle and absolute expiry, the
TOTP second step (required for admins, each code used once, wrong ones counted per account)
and re-authentication before exports with personal details and erasure."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
from anyio import to_thread
from api_fakes import Harness, stored_time
from argon2 import PasswordHasher
from staff_fakes import (
    PASSWORD,
    StaffClient,
    code_after,
    csrf_in,
    last_step,
    logged_in,
    make_staff,
    new_client,
    post_code,
    post_login,
)

from sqlalchemy.exc import IntegrityError

from api import cli
from api.models import StaffUser, utcnow
from api.staff import totp as staff_totp
from api.staff.passwords import verify_password
from api.staff.throttle import LoginThrottle

pytestmark = pytest.mark.anyio

WRONG = "Wrong username or password."


async def add_user(h: Harness, username: str = "ana", role: str = "reviewer", **kw: Any) -> int:
    async with h.app.state.runtime.sessionmaker() as session:
        return (await make_staff(session, username, role, **kw)).id


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
    h.execute("UPDATE staff_users SET is_active = FALSE")
    async with new_client(h) as client:
        response = await post_login(client, "ana", PASSWORD)
    assert response.status_code == 401 and WRONG in response.text


async def test_an_old_hash_is_upgraded_at_login(h: Harness) -> None:
    await add_user(h)
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    h.execute("UPDATE staff_users SET password_hash = ?", weak)
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

    async def test_per_account_from_any_address(self, start: Callable[..., Any]) -> None:
        """Wrong passwords for one account, from ever new addresses, make it wait."""
        async with start(staff_lockout_failures=2) as h:
            await add_user(h)
            for n, ip in enumerate(("198.51.100.1", "198.51.100.2", "198.51.100.3")):
                async with new_client(h, ip=ip) as client:
                    password = "wrong password!" if n < 2 else PASSWORD
                    response = await post_login(client, "ana", password)
            assert response.status_code == 429
            assert 0 < int(response.headers["retry-after"]) <= 15
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
        back = utcnow() - timedelta(minutes=29)
        h.execute("UPDATE staff_sessions SET last_seen_at = ?", back)
        assert (await admin_client.client.get("/staff/account")).status_code == 200
        [row] = session_rows(h)
        assert stored_time(row["last_seen_at"]) > back  # moved forward by that request

        back = utcnow() - timedelta(minutes=30, seconds=1)
        h.execute("UPDATE staff_sessions SET last_seen_at = ?", back)
        response = await admin_client.client.get("/staff/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/staff/login?next=%2Fstaff%2Faccount"
        assert session_rows(h) == []

    async def test_the_idle_limit_is_a_setting(self, start: Callable[..., Any]) -> None:
        async with start(staff_idle_minutes=5) as h:
            await add_user(h)
            async with new_client(h) as client:
                await post_login(client, "ana", PASSWORD)
                back = utcnow() - timedelta(minutes=6)
                h.execute("UPDATE staff_sessions SET last_seen_at = ?", back)
                assert (await client.get("/staff/account")).status_code == 303

    async def test_a_deactivated_accounts_session_is_refused(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        h.execute("UPDATE staff_users SET is_active = FALSE WHERE username = 'reviewer'")
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
                    # the set-up used the current code: the next one (each is used once)
                    "code": code_after(secret, last_step(h, "reviewer")),
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
        with pytest.raises(IntegrityError, match="(?i)unique"):
            await session.commit()



# --- hardening: lockout, second factor, session lifetime, re-authentication ----------------


class FakeClock:
    """A monotonic clock the test moves (for the login throttle)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def controlled_throttle(h: Harness) -> FakeClock:
    clock = FakeClock()
    h.app.state.runtime.login_throttle = LoginThrottle(clock=clock)
    return clock


def audit_actions(h: Harness) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r["action"], json.loads(r["detail"]))
        for r in h.rows("SELECT action, detail FROM audit_log ORDER BY id")
    ]


async def log_out(client: Any) -> None:
    page = await client.get("/staff/account")
    response = await client.post("/staff/logout", data={"csrf_token": csrf_in(page.text)})
    assert response.status_code == 303


def set_cookie(response: Any, name: str) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))


class TestLockout:
    async def test_the_wait_doubles_up_to_the_cap_and_waiting_ends_it(
        self, start: Callable[..., Any]
    ) -> None:
        async with start(staff_lockout_failures=1, staff_lockout_max_seconds=60) as h:
            await add_user(h)
            clock = controlled_throttle(h)
            waits = []
            async with new_client(h, ip="198.51.100.20") as attacker:
                for _ in range(6):
                    assert (await post_login(attacker, "ana", "wrong password!")).status_code == 401
                    # while it lasts every attempt is refused unchecked and not counted
                    for _ in range(3):
                        refused = await post_login(attacker, "ana", "wrong password!")
                        assert refused.status_code == 429
                    waits.append(int(refused.headers["retry-after"]))
                    clock.now += waits[-1]
                assert (await post_login(attacker, "ana", "wrong password!")).status_code == 401
            assert waits == [15, 30, 60, 60, 60, 60]
            async with new_client(h, ip="198.51.100.21") as colleague:
                # the right password during the wait waits too, at most the cap
                early = await post_login(colleague, "ana", PASSWORD)
                assert early.status_code == 429
                assert "Please wait" in early.text
                assert int(early.headers["retry-after"]) <= 60
                clock.now += int(early.headers["retry-after"])
                assert (await post_login(colleague, "ana", PASSWORD)).status_code == 303
            assert any(d.get("wait_seconds") == 60 for a, d in audit_actions(h))

    async def test_an_unknown_username_waits_the_same(self, start: Callable[..., Any]) -> None:
        async with start(staff_lockout_failures=1) as h:
            await add_user(h)
            answers = []
            for name in ("ana", "nobody"):
                async with new_client(h) as client:
                    first = await post_login(client, name, "wrong password!")
                    second = await post_login(client, name, "wrong password!")
                    waits = second.text.count("wait")
                    answers.append((first.status_code, second.status_code, waits))
            assert answers[0] == answers[1] == (401, 429, 1)

    async def test_a_browser_that_signed_in_before_is_not_locked_out_by_others(
        self, start: Callable[..., Any]
    ) -> None:
        async with start(staff_lockout_failures=2, staff_cookie_secure=True) as h:
            user_id = await add_user(h)
            async with new_client(h, base_url="https://testserver") as own:
                first = await post_login(own, "ana", PASSWORD)
                assert first.status_code == 303
                device = set_cookie(first, "meso_staff_device")
                flags = {part.strip().lower() for part in device.split(";")[1:]}
                assert {"httponly", "secure", "samesite=strict", "path=/staff/login"} <= flags
                await log_out(own)
                async with new_client(h, "198.51.100.30", "https://testserver") as attacker:
                    for _ in range(2):
                        wrong = await post_login(attacker, "ana", "wrong password!")
                        assert wrong.status_code == 401
                    assert (await post_login(attacker, "ana", PASSWORD)).status_code == 429
                async with new_client(h, "198.51.100.31", "https://testserver") as forger:
                    forger.cookies.set(
                        "meso_staff_device", f"{user_id}.abc.{'0' * 64}", domain="testserver.local"
                    )
                    assert (await post_login(forger, "ana", PASSWORD)).status_code == 429
                # the owner's usual browser still gets in
                assert (await post_login(own, "ana", PASSWORD)).status_code == 303


class TestTotpRequired:
    async def test_an_admin_without_a_second_factor_sets_one_up_before_anything_else(
        self, h: Harness
    ) -> None:
        await add_user(h, "boss", "admin")
        async with new_client(h) as client:
            response = await post_login(client, "boss", PASSWORD)
            setup = "/staff/account/totp?next=%2Fstaff"
            assert (response.status_code, response.headers["location"]) == (303, setup)
            for url in ("/staff", "/staff/admin/users", "/staff/admin/audit", "/staff/account"):
                blocked = await client.get(url)
                assert blocked.status_code == 303, url
                assert blocked.headers["location"].startswith("/staff/account/totp?next="), url
            page = await client.get(setup)
            assert page.status_code == 200 and "required for your account" in page.text
            csrf = csrf_in(page.text)
            secret = page.text.split('name="secret" value="')[1].split('"')[0]
            refused = await client.post(
                "/staff/admin/users",
                data={"csrf_token": csrf, "username": "sneaky", "display_name": "S",
                      "role": "admin", "password": PASSWORD, "confirm_password": PASSWORD},
            )
            assert refused.status_code == 303
            assert h.rows("SELECT * FROM staff_users WHERE username = 'sneaky'") == []
            before = client.cookies.get("meso_staff")
            code = pyotp.TOTP(secret).now()
            done = await client.post(
                "/staff/account/totp",
                data={"csrf_token": csrf, "secret": secret, "code": code, "next": "/staff"},
            )
            assert (done.status_code, done.headers["location"]) == (303, "/staff")
            assert client.cookies.get("meso_staff") not in {None, before}  # a new token
            assert (await client.get("/staff")).status_code == 200
            # the set-up code is used: it cannot log in again
            await log_out(client)
            await post_login(client, "boss", PASSWORD)
            form = await client.get("/staff/login/totp")
            again = await client.post(
                "/staff/login/totp", data={"csrf_token": csrf_in(form.text), "code": code}
            )
            assert again.status_code == 401
        actions = audit_actions(h)
        assert ("login", {"totp_setup_required": True}) in actions
        assert ("totp_enabled", {"required": True}) in actions

    async def test_the_first_admin_made_with_the_command_line_is_taken_to_set_up(
        self, h: Harness, make_settings: Callable[..., Any]
    ) -> None:
        argv = ["create-user", "--username", "first", "--role", "admin", "--password-stdin"]
        status = await to_thread.run_sync(
            lambda: cli.main(argv, settings=make_settings(), stdin=io.StringIO(PASSWORD + "\n"),
                             out=io.StringIO())
        )
        assert status == 0
        async with new_client(h) as client:
            response = await post_login(client, "first", PASSWORD)
        assert response.headers["location"] == "/staff/account/totp?next=%2Fstaff"

    async def test_everyone_when_the_setting_says_all(self, start: Callable[..., Any]) -> None:
        async with start(staff_require_totp="all") as h:
            await add_user(h, "ana", "reviewer")
            async with new_client(h) as client:
                response = await post_login(client, "ana", PASSWORD)
                assert response.headers["location"] == "/staff/account/totp?next=%2Fstaff"
                assert (await client.get("/staff")).status_code == 303

    async def test_a_reviewer_may_go_without_by_default(self, h: Harness) -> None:
        await add_user(h, "ana", "reviewer")
        async with new_client(h) as client:
            assert (await post_login(client, "ana", PASSWORD)).headers["location"] == "/staff"
            assert (await client.get("/staff")).status_code == 200

    async def test_an_admin_cannot_turn_it_off(self, h: Harness, admin_client: StaffClient) -> None:
        page = await admin_client.client.get("/staff/account")
        assert "/staff/account/totp/disable" not in page.text
        refused = await admin_client.post("/staff/account/totp/disable", {"password": PASSWORD})
        assert refused.status_code == 400 and "required" in refused.text
        [row] = h.rows("SELECT totp_secret FROM staff_users WHERE username = 'admin'")
        assert row["totp_secret"] == admin_client.totp_secret


class TestTotpCodes:
    async def test_a_used_code_is_refused_and_so_is_an_earlier_one(self, h: Harness) -> None:
        secret = pyotp.random_base32()
        await add_user(h, "ana", totp_secret=secret)
        now = time.time()
        code = pyotp.TOTP(secret).at(now)
        async with new_client(h) as first:
            await post_login(first, "ana", PASSWORD)
            form = await first.get("/staff/login/totp")
            ok = await first.post(
                "/staff/login/totp", data={"csrf_token": csrf_in(form.text), "code": code}
            )
            assert ok.status_code == 303
        async with new_client(h, ip="198.51.100.40") as second:
            await post_login(second, "ana", PASSWORD)
            csrf = csrf_in((await second.get("/staff/login/totp")).text)
            for used in (code, pyotp.TOTP(secret).at(now - 30)):
                replay = await second.post(
                    "/staff/login/totp", data={"csrf_token": csrf, "code": used}
                )
                assert replay.status_code == 401
                assert "used already" in replay.text
            assert (await post_code(h, second, "ana", secret)).status_code == 303
        failed = [d for a, d in audit_actions(h) if a == "login_totp_failed"]
        assert failed[0]["reused"] is True

    async def test_two_requests_cannot_both_claim_one_step(self, h: Harness) -> None:
        user_id = await add_user(h, "ana", totp_secret=pyotp.random_base32())
        maker = h.app.state.runtime.sessionmaker
        async with maker() as one, maker() as two:
            first, second = await one.get(StaffUser, user_id), await two.get(StaffUser, user_id)
            assert first and second and second.totp_last_step is None  # both read it unused
            assert await staff_totp.claim_step(one, first, 1000)
            await one.commit()
            assert not await staff_totp.claim_step(two, second, 1000)
            assert not await staff_totp.claim_step(two, second, 999)
            assert await staff_totp.claim_step(two, second, 1001)
            await two.commit()

    async def test_wrong_codes_count_on_the_account_not_the_sign_in(self, h: Harness) -> None:
        secret = pyotp.random_base32()
        await add_user(h, "ana", totp_secret=secret)

        async def wrong_codes(client: Any, count: int) -> list[int]:
            assert (await post_login(client, "ana", PASSWORD)).status_code == 303
            csrf = csrf_in((await client.get("/staff/login/totp")).text)
            return [
                (await client.post(
                    "/staff/login/totp", data={"csrf_token": csrf, "code": wrong_code(secret)}
                )).status_code
                for _ in range(count)
            ]

        async with new_client(h) as client:
            assert await wrong_codes(client, 4) == [401] * 4
            # a new password login does not start the count again: the 5th ends it
            assert await wrong_codes(client, 1) == [303]
            # and now even a right code waits
            await post_login(client, "ana", PASSWORD)
            locked = await post_code(h, client, "ana", secret)
            assert locked.status_code == 429
            assert 0 < int(locked.headers["retry-after"]) <= 15
            h.execute(
                "UPDATE staff_users SET totp_locked_until = ?", utcnow() - timedelta(seconds=1)
            )
            assert (await post_code(h, client, "ana", secret)).status_code == 303
        [row] = h.rows("SELECT totp_failures, totp_locked_until FROM staff_users")
        assert (row["totp_failures"], row["totp_locked_until"]) == (0, None)


class TestSessionLifetime:
    async def test_a_session_ends_at_its_absolute_lifetime_however_active(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        signed_in = utcnow() - timedelta(hours=11, minutes=59)
        h.execute("UPDATE staff_sessions SET created_at = ?", signed_in)
        assert (await reviewer_client.client.get("/staff/account")).status_code == 200

        signed_in = utcnow() - timedelta(hours=12, seconds=1)
        h.execute("UPDATE staff_sessions SET created_at = ?", signed_in)
        response = await reviewer_client.client.get("/staff/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/staff/login?next=%2Fstaff%2Faccount"
        assert session_rows(h) == []

    async def test_the_lifetime_is_a_setting(self, start: Callable[..., Any]) -> None:
        async with start(staff_session_max_hours=1) as h:
            await add_user(h)
            async with new_client(h) as client:
                await post_login(client, "ana", PASSWORD)
                signed_in = utcnow() - timedelta(minutes=61)
                h.execute("UPDATE staff_sessions SET created_at = ?", signed_in)
                assert (await client.get("/staff/account")).status_code == 303


def last_auth_minutes_ago(h: Harness, minutes: float) -> None:
    h.execute(
        "UPDATE staff_sessions SET authenticated_at = ?",
        utcnow() - timedelta(minutes=minutes),
    )


def reauth_url(target: str) -> str:
    return "/staff/reauth?" + urlencode({"next": target})


class TestRecentAuth:
    async def test_exports_with_personal_details_ask_again_after_15_minutes(
        self, h: Harness, admin_client: StaffClient
    ) -> None:
        cid = await h.new_conversation(consent=True)
        url = f"/staff/conversations/{cid}/export.csv?personal=1"
        last_auth_minutes_ago(h, 14)
        assert (await admin_client.client.get(url)).status_code == 200

        last_auth_minutes_ago(h, 16)
        personal = [
            url,
            f"/staff/conversations/{cid}/export.json?personal=1",
            "/staff/export.csv?personal=1",
            "/staff/export.json?personal=on",
            f"/staff/conversations/{cid}/story.yml?personal=1",
            f"/staff/conversations/{cid}/conversation-test.yml?personal=1",
        ]
        for target in personal:
            response = await admin_client.client.get(target)
            assert response.status_code == 303, target
            assert response.headers["location"] == reauth_url(target)
        # masked exports need nothing more
        masked = await admin_client.client.get(f"/staff/conversations/{cid}/export.csv")
        assert masked.status_code == 200

        page = await admin_client.client.get(reauth_url(url))
        assert page.status_code == 200 and "Confirm it is you" in page.text
        wrong = await admin_client.post(
            "/staff/reauth", {"password": "not my password", "next": url}
        )
        assert wrong.status_code == 401
        done = await admin_client.post("/staff/reauth", {"password": PASSWORD, "next": url})
        assert (done.status_code, done.headers["location"]) == (303, url)
        assert (await admin_client.client.get(url)).status_code == 200
        actions = [a for a, _ in audit_actions(h)]
        assert "reauth_failed" in actions and ("reauth", {"method": "password"}) in audit_actions(h)

    async def test_erasure_asks_again_and_a_code_will_do(
        self, h: Harness, admin_client: StaffClient
    ) -> None:
        cid = await h.new_conversation(consent=True)
        page_url = f"/staff/admin/conversations/{cid}/erase"
        last_auth_minutes_ago(h, 16)
        assert (await admin_client.client.get(page_url)).headers["location"] == reauth_url(page_url)
        stale = await admin_client.post(page_url)
        assert (stale.status_code, stale.headers["location"]) == (303, reauth_url(page_url))
        assert h.rows("SELECT id FROM conversations WHERE id = ?", cid)  # nothing erased

        assert admin_client.totp_secret
        code = code_after(admin_client.totp_secret, last_step(h, "admin"))
        done = await admin_client.post("/staff/reauth", {"code": code, "next": page_url})
        assert (done.status_code, done.headers["location"]) == (303, page_url)
        assert (await admin_client.client.get(page_url)).status_code == 200
        erased = await admin_client.post(page_url)
        assert (erased.status_code, erased.headers["location"]) == (303, "/staff")
        assert h.rows("SELECT id FROM conversations WHERE id = ?", cid) == []
        # that code is used now
        last_auth_minutes_ago(h, 16)
        replay = await admin_client.post("/staff/reauth", {"code": code, "next": "/staff"})
        assert replay.status_code == 401
        assert ("reauth", {"method": "totp"}) in audit_actions(h)

    async def test_a_reviewer_asking_for_personal_details_is_refused_not_asked(
        self, h: Harness, reviewer_client: StaffClient
    ) -> None:
        last_auth_minutes_ago(h, 60)
        response = await reviewer_client.client.get("/staff/export.csv?personal=1")
        assert response.status_code == 403

    async def test_five_wrong_answers_end_the_session(
        self, h: Harness, admin_client: StaffClient
    ) -> None:
        statuses = [
            (await admin_client.post("/staff/reauth", {"password": "wrong password!"})).status_code
            for _ in range(5)
        ]
        assert statuses == [401, 401, 401, 401, 303]
        assert (await admin_client.client.get("/staff/account")).status_code == 303

    async def test_it_never_leads_off_the_console(self, admin_client: StaffClient) -> None:
        for target in ("https://evil.example/", "//evil.example", "/staff/reauth?next=/x"):
            done = await admin_client.post("/staff/reauth", {"password": PASSWORD, "next": target})
            assert done.headers["location"] == "/staff", target

    async def test_the_window_is_a_setting(self, start: Callable[..., Any]) -> None:
        async with start(staff_reauth_minutes=5) as h:
            async with logged_in(h, "boss", "admin") as boss:
                last_auth_minutes_ago(h, 6)
                response = await boss.client.get("/staff/export.csv?personal=1")
                assert response.status_code == 303
