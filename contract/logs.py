"""The log line every process writes, and the request id they pass on to each other.

The API, Rasa and the action server write one JSON object a line on their standard output
(``MESO_LOG_FORMAT=json``, the default; ``text`` gives a developer's readable lines)::

    {"time": "2026-12-06T10:15:02.123Z", "level": "INFO", "service": "api", "pid": 4242,
     "logger": "api.access", "message": "POST /api/v1/conversations/{conversation_id}/messages 200 in 412 ms",
     "request_id": "9f1c...", "method": "POST", "route": "...", "status": 200, "ms": 412}

A request id names one request to the API and everything done for it: the API takes the
one its trusted reverse proxy sent (``X-Request-ID``; nginx's ``$request_id``) or makes one,
answers with it, and sends it on to Rasa's channel, which sends it on with each call to the
action server. Each process keeps it in :data:`request_id` while it works on that request,
so every line logged meanwhile carries it, whoever logs it.

What a line never holds: message text, contact details, a conversation's id or token.
The processes' own lines are written that way; Rasa's and rasa_sdk's debug lines quote
message text, so the JSON format never writes a line below INFO from them or from Sanic
(:data:`QUIET_BELOW_INFO`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any, Dict, Optional

REQUEST_ID_HEADER = "X-Request-ID"
"""The header carrying the request id, from the reverse proxy to the API and on to Rasa and
the action server (and back to the client on every API response)."""
FORMAT_ENV = "MESO_LOG_FORMAT"
"""``json`` (the default) or ``text``."""
FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
QUIET_BELOW_INFO = ("rasa", "rasa_sdk", "sanic")
"""Loggers (and their children) whose lines below INFO the JSON format drops: Rasa's and
rasa_sdk's debug lines quote what the patient wrote."""
FIELDS = "fields"
"""The ``extra`` key whose dict a line adds to its JSON object: ``logger.info(..., extra={FIELDS:
{"status": 200}})``. Its keys never replace the standard ones."""

HANDLER = "meso"
"""The name of the one handler (and its formatter and filter) in :func:`logging_config`."""

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STANDARD = ("time", "level", "service", "pid", "logger", "message", "request_id", "error")

request_id: ContextVar[Optional[str]] = ContextVar("meso_request_id", default=None)
"""The id of the request this task is working for (None outside any request)."""


def new_request_id() -> str:
    """A fresh request id: 32 hexadecimal digits, like nginx's ``$request_id``."""
    return secrets.token_hex(16)


def accepted_request_id(value: Optional[str]) -> Optional[str]:
    """``value`` when it can serve as a request id (1-64 of ``A-Z a-z 0-9 . _ : -``), else None:
    an id from elsewhere never brings spaces, quotes or line breaks into a log."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return None


def log_format(environ: Optional[Dict[str, str]] = None) -> str:
    """The format :data:`FORMAT_ENV` names; ValueError for any other value."""
    value = (os.environ if environ is None else environ).get(FORMAT_ENV, "") or "json"
    if value not in FORMATS:
        raise ValueError(f"{FORMAT_ENV} must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def format_refused(environ: Optional[Dict[str, str]] = None) -> Optional[str]:
    """Why the format :data:`FORMAT_ENV` names cannot be used, or None: each launcher checks
    this before it starts anything."""
    try:
        log_format(environ)
    except ValueError as exc:
        return str(exc)
    return None


class RequestIdFilter(logging.Filter):
    """Stamps each line with the current :data:`request_id` (``-`` when none); with ``quiet``,
    drops the lines below INFO of :data:`QUIET_BELOW_INFO`."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__()
        self._quiet = quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if self._quiet and record.levelno < logging.INFO and _quieted(record.name):
            return False
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get() or "-"
        return True


def _quieted(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in QUIET_BELOW_INFO)


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring); ``service`` names the process."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "service": self.service,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid and rid != "-":
            line["request_id"] = rid
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in _STANDARD:
                    line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["error"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _utc(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


def logging_config(service: str, level: str = "INFO", fmt: Optional[str] = None) -> Dict[str, Any]:
    """The ``logging.config.dictConfig`` of process ``service``: one handler on standard
    output, in ``fmt`` (default: :func:`log_format`), on the root logger at ``level``.

    :data:`HANDLER` names the handler, for a library that must be given it by name.
    """
    fmt = fmt or log_format()
    formatter: Dict[str, Any] = (
        {"()": JsonFormatter, "service": service} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {HANDLER: {"()": RequestIdFilter, "quiet": fmt == "json"}},
        "formatters": {HANDLER: formatter},
        "handlers": {HANDLER: {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                               "formatter": HANDLER, "filters": [HANDLER]}},
        "root": {"level": level.upper(), "handlers": [HANDLER]},
    }
