"""The log lines of Rasa and the action server, and the request id carried between them.

``contract.logs`` says what a line holds and how a request id travels. This applies it to the
two bot processes, which otherwise log as Rasa, rasa_sdk and Sanic each set up:

* :func:`configure` (``bot.rasa_server`` and ``bot.action_server`` call it once their
  command line is read): one handler on standard output in the shared format, Python's
  warnings logged through it rather than printed, and Sanic's loggers given that same
  handler (Rasa's server builds its Sanic app with Sanic's own logging set-up, then stops
  Sanic's loggers passing lines on; without this their errors would come out in Sanic's
  format on standard error).
* :func:`send_request_ids` (Rasa): each call to the action server carries the request id of
  the turn it is made for (``X-Request-ID``); the meso channel (``bot/channels/meso.py``)
  takes the id from the API's call.
* :func:`working_for`: the id a request names, to keep while serving it.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any, Mapping, Optional, Text

from contract.logs import (
    HANDLER, REQUEST_ID_HEADER, accepted_request_id, logging_config, new_request_id, request_id,
)

SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access")
SANIC_LEVEL = "WARNING"
"""Sanic's own lines below this are left out (its access lines name paths with conversation ids)."""


def configure(service: str, level: Optional[int] = None) -> None:
    """Log in the shared format (``contract.logs``) as ``service``, at ``level`` (default INFO)."""
    from sanic import log

    config = with_sanic(logging_config(service, logging.getLevelName(level or logging.INFO)))
    # Sanic(...) applies its defaults when it builds an app with its own logging set-up (Rasa's
    # server does): they become this same configuration.
    log.LOGGING_CONFIG_DEFAULTS.clear()
    log.LOGGING_CONFIG_DEFAULTS.update(config)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def with_sanic(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with Sanic's loggers writing through its handler (and passing nothing on,
    as Rasa would have them anyway)."""
    loggers = {name: {"level": SANIC_LEVEL, "handlers": [HANDLER], "propagate": False}
               for name in SANIC_LOGGERS}
    return {**config, "loggers": {**config.get("loggers", {}), **loggers}}


def working_for(headers: Mapping[str, str]) -> str:
    """The request id ``headers`` carry (``X-Request-ID``, if well formed), else a new one."""
    return accepted_request_id(headers.get(REQUEST_ID_HEADER)) or new_request_id()


def send_request_ids() -> None:
    """Rasa's calls to its endpoints (the action server's above all) carry the current
    request id. Applied once, by ``bot.rasa_server``."""
    from rasa.utils.endpoints import EndpointConfig

    request = EndpointConfig.request
    if getattr(request, "sends_request_ids", False):
        return

    async def request_with_id(self: Any, method: Text = "post", subpath: Optional[Text] = None,
                              content_type: Optional[Text] = "application/json",
                              compress: bool = False, **kwargs: Any) -> Any:
        rid = request_id.get()
        if rid is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), REQUEST_ID_HEADER: rid}
        return await request(self, method, subpath, content_type, compress, **kwargs)

    request_with_id.sends_request_ids = True  # type: ignore[attr-defined]
    request_with_id.__wrapped__ = request  # type: ignore[attr-defined]
    EndpointConfig.request = request_with_id  # type: ignore[method-assign]
