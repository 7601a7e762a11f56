"""Error answers of the staff console: HTML pages, never the public API's JSON.

``install(app)`` registers the handlers: a :class:`StaffResponse` raised by a dependency is
sent as it is, and an HTTP error (404, 405, ...) on a ``/staff`` path becomes the console's
error page. Elsewhere FastAPI's own handling is kept.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from api.staff.templating import STAFF_PATH, error_page

HEADINGS: dict[int, str] = {
    400: "Something in the request was not right",
    403: "You cannot do this",
    404: "Page not found",
    405: "This address does not take that kind of request",
}
BAD_REQUEST = (
    "Some of what was sent is not valid, so nothing was changed. Go back and try again."
)
NOT_FOUND = "There is no such page in the staff console."
SERVER_ERROR = (
    "Something went wrong on our side. Your last change may not have been saved: check, and "
    "try again in a minute. If it keeps happening, tell whoever runs the console."
)

logger = logging.getLogger(__name__)


class StaffResponse(Exception):
    """Raised by a staff dependency to answer at once with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def is_staff_path(path: str) -> bool:
    return path == STAFF_PATH or path.startswith(STAFF_PATH + "/")


def staff_bad_request(request: Request) -> Response:
    return error_page(request, 400, HEADINGS[400], BAD_REQUEST)


def staff_server_error(request: Request, status_code: int) -> Response:
    """The console's page for a failure of ours (500, or 503 when the database is down).

    Falls back to plain text if the page itself cannot be drawn (a broken template).
    """
    try:
        return error_page(request, status_code, "Something went wrong", SERVER_ERROR)
    except Exception as exc:  # the error page must never fail in turn
        logger.error("staff error page failed: %s", type(exc).__name__)
        return PlainTextResponse(SERVER_ERROR, status_code=status_code)


async def _staff_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StaffResponse)
    return exc.response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not is_staff_path(request.url.path):
        return await http_exception_handler(request, exc)
    message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else NOT_FOUND
    heading = HEADINGS.get(exc.status_code, "Something went wrong")
    return error_page(request, exc.status_code, heading, str(message), dict(exc.headers or {}))


def install(app: FastAPI) -> None:
    app.add_exception_handler(StaffResponse, _staff_response)
    app.add_exception_handler(HTTPException, _http_error)
