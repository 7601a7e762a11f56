"""Your own account: change the password; set the TOTP second factor up, or turn it off
where it is not required (``MESO_STAFF_REQUIRE_TOTP``).

Someone who must have a second factor and has none is sent to ``/staff/account/totp`` from
every other page (``api.staff.auth``); setting it up there issues a new session token and
goes on to where they were going."""

from __future__ import annotations

import re
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel

from api.deps import RuntimeDep, SessionDep, get_runtime
from api.models import StaffUser, utcnow
from api.staff import accounts, totp
from api.staff.audit import audit
from api.staff.auth import (
    CsrfDep,
    SignedInDep,
    StaffDep,
    StaffSessionDep,
    safe_next,
    set_session_cookie,
)
from api.staff.passwords import MIN_LENGTH, verify_password
from api.staff.sessions import start_session
from api.staff.templating import redirect, render

router = APIRouter(prefix="/account", tags=["staff"])

FormStr = Annotated[str, Form()]


class PasswordChange(BaseModel):
    current_password: str = ""
    new_password: str = ""
    confirm_password: str = ""


class TotpSetup(BaseModel):
    secret: str = ""
    """The key shown on the set-up page (sent back: nothing is stored before the code)."""
    code: str = ""
    next: str = ""


BASE32_SECRET = re.compile(r"[A-Z2-7]{32}")
WRONG_PASSWORD = "Your current password is not right."
TOTP_REQUIRED = "Two-step login is required for your account: it cannot be turned off."


def _account_page(
    request: Request, user: StaffUser, *, errors: list[str] | None = None, status_code: int = 200
) -> Response:
    context = {
        "account": user,
        "errors": errors or [],
        "min_length": MIN_LENGTH,
        "totp_required": totp.required(user, get_runtime(request).settings),
    }
    return render(request, "staff/account.html", context, status_code)


def _setup_page(
    request: Request,
    user: StaffUser,
    secret: str,
    error: str | None = None,
    status_code: int = 200,
    *,
    next_url: str = "",
) -> Response:
    context = {
        "secret": secret,
        "grouped": totp.grouped(secret),
        "uri": totp.provisioning_uri(secret, user.username),
        "error": error,
        "next": next_url,
        "required": totp.required(user, get_runtime(request).settings),
    }
    return render(request, "staff/account_totp.html", context, status_code)


@router.get("")
async def account_page(request: Request, user: StaffDep) -> Response:
    return _account_page(request, user)


@router.post("/password")
async def change_password(
    request: Request,
    db: SessionDep,
    user: StaffDep,
    row: StaffSessionDep,
    _: CsrfDep,
    form: Annotated[PasswordChange, Form()],
) -> Response:
    if not await to_thread.run_sync(verify_password, user.password_hash, form.current_password):
        return _account_page(request, user, errors=[WRONG_PASSWORD], status_code=400)
    try:
        new, confirm = form.new_password, form.confirm_password
        await accounts.set_password(db, user, new, user, confirm=confirm, keep=row)
    except accounts.AccountError as exc:  # refused before any change; nothing is committed
        return _account_page(request, user, errors=[str(exc)], status_code=400)
    await db.commit()
    return redirect(
        "/staff/account", flash="Your password has been changed. Any other sessions were ended."
    )


@router.get("/totp")
async def totp_setup_page(request: Request, user: SignedInDep, next: str = "") -> Response:
    """A new secret to type into an authenticator app (nothing is stored until confirmed)."""
    if user.totp_secret:
        return redirect(safe_next(next) if next else "/staff/account")
    return _setup_page(request, user, totp.new_secret(), next_url=safe_next(next) if next else "")


@router.post("/totp")
async def enable_totp(
    request: Request,
    db: SessionDep,
    runtime: RuntimeDep,
    user: SignedInDep,
    row: StaffSessionDep,
    _: CsrfDep,
    form: Annotated[TotpSetup, Form()],
) -> Response:
    """Store the secret once a right code shows the app has it; that code's time step
    counts as used, and the session gets a new token (both factors now given)."""
    secret = form.secret
    next_url = safe_next(form.next) if form.next else ""
    if user.totp_secret:
        return redirect(next_url or "/staff/account")
    if not BASE32_SECRET.fullmatch(secret):
        return _setup_page(
            request,
            user,
            totp.new_secret(),
            "The set-up form was damaged. Start again with this new key.",
            400,
            next_url=next_url,
        )
    step = totp.matching_step(secret, form.code)
    if step is None:
        return _setup_page(
            request,
            user,
            secret,
            "That code is not right. Check the key in your app and the time on your device.",
            400,
            next_url=next_url,
        )
    required = totp.required(user, runtime.settings)
    user.totp_secret = secret
    user.totp_last_step = step
    user.totp_failures = 0
    user.totp_locked_until = None
    audit(db, user, "totp_enabled", "staff_user", str(user.id), required=required)
    await db.delete(row)  # a new token now that both factors are given (same CSRF token)
    token = start_session(db, user, now=utcnow(), csrf_token=row.csrf_token)
    await db.commit()
    flash = "Two-step login is on. You will be asked for a code at login."
    response = redirect(next_url or "/staff/account", flash=flash)
    set_session_cookie(response, token, runtime.settings)
    return response


@router.post("/totp/disable")
async def disable_totp(
    request: Request,
    db: SessionDep,
    runtime: RuntimeDep,
    user: StaffDep,
    _: CsrfDep,
    password: FormStr = "",
) -> Response:
    if not user.totp_secret:
        return redirect("/staff/account")
    if totp.required(user, runtime.settings):
        return _account_page(request, user, errors=[TOTP_REQUIRED], status_code=400)
    if not await to_thread.run_sync(verify_password, user.password_hash, password):
        return _account_page(request, user, errors=[WRONG_PASSWORD], status_code=400)
    user.totp_secret = None
    audit(db, user, "totp_disabled", "staff_user", str(user.id))
    await db.commit()
    return redirect("/staff/account", flash="Two-step login is off.")
