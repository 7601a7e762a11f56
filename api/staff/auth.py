"""Who may see a staff page: the FastAPI dependencies every staff route uses.

* ``StaffDep``: any active member of staff with a live session (second factor given). Someone
  who must use a second factor (``MESO_STAFF_REQUIRE_TOTP``: admins, or all) but has not set
  one up is sent to set it up (``/staff/account/totp``) from every page.
* ``SignedInDep``: the same without that last condition (the set-up pages and logout).
* ``AdminDep``: an admin; anyone else gets a 403 page.
* ``CsrfDep``: a POST form's ``csrf_token`` field must equal the session's, and an Origin
  header, when sent, must be this site's; else a 403 page.
* ``RecentAuth``: the password or a code was given in this session within
  ``MESO_STAFF_REAUTH_MINUTES``; else a 303 to ``/staff/reauth``, which comes back (a GET
  to the same URL; after a POST, a GET of the same path, i.e. its confirmation page).
  ``RecentAuthDep`` always asks; ``PersonalDetailsAuthDep`` only when an admin asks for an
  export with personal details (``?personal=1``).

A session ends after ``MESO_STAFF_IDLE_MINUTES`` idle or ``MESO_STAFF_SESSION_MAX_HOURS``
after sign-in.

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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import RuntimeDep, SessionDep
from api.models import StaffSession, StaffUser, utcnow
from api.settings import Settings
from api.staff import totp
from api.staff.errors import StaffResponse
from api.staff.sessions import find_session
from api.staff.templating import STAFF_PATH, error_page

COOKIE_NAME = "meso_staff"
LOGIN_PATH = "/staff/login"
TOTP_PATH = "/staff/login/totp"
ENROL_PATH = "/staff/account/totp"
"""Setting up the second factor (where someone who must have one is sent until they do)."""
REAUTH_PATH = "/staff/reauth"
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
        and not value.startswith(REAUTH_PATH)
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


def clear_login_cookie(response: Response, settings: Settings) -> None:
    """The login form's pre-session cookie, cleared with the flags it was set with."""
    response.delete_cookie(LOGIN_COOKIE, **_cookie_flags(settings, LOGIN_PATH))


def here(request: Request) -> str:
    """The request's path and query (where to come back to)."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def login_redirect(request: Request, settings: Settings) -> RedirectResponse:
    """303 to the login page; a GET comes back to its page after login."""
    url = LOGIN_PATH
    if request.method == "GET":
        url += "?" + urlencode({"next": here(request)})
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


async def live_session(
    db: AsyncSession, token: str | None, settings: Settings
) -> StaffSession | None:
    """The live session of a cookie token (idle and absolute limits applied), or None."""
    return await find_session(
        db,
        token,
        now=utcnow(),
        idle=timedelta(minutes=settings.staff_idle_minutes),
        lifetime=timedelta(hours=settings.staff_session_max_hours),
    )


async def staff_session(
    request: Request, db: SessionDep, runtime: RuntimeDep
) -> StaffSession:
    """The request's live session (its second factor may still be pending), or a redirect."""
    settings = runtime.settings
    row = await live_session(db, request.cookies.get(COOKIE_NAME), settings)
    if row is None:
        raise StaffResponse(login_redirect(request, settings))
    await db.commit()  # last_seen_at
    request.state.staff_session = row
    if not row.mfa_pending:
        request.state.staff_user = row.user
    return row


StaffSessionDep = Annotated[StaffSession, Depends(staff_session)]


async def require_signed_in(request: Request, row: StaffSessionDep) -> StaffUser:
    """Password and (when the account has one) code given; the second factor may still be
    to set up."""
    if row.mfa_pending:
        raise StaffResponse(RedirectResponse(TOTP_PATH, status_code=303))
    return row.user


SignedInDep = Annotated[StaffUser, Depends(require_signed_in)]


def must_enrol(user: StaffUser, settings: Settings) -> bool:
    """Whether ``user`` must set up a second factor before anything else."""
    return user.totp_secret is None and totp.required(user, settings)


def enrol_redirect(request: Request) -> RedirectResponse:
    url = ENROL_PATH
    if request.method == "GET":
        url += "?" + urlencode({"next": here(request)})
    return RedirectResponse(url, status_code=303)


async def require_staff(
    request: Request, runtime: RuntimeDep, user: SignedInDep
) -> StaffUser:
    """Any active member of staff who has signed in completely, with a second factor where
    one is required."""
    if must_enrol(user, runtime.settings):
        raise StaffResponse(enrol_redirect(request))
    return user


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


PERSONAL_PARAM = "personal"
"""The exports' query parameter asking for personal details (``api.routes.staff.export``)."""
_YES = frozenset({"1", "on", "true", "yes"})


def reauth_due(row: StaffSession, settings: Settings, now: datetime) -> bool:
    """Whether the session's last password or code is older than ``MESO_STAFF_REAUTH_MINUTES``."""
    last = row.authenticated_at or row.created_at
    return last <= now - timedelta(minutes=settings.staff_reauth_minutes)


def reauth_redirect(request: Request) -> RedirectResponse:
    """303 to the re-authentication page, which comes back to this GET (or, after a POST,
    to a GET of the same path)."""
    back = here(request) if request.method == "GET" else request.url.path
    return RedirectResponse(f"{REAUTH_PATH}?{urlencode({'next': back})}", status_code=303)


class RecentAuth:
    """A dependency: the member of staff, who gave their password or a code in this session
    within ``MESO_STAFF_REAUTH_MINUTES``; else a redirect to ``/staff/reauth``.

    ``when(request, user)``: ask only when it says so (None: always). Put it after
    ``AdminDep`` and ``CsrfDep`` in a route's parameters, so those refuse first.
    """

    def __init__(self, when: Callable[[Request, StaffUser], bool] | None = None) -> None:
        self.when = when

    async def __call__(
        self, request: Request, runtime: RuntimeDep, row: StaffSessionDep, user: StaffDep
    ) -> StaffUser:
        if self.when is not None and not self.when(request, user):
            return user
        if reauth_due(row, runtime.settings, utcnow()):
            raise StaffResponse(reauth_redirect(request))
        return user


def asks_for_personal_details(request: Request, user: StaffUser) -> bool:
    """An admin asking for an export with personal details (a reviewer is refused anyway,
    by the export itself)."""
    value = request.query_params.get(PERSONAL_PARAM, "").strip().lower()
    return user.is_admin and value in _YES


RecentAuthDep = Annotated[StaffUser, Depends(RecentAuth())]
PersonalDetailsAuthDep = Annotated[StaffUser, Depends(RecentAuth(asks_for_personal_details))]


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

