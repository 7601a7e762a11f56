"""Your own account: change the password; turn the TOTP second factor on or off."""

from __future__ import annotations

import re
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel

from api.deps import SessionDep
from api.models import StaffUser
from api.staff import accounts, totp
from api.staff.audit import audit
from api.staff.auth import CsrfDep, StaffDep, StaffSessionDep
from api.staff.passwords import MIN_LENGTH, verify_password
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
BASE32_SECRET = re.compile(r"[A-Z2-7]{32}")
WRONG_PASSWORD = "Your current password is not right."


def _account_page(
    request: Request, user: StaffUser, *, errors: list[str] | None = None, status_code: int = 200
) -> Response:
    context = {"account": user, "errors": errors or [], "min_length": MIN_LENGTH}
    return render(request, "staff/account.html", context, status_code)


def _setup_page(
    request: Request, user: StaffUser, secret: str, error: str | None = None, status_code: int = 200
) -> Response:
    context = {
        "secret": secret,
        "grouped": totp.grouped(secret),
        "uri": totp.provisioning_uri(secret, user.username),
        "error": error,
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
async def totp_setup_page(request: Request, user: StaffDep) -> Response:
    """A new secret to type into an authenticator app (nothing is stored until confirmed)."""
    if user.totp_secret:
        return redirect("/staff/account")
    return _setup_page(request, user, totp.new_secret())


@router.post("/totp")
async def enable_totp(
    request: Request, db: SessionDep, user: StaffDep, _: CsrfDep, form: Annotated[TotpSetup, Form()]
) -> Response:
    secret = form.secret
    if user.totp_secret:
        return redirect("/staff/account")
    if not BASE32_SECRET.fullmatch(secret):
        return _setup_page(
            request,
            user,
            totp.new_secret(),
            "The set-up form was damaged. Start again with this new key.",
            400,
        )
    if not totp.verify_code(secret, form.code):
        return _setup_page(
            request,
            user,
            secret,
            "That code is not right. Check the key in your app and the time on your device.",
            400,
        )
    user.totp_secret = secret
    audit(db, user, "totp_enabled", "staff_user", str(user.id))
    await db.commit()
    return redirect(
        "/staff/account", flash="Two-step login is on. You will be asked for a code at login."
    )


@router.post("/totp/disable")
async def disable_totp(
    request: Request, db: SessionDep, user: StaffDep, _: CsrfDep, password: FormStr = ""
) -> Response:
    if not user.totp_secret:
        return redirect("/staff/account")
    if not await to_thread.run_sync(verify_password, user.password_hash, password):
        return _account_page(request, user, errors=[WRONG_PASSWORD], status_code=400)
    user.totp_secret = None
    audit(db, user, "totp_disabled", "staff_user", str(user.id))
    await db.commit()
    return redirect("/staff/account", flash="Two-step login is off.")
