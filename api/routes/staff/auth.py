"""Logging in (password, then the TOTP code, or setting one up where it is required), out,
and confirming it is you again before exports with personal details and erasure."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import Runtime, RuntimeDep, SessionDep
from api.models import StaffSession, StaffUser, utcnow
from api.routes.chat import client_key
from api.settings import Settings
from api.staff import totp
from api.staff.audit import audit
from api.staff.auth import (
    COOKIE_NAME,
    ENROL_PATH,
    LOGIN_PATH,
    TOTP_PATH,
    CsrfDep,
    LoginCsrfDep,
    SignedInDep,
    StaffDep,
    StaffSessionDep,
    clear_login_cookie,
    clear_session_cookie,
    live_session,
    login_token,
    must_enrol,
    safe_next,
    set_login_cookie,
    set_session_cookie,
)
from api.staff.passwords import hash_password, needs_rehash, verify_password, verify_unknown_user
from api.staff.sessions import session_id, start_session
from api.staff.templating import redirect, render
from api.staff.throttle import (
    DEVICE_COOKIE,
    DEVICE_DAYS,
    device_token,
    throttle_key,
    trusted_device,
)

router = APIRouter()

WRONG_LOGIN = "Wrong username or password."
WRONG_CODE = "That code is not right, or was used already. Wait for the next code and try again."
TOO_MANY_CODES = "Too many wrong codes. Please log in again."
TOO_MANY_LOGINS = "Too many login attempts. Please wait {wait} seconds and try again."
CODES_LOCKED = "Too many wrong codes. Please wait {wait} seconds and try again."
WRONG_REAUTH = "That is not right. Try again."
TOO_MANY_REAUTH = "Too many wrong answers. Please log in again."
REAUTH_MAX_FAILURES = 5
"""Wrong passwords or codes at re-authentication before the session ends."""


class LoginForm(BaseModel):
    username: str = ""
    password: str = ""
    next: str = ""


LoginFormDep = Annotated[LoginForm, Form()]
FormStr = Annotated[str, Form()]


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


def _too_many_logins(
    request: Request, runtime: Runtime, target: str, name: str, wait: int
) -> Response:
    response = _login_form(
        request,
        runtime,
        next_url=target,
        username=name,
        error=TOO_MANY_LOGINS.format(wait=wait),
        status_code=429,
    )
    response.headers["Retry-After"] = str(wait)
    return response


def _set_device_cookie(response: Response, user: StaffUser, settings: Settings) -> None:
    """Trust this browser for ``user``'s logins (``api.staff.throttle``)."""
    response.set_cookie(
        DEVICE_COOKIE,
        device_token(user),
        max_age=DEVICE_DAYS * 86400,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.staff_cookie_secure,
    )


def _signed_in(response: Response, token: str, user: StaffUser, settings: Settings) -> Response:
    set_session_cookie(response, token, settings)
    _set_device_cookie(response, user, settings)
    return response


@router.get("/login", tags=["staff-public"])
async def login_page(
    request: Request, db: SessionDep, runtime: RuntimeDep, next: str = ""
) -> Response:
    """The login form (a signed-in member of staff goes straight on)."""
    row = await live_session(db, request.cookies.get(COOKIE_NAME), runtime.settings)
    if row is not None and not row.mfa_pending:
        await db.commit()
        return redirect(safe_next(next))
    await db.rollback()
    return _login_form(request, runtime, next_url=safe_next(next))


@router.post("/login", tags=["staff-public"])
async def login(
    request: Request, db: SessionDep, runtime: RuntimeDep, _: LoginCsrfDep, form: LoginFormDep
) -> Response:
    """The password. Limits (``api.staff.throttle``): per client address, then per account
    (or per trusted browser of the account)."""
    settings = runtime.settings
    name, password = form.username.strip().lower()[:64], form.password
    target = safe_next(form.next)
    wait = await runtime.login_limiter.take(f"ip:{client_key(request)}")
    if wait is not None:
        return _too_many_logins(request, runtime, target, name, wait)

    user = await db.scalar(select(StaffUser).where(StaffUser.username == name)) if name else None
    device = trusted_device(request.cookies.get(DEVICE_COOKIE), user)
    key = throttle_key(name, device)
    wait = runtime.login_throttle.wait(key)
    if wait:
        return _too_many_logins(request, runtime, target, name, wait)

    if user is None or not user.is_active:
        await to_thread.run_sync(verify_unknown_user, password)
        valid = False
    else:
        valid = await to_thread.run_sync(verify_password, user.password_hash, password)
    if user is None or not valid:
        delay = runtime.login_throttle.failed(
            key, free=settings.staff_lockout_failures, cap=settings.staff_lockout_max_seconds
        )
        detail: dict[str, object] = {"username": name}
        if delay:
            detail["wait_seconds"] = delay
        if device:
            detail["trusted_browser"] = True
        audit(
            db, "unknown", "login_failed", "staff_user", str(user.id) if user else None, **detail
        )
        await db.commit()
        return _login_form(
            request, runtime, next_url=target, username=name, error=WRONG_LOGIN, status_code=401
        )
    runtime.login_throttle.succeeded(key)

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
        set_session_cookie(response, token, settings)
    else:
        token = start_session(db, user, now=now)
        user.last_login_at = now
        enrol = must_enrol(user, settings)
        if enrol:
            audit(db, user, "login", "staff_user", str(user.id), totp_setup_required=True)
        else:
            audit(db, user, "login", "staff_user", str(user.id))
        await db.commit()
        url = f"{ENROL_PATH}?{urlencode({'next': target})}" if enrol else target
        response = _signed_in(redirect(url), token, user, settings)
    clear_login_cookie(response, settings)
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
    code: FormStr = "",
    next: FormStr = "",
) -> Response:
    """The code: each one is accepted once, and wrong ones count on the account (a new
    password login does not start the count again)."""
    settings = runtime.settings
    target = safe_next(next)
    if not row.mfa_pending:
        return redirect(target)
    user = row.user
    now = utcnow()
    wait = totp.locked_for(user, now)
    if wait:
        error = CODES_LOCKED.format(wait=wait)
        response = render(request, "staff/totp.html", {"next": target, "error": error}, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    if not await totp.check_code(db, user, code, now=now, settings=settings):
        audit(
            db,
            user,
            "login_totp_failed",
            "staff_user",
            str(user.id),
            failures=user.totp_failures,
            reused=totp.was_reused(user, code),
        )
        if user.totp_failures >= totp.MAX_FAILURES:
            await db.delete(row)
            await db.commit()
            response = redirect(LOGIN_PATH, flash=TOO_MANY_CODES)
            clear_session_cookie(response, settings)
            return response
        await db.commit()
        return render(request, "staff/totp.html", {"next": target, "error": WRONG_CODE}, 401)

    await db.delete(row)  # a new token once both factors are given
    token = start_session(db, user, now=now)
    user.last_login_at = now
    audit(db, user, "login", "staff_user", str(user.id), totp=True)
    await db.commit()
    return _signed_in(redirect(target), token, user, settings)


@router.post("/logout", tags=["staff"])
async def logout(
    db: SessionDep, runtime: RuntimeDep, user: SignedInDep, row: StaffSessionDep, _: CsrfDep
) -> Response:
    await db.delete(row)
    audit(db, user, "logout", "staff_user", str(user.id))
    await db.commit()
    response = redirect(LOGIN_PATH, flash="You have logged out.")
    clear_session_cookie(response, runtime.settings)
    return response


def _reauth_page(
    request: Request,
    runtime: Runtime,
    user: StaffUser,
    target: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "next": target,
        "error": error,
        "has_code": user.totp_secret is not None,
        "minutes": f"{runtime.settings.staff_reauth_minutes:g}",
    }
    return render(request, "staff/reauth.html", context, status_code)


@router.get("/reauth", tags=["staff"])
async def reauth_page(
    request: Request, runtime: RuntimeDep, user: StaffDep, next: str = ""
) -> Response:
    """Confirm it is you (``RecentAuth``): your password, or a code when you have them."""
    return _reauth_page(request, runtime, user, safe_next(next))


@router.post("/reauth", tags=["staff"])
async def reauth(
    request: Request,
    db: SessionDep,
    runtime: RuntimeDep,
    user: StaffDep,
    row: StaffSessionDep,
    _: CsrfDep,
    password: FormStr = "",
    code: FormStr = "",
    next: FormStr = "",
) -> Response:
    """A right password or unused code renews the session's ``authenticated_at`` and goes
    back to ``next``; wrong ones are counted in the session (ended at the limit) and, for
    codes, on the account too."""
    settings = runtime.settings
    target = safe_next(next)
    now = utcnow()
    if code.strip() and user.totp_secret:
        method = "totp"
        wait = totp.locked_for(user, now)
        if wait:
            response = _reauth_page(
                request, runtime, user, target, CODES_LOCKED.format(wait=wait), 429
            )
            response.headers["Retry-After"] = str(wait)
            return response
        valid = await totp.check_code(db, user, code, now=now, settings=settings)
    else:
        method = "password"
        valid = await to_thread.run_sync(verify_password, user.password_hash, password)
    if valid:
        row.authenticated_at = now
        row.mfa_failures = 0
        audit(db, user, "reauth", "staff_user", str(user.id), method=method)
        await db.commit()
        return redirect(target)

    row.mfa_failures += 1
    audit(
        db, user, "reauth_failed", "staff_user", str(user.id),
        method=method, failures=row.mfa_failures,
    )
    if row.mfa_failures >= REAUTH_MAX_FAILURES:
        await db.delete(row)
        await db.commit()
        response = redirect(LOGIN_PATH, flash=TOO_MANY_REAUTH)
        clear_session_cookie(response, settings)
        return response
    await db.commit()
    return _reauth_page(request, runtime, user, target, WRONG_REAUTH, 401)
