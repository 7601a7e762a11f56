"""Logging in (password, then the TOTP code when the account has one) and out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import RuntimeDep, SessionDep
from api.models import StaffSession, StaffUser, utcnow
from api.routes.chat import client_key
from api.staff import totp
from api.staff.audit import audit
from api.staff.auth import (
    COOKIE_NAME,
    LOGIN_COOKIE,
    LOGIN_PATH,
    TOTP_PATH,
    CsrfDep,
    LoginCsrfDep,
    StaffDep,
    StaffSessionDep,
    clear_session_cookie,
    login_token,
    safe_next,
    set_login_cookie,
    set_session_cookie,
)
from api.staff.passwords import hash_password, needs_rehash, verify_password, verify_unknown_user
from api.staff.sessions import find_session, session_id, start_session
from api.staff.templating import redirect, render

router = APIRouter()

WRONG_LOGIN = "Wrong username or password."
WRONG_CODE = "That code is not right. Check the time on your device and try again."
TOO_MANY_CODES = "Too many wrong codes. Please log in again."



class LoginForm(BaseModel):
    username: str = ""
    password: str = ""
    next: str = ""


LoginFormDep = Annotated[LoginForm, Form()]


def _login_form(
    request: Request,
    runtime: RuntimeDep,
    *,
    next_url: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = login_token(request)
    request.state.login_token = token
    response = render(
        request,
        "staff/login.html",
        {"next": next_url, "username": username, "error": error},
        status_code,
    )
    set_login_cookie(response, token, runtime.settings)
    return response


@router.get("/login", tags=["staff-public"])
async def login_page(
    request: Request, db: SessionDep, runtime: RuntimeDep, next: str = ""
) -> Response:
    """The login form (a signed-in member of staff goes straight on)."""
    row = await find_session(
        db,
        request.cookies.get(COOKIE_NAME),
        now=utcnow(),
        idle=timedelta(minutes=runtime.settings.staff_idle_minutes),
    )
    if row is not None and not row.mfa_pending:
        await db.commit()
        return redirect(safe_next(next))
    await db.rollback()
    return _login_form(request, runtime, next_url=safe_next(next))


@router.post("/login", tags=["staff-public"])
async def login(
    request: Request, db: SessionDep, runtime: RuntimeDep, _: LoginCsrfDep, form: LoginFormDep
) -> Response:
    settings = runtime.settings
    name, password = form.username.strip().lower()[:64], form.password
    target = safe_next(form.next)
    for key in (f"ip:{client_key(request)}", f"user:{name}"):
        wait = runtime.login_limiter.hit(key)
        if wait is not None:
            response = _login_form(
                request,
                runtime,
                next_url=target,
                username=name,
                error=f"Too many login attempts. Please wait {wait} seconds and try again.",
                status_code=429,
            )
            response.headers["Retry-After"] = str(wait)
            return response

    user = await db.scalar(select(StaffUser).where(StaffUser.username == name)) if name else None
    if user is None or not user.is_active:
        await to_thread.run_sync(verify_unknown_user, password)
        valid = False
    else:
        valid = await to_thread.run_sync(verify_password, user.password_hash, password)
    if user is None or not valid:
        audit(
            db,
            "unknown",
            "login_failed",
            "staff_user",
            str(user.id) if user else None,
            username=name,
        )
        await db.commit()
        return _login_form(
            request, runtime, next_url=target, username=name, error=WRONG_LOGIN, status_code=401
        )

    if needs_rehash(user.password_hash):
        user.password_hash = await to_thread.run_sync(hash_password, password)
    old = request.cookies.get(COOKIE_NAME)
    if old:
        previous = await db.get(StaffSession, session_id(old))
        if previous is not None:
            await db.delete(previous)
    now = utcnow()
    if user.totp_secret:
        token = start_session(db, user, now=now, mfa_pending=True)
        await db.commit()
        response = redirect(f"{TOTP_PATH}?{urlencode({'next': target})}")
    else:
        token = start_session(db, user, now=now)
        user.last_login_at = now
        audit(db, user, "login", "staff_user", str(user.id))
        await db.commit()
        response = redirect(target)
    set_session_cookie(response, token, settings)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response


@router.get("/login/totp", tags=["staff-public"])
async def totp_page(request: Request, row: StaffSessionDep, next: str = "") -> Response:
    """The second step of logging in: the code from the authenticator app."""
    if not row.mfa_pending:
        return redirect(safe_next(next))
    return render(request, "staff/totp.html", {"next": safe_next(next), "error": None})


@router.post("/login/totp", tags=["staff-public"])
async def totp_login(
    request: Request,
    db: SessionDep,
    runtime: RuntimeDep,
    row: StaffSessionDep,
    _: CsrfDep,
    code: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    target = safe_next(next)
    if not row.mfa_pending:
        return redirect(target)
    user = row.user
    assert user.totp_secret is not None
    if not totp.verify_code(user.totp_secret, code):
        row.mfa_failures += 1
        audit(db, user, "login_totp_failed", "staff_user", str(user.id), failures=row.mfa_failures)
        if row.mfa_failures >= totp.MAX_FAILURES:
            await db.delete(row)
            await db.commit()
            response = redirect(LOGIN_PATH, flash=TOO_MANY_CODES)
            clear_session_cookie(response, runtime.settings)
            return response
        await db.commit()
        return render(request, "staff/totp.html", {"next": target, "error": WRONG_CODE}, 401)

    await db.delete(row)  # a new token once both factors are given
    now = utcnow()
    token = start_session(db, user, now=now)
    user.last_login_at = now
    audit(db, user, "login", "staff_user", str(user.id), totp=True)
    await db.commit()
    response = redirect(target)
    set_session_cookie(response, token, runtime.settings)
    return response


@router.post("/logout", tags=["staff"])
async def logout(
    db: SessionDep, runtime: RuntimeDep, user: StaffDep, row: StaffSessionDep, _: CsrfDep
) -> Response:
    await db.delete(row)
    audit(db, user, "logout", "staff_user", str(user.id))
    await db.commit()
    response = redirect(LOGIN_PATH, flash="You have logged out.")
    clear_session_cookie(response, runtime.settings)
    return response
