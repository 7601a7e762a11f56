"""Helpers for the staff console's tests: accounts, and clients logged in through the real
login form (each with its own cookie jar). Admins must use a second factor, so an admin's
client is made with a TOTP secret and logs in with a code too."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pyotp
from api_fakes import Harness
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import StaffUser
from api.staff.passwords import hash_password

PASSWORD = "correct horse battery"
"""The password of the accounts the fixtures make (long enough for the 12-character rule)."""

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


async def make_staff(
    session: AsyncSession,
    username: str,
    role: str = "reviewer",
    password: str = PASSWORD,
    *,
    display_name: str | None = None,
    totp_secret: str | None = None,
) -> StaffUser:
    """Add an active account and commit it (no audit entry: this is test set-up)."""
    user = StaffUser(
        username=username,
        display_name=display_name or username.title(),
        role=role,
        password_hash=hash_password(password),
        totp_secret=totp_secret,
        is_active=True,
    )
    session.add(user)
    await session.commit()
    return user


def csrf_in(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = _CSRF.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


@dataclass
class StaffClient:
    """A browser of a member of staff: ``client`` holds the session cookie, ``csrf`` the
    session's CSRF token (the ``csrf_token`` field of every form)."""

    client: httpx.AsyncClient
    csrf: str
    user_id: int
    username: str
    totp_secret: str | None = None

    async def post(self, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        """POST a form with the CSRF token added."""
        return await self.client.post(url, data={"csrf_token": self.csrf, **(data or {})})


def new_client(
    h: Harness, ip: str = "203.0.113.7", base_url: str = "http://testserver"
) -> httpx.AsyncClient:
    """A client of the running app with its own cookies (and its own address)."""
    transport = httpx.ASGITransport(app=h.app, client=(ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def post_login(
    client: httpx.AsyncClient, username: str, password: str, next_url: str = ""
) -> httpx.Response:
    """Open the login form and submit it (with its pre-session token)."""
    page = await client.get("/staff/login")
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_in(page.text), "username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return await client.post("/staff/login", data=data)


def code_after(secret: str, last_step: int | None, now: float | None = None) -> str:
    """A code the server accepts now for an account whose last used step is ``last_step``
    (the current step, or the next one when the current one is used)."""
    current = int((time.time() if now is None else now) // 30)
    step = current if last_step is None or last_step < current else last_step + 1
    assert step <= current + 1, "no unused code left in this window: wait for the next step"
    return pyotp.TOTP(secret).generate_otp(step)


def last_step(h: Harness, username: str) -> int | None:
    [row] = h.rows("SELECT totp_last_step FROM staff_users WHERE username = ?", username)
    return row["totp_last_step"]  # type: ignore[no-any-return]


async def post_code(
    h: Harness, client: httpx.AsyncClient, username: str, secret: str, next_url: str = ""
) -> httpx.Response:
    """The second step of a login: the TOTP form with an unused right code."""
    form = await client.get("/staff/login/totp")
    assert form.status_code == 200, form.text
    data = {"csrf_token": csrf_in(form.text), "code": code_after(secret, last_step(h, username))}
    if next_url:
        data["next"] = next_url
    return await client.post("/staff/login/totp", data=data)


@asynccontextmanager
async def logged_in(
    h: Harness,
    username: str,
    role: str = "reviewer",
    password: str = PASSWORD,
    *,
    totp: bool | None = None,
) -> AsyncIterator[StaffClient]:
    """Make the account, log it in with a new client, and yield that client. With ``totp``
    (default: for admins, who must) the account has a secret and the login gives a code."""
    secret = pyotp.random_base32() if (role == "admin" if totp is None else totp) else None
    async with h.app.state.runtime.sessionmaker() as session:
        user = await make_staff(session, username, role, password, totp_secret=secret)
    async with new_client(h) as client:
        response = await post_login(client, username, password)
        assert response.status_code == 303, response.text
        if secret:
            response = await post_code(h, client, username, secret)
            assert response.status_code == 303, response.text
        account = await client.get("/staff/account")
        assert account.status_code == 200, account.text
        yield StaffClient(client, csrf_in(account.text), user.id, username, secret)
