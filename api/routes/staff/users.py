"""Admins manage staff accounts: create, change role, deactivate or reactivate, set a new
password, turn someone's second factor off. The last active admin cannot be removed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep
from api.models import StaffUser
from api.staff import accounts
from api.staff.auth import AdminDep, CsrfDep, StaffSessionDep
from api.staff.passwords import MIN_LENGTH
from api.staff.templating import redirect, render

router = APIRouter(prefix="/admin/users", tags=["staff-admin"])

FormStr = Annotated[str, Form()]


class NewPassword(BaseModel):
    password: str = ""
    confirm_password: str = ""


class NewAccount(NewPassword):
    username: str = ""
    display_name: str = ""
    role: str = "reviewer"


NewAccountDep = Annotated[NewAccount, Form()]
ROLE_OPTIONS = [
    ("reviewer", "Reviewer: reads, tags, exports"),
    ("admin", "Admin: also accounts, erasure and the audit log"),
]


async def _users(db: SessionDep) -> list[StaffUser]:
    return list((await db.scalars(select(StaffUser).order_by(StaffUser.username))).all())


async def _target(db: SessionDep, user_id: int) -> StaffUser:
    user = await db.get(StaffUser, user_id)
    if user is None:
        raise HTTPException(404, "There is no such account.")
    return user


async def _list_page(
    request: Request,
    db: SessionDep,
    *,
    errors: list[str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "users": await _users(db),
        "errors": errors or [],
        "form": form or {"username": "", "display_name": "", "role": "reviewer"},
        "role_options": ROLE_OPTIONS,
        "min_length": MIN_LENGTH,
    }
    return render(request, "staff/users.html", context, status_code)


def _user_page(
    request: Request, target: StaffUser, errors: list[str] | None = None, status_code: int = 200
) -> Response:
    context = {
        "target": target,
        "errors": errors or [],
        "role_options": ROLE_OPTIONS,
        "min_length": MIN_LENGTH,
    }
    return render(request, "staff/user.html", context, status_code)


@router.get("")
async def users_page(request: Request, db: SessionDep, admin: AdminDep) -> Response:
    return await _list_page(request, db)


@router.post("")
async def create_user(
    request: Request, db: SessionDep, admin: AdminDep, _: CsrfDep, form: NewAccountDep
) -> Response:
    try:
        user = await accounts.create_user(db, actor=admin, **form.model_dump())
    except accounts.AccountError as exc:  # refused before any change; nothing is committed
        shown = form.model_dump(include={"username", "display_name", "role"})
        return await _list_page(request, db, errors=[str(exc)], form=shown, status_code=400)
    await db.commit()
    return redirect(
        "/staff/admin/users",
        flash=f"Account {user.username} created. Give them the password in person or by phone.",
    )


@router.get("/{user_id}")
async def user_page(request: Request, db: SessionDep, admin: AdminDep, user_id: int) -> Response:
    return _user_page(request, await _target(db, user_id))


async def _change(
    request: Request,
    db: SessionDep,
    user_id: int,
    change: Callable[[StaffUser], Awaitable[Any]],
    done: str,
) -> Response:
    """Apply one change to an account; on a refusal show why, with nothing changed."""
    target = await _target(db, user_id)
    try:
        await change(target)
    except accounts.AccountError as exc:  # refused before any change; nothing is committed
        return _user_page(request, target, [str(exc)], 400)
    await db.commit()
    return redirect(f"/staff/admin/users/{user_id}", flash=done)


@router.post("/{user_id}/role")
async def change_role(
    request: Request,
    db: SessionDep,
    admin: AdminDep,
    _: CsrfDep,
    user_id: int,
    role: FormStr = "",
) -> Response:
    return await _change(
        request,
        db,
        user_id,
        lambda target: accounts.set_role(db, target, role, admin),
        f"The role is now {role}.",
    )


@router.post("/{user_id}/password")
async def set_password(
    request: Request,
    db: SessionDep,
    admin: AdminDep,
    row: StaffSessionDep,
    _: CsrfDep,
    user_id: int,
    form: Annotated[NewPassword, Form()],
) -> Response:
    password, confirm = form.password, form.confirm_password
    return await _change(
        request,
        db,
        user_id,
        lambda target: accounts.set_password(
            db, target, password, admin, confirm=confirm, keep=row
        ),
        "The new password is set, and the account's sessions have ended.",
    )


OneClick = Literal["deactivate", "reactivate", "totp-reset"]
Change = Callable[[AsyncSession, StaffUser, StaffUser], Awaitable[None]]
ONE_CLICK: dict[str, tuple[Change, str]] = {
    "deactivate": (
        lambda db, target, admin: accounts.set_active(db, target, False, admin),
        "The account is deactivated: it cannot log in, and its sessions have ended.",
    ),
    "reactivate": (
        lambda db, target, admin: accounts.set_active(db, target, True, admin),
        "The account is active again.",
    ),
    "totp-reset": (
        accounts.reset_totp,
        "Two-step login is off for this account. They can set it up again on their account page.",
    ),
}
"""The changes made by one button (no form fields): what they do and what to say after."""


@router.post("/{user_id}/{action}")
async def one_click_change(
    request: Request, db: SessionDep, admin: AdminDep, _: CsrfDep, user_id: int, action: OneClick
) -> Response:
    """Deactivate or reactivate an account, or turn its second step off."""
    change, done = ONE_CLICK[action]
    return await _change(request, db, user_id, lambda target: change(db, target, admin), done)
