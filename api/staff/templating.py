"""Rendering the staff console's pages (Jinja2, autoescape on, no inline script or style).

Templates live in ``api/templates/staff/`` and extend ``staff/base.html`` (blocks ``title``
and ``content``). Every page's context has ``user`` (the signed-in :class:`StaffUser` or
None), ``csrf_token``, ``flash`` (a one-time message or None), ``app_name`` and ``path``;
``csrf_field()`` is callable everywhere (and a macro of the same name is in
``staff/forms.html``).

Everything a template prints (``{{ ... }}``) goes through :func:`shown` first: bidirectional
controls and control characters in patients' text appear as markers such as ``[U+202E]``
(``api.text_hygiene``), so they can neither reorder nor hide what staff read.

A one-time message survives one redirect in a cookie: ``redirect(url, flash="Saved.")``.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from api import text_hygiene
from api.models import StaffUser
from api.settings import PACKAGE_DIR

TEMPLATES_DIR = PACKAGE_DIR / "templates"
FLASH_COOKIE = "meso_staff_flash"
STAFF_PATH = "/staff"
DEFAULT_APP_NAME = "Staff console"


def format_time(value: datetime | None) -> str:
    """``12 Mar 2026, 14:05 UTC`` (stored times are UTC); an empty string for None."""
    if value is None:
        return ""
    return f"{value.day} {value:%b %Y, %H:%M} UTC"


def shown(value: Any) -> Any:
    """Jinja's ``finalize``: a string (escaped text or Markup) with its bidirectional and
    control characters shown as markers; any other value as it is."""
    if isinstance(value, Markup):
        return Markup(text_hygiene.shown(str(value)))  # markers hold no HTML character
    if isinstance(value, str):
        return text_hygiene.shown(value)
    return value


@cache
def environment() -> Environment:
    """The staff pages' Jinja2 environment, created on first use."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.filters["time"] = format_time
    return env


def current_user(request: Request) -> StaffUser | None:
    """The signed-in member of staff (set by ``api.staff.auth``), or None."""
    user = getattr(request.state, "staff_user", None)
    return user if isinstance(user, StaffUser) else None


def current_csrf_token(request: Request) -> str:
    """The session's CSRF token, or the pre-session login token on the login pages."""
    session = getattr(request.state, "staff_session", None)
    if session is not None:
        return str(session.csrf_token)
    return str(getattr(request.state, "login_token", ""))


def _app_name(request: Request) -> str:
    runtime = getattr(request.app.state, "runtime", None)
    clinic = getattr(runtime, "clinic", None)
    name = getattr(clinic, "name", None)
    return f"{name}: staff console" if name else DEFAULT_APP_NAME


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render template ``name`` (e.g. ``"staff/users.html"``) with ``context`` plus the
    common values above; a flash message shown here is consumed."""
    token = current_csrf_token(request)
    flash = request.cookies.get(FLASH_COOKIE)
    values: dict[str, Any] = {
        "user": current_user(request),
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="csrf_token" value="%s">')
        % escape(token),
        "flash": unquote(flash)[:300] if flash else None,
        "app_name": _app_name(request),
        "path": request.url.path,
        **(context or {}),
    }
    html = environment().get_template(name).render(**values)
    response = HTMLResponse(html, status_code=status_code)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=STAFF_PATH)
    return response


def redirect(url: str, *, flash: str | None = None) -> RedirectResponse:
    """A 303 redirect (after a form POST), with an optional one-time message to show."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash[:300]), path=STAFF_PATH, httponly=True, samesite="strict"
        )
    return response


def error_page(
    request: Request,
    status_code: int,
    heading: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The console's error page (``staff/error.html``)."""
    response = render(
        request,
        "staff/error.html",
        {"heading": heading, "message": message, "status_code": status_code},
        status_code,
    )
    response.headers.update(headers or {})
    return response
