"""Who may see a staff page: the FastAPI dependencies every staff route uses.

* ``StaffDep``: any active member of staff with a live session (second factor given).
* ``AdminDep``: an admin; anyone else gets a 403 page.
* ``CsrfDep``: a POST form's ``csrf_token`` field must equal the session's, and an Origin
  header, when sent, must be this site's; else a 403 page.

Without a live session a GET is redirected (303) to ``/staff/login?next=<path>`` and a POST
to ``/staff/login``; nothing of the page is rendered. The dependencies answer by raising
:class:`api.staff.errors.StaffResponse`, which the app turns into that response.

The login form has its own CSRF token before any session exists (double submit: a
short-lived random token in a cookie on ``/staff/login`` and in the form), so a login
forced by another site is refused too.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from api.deps import RuntimeDep, SessionDep
from api.models import StaffSession, StaffUser, utcnow
from api.settings import Settings
from api.staff.errors import StaffResponse
from api.staff.sessions import find_session
from api.staff.templating import STAFF_PATH, error_page

COOKIE_NAME = "meso_staff"
LOGIN_PATH = "/staff/login"
TOTP_PATH = "/staff/login/totp"
LOGIN_COOKIE = "meso_staff_login"
"""The login form's pre-session CSRF token (``<issued unix time>.<random>``)."""
LOGIN_TOKEN_SECONDS = 2 * 3600
"""How long a login form stays usable."""
CSRF_FIELD = "csrf_token"

FORBIDDEN_HEADING = "You cannot open this page"
FORBIDDEN_MESSAGE = "This page is for administrators only."
CSRF_HEADING = "This form could not be accepted"
CSRF_MESSAGE = (
    "The form was out of date or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)


def safe_next(value: str | None) -> str:
    """Where to go after login: a path of the console, never another site."""
    if (
        value
        and value.startswith(STAFF_PATH)
        and not value.startswith(LOGIN_PATH)
        and "\\" not in value
        and not any(ch in value for ch in "\r\n")
        and (len(value) == len(STAFF_PATH) or value[len(STAFF_PATH)] in "/?")
    ):
        return value
    return STAFF_PATH


def _cookie_flags(settings: Settings, path: str = STAFF_PATH) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, Secure unless turned off, on ``path``."""
    return {
        "path": path,
        "httponly": True,
        "samesite": "strict",
        "secure": settings.staff_cookie_secure,
    }


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(COOKIE_NAME, token, **_cookie_flags(settings))


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE_NAME, **_cookie_flags(settings))


def login_redirect(request: Request, settings: Settings) -> RedirectResponse:
    """303 to the login page; a GET comes back to its page after login."""
    url = LOGIN_PATH
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url += "?" + urlencode({"next": target})
    response = RedirectResponse(url, status_code=303)
    if COOKIE_NAME in request.cookies:
        clear_session_cookie(response, settings)
    return response


def same_origin(request: Request) -> bool:
    """False when the request names an Origin other than this site's own.

    Hosts are compared, not schemes: behind a proxy that ends TLS the app sees http while
    the browser says https. ``Origin: null`` (a sandboxed or privacy-stripped request) is
    refused; the console's pages send ``Referrer-Policy: same-origin`` so browsers send
    the real origin on its own forms.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


async def form_field(request: Request, name: str) -> str:
    """One field of a posted form ('' when absent or the body is no form)."""
    try:
        form = await request.form()
    except Exception:  # a malformed body is simply a form without the field
        return ""
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def staff_session(
    request: Request, db: SessionDep, runtime: RuntimeDep
) -> StaffSession:
    """The request's live session (its second factor may still be pending), or a redirect."""
    settings = runtime.settings
    row = await find_session(
        db,
        request.cookies.get(COOKIE_NAME),
        now=utcnow(),
        idle=timedelta(minutes=settings.staff_idle_minutes),
    )
    if row is None:
        raise StaffResponse(login_redirect(request, settings))
    await db.commit()  # last_seen_at
    request.state.staff_session = row
    if not row.mfa_pending:
        request.state.staff_user = row.user
    return row


StaffSessionDep = Annotated[StaffSession, Depends(staff_session)]


async def require_staff(request: Request, row: StaffSessionDep) -> StaffUser:
    """Any active member of staff who has signed in completely."""
    if row.mfa_pending:
        raise StaffResponse(RedirectResponse(TOTP_PATH, status_code=303))
    return row.user


StaffDep = Annotated[StaffUser, Depends(require_staff)]


async def require_admin(request: Request, user: StaffDep) -> StaffUser:
    """An admin; anyone else gets the 403 page."""
    if not user.is_admin:
        raise StaffResponse(error_page(request, 403, FORBIDDEN_HEADING, FORBIDDEN_MESSAGE))
    return user


AdminDep = Annotated[StaffUser, Depends(require_admin)]


def csrf_refused(request: Request) -> StaffResponse:
    return StaffResponse(error_page(request, 403, CSRF_HEADING, CSRF_MESSAGE))


async def verify_csrf(request: Request, row: StaffSessionDep) -> None:
    """A POST must carry the session's token in its ``csrf_token`` field and no foreign Origin."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    sent = await form_field(request, CSRF_FIELD)
    if not same_origin(request) or not secrets.compare_digest(
        sent.encode(), row.csrf_token.encode()
    ):
        raise csrf_refused(request)


CsrfDep = Annotated[None, Depends(verify_csrf)]


def login_token(request: Request) -> str:
    """The login form's token: the browser's own while still fresh, else a new one."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    if _fresh_login_token(current):
        return current
    return f"{int(time.time())}.{secrets.token_urlsafe(24)}"


def _fresh_login_token(token: str) -> bool:
    issued, _, rest = token.partition(".")
    if not issued.isdigit() or len(rest) < 20:
        return False
    return 0 <= time.time() - int(issued) < LOGIN_TOKEN_SECONDS


def set_login_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=LOGIN_TOKEN_SECONDS, **_cookie_flags(settings, LOGIN_PATH)
    )


async def verify_login_csrf(request: Request) -> None:
    """The login form's pre-session check: the form's token equals the cookie's, still fresh."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = await form_field(request, CSRF_FIELD)
    if (
        not same_origin(request)
        or not _fresh_login_token(cookie)
        or not secrets.compare_digest(sent.encode(), cookie.encode())
    ):
        raise csrf_refused(request)


LoginCsrfDep = Annotated[None, Depends(verify_login_csrf)]

