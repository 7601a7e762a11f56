"""The action server, locked: rasa_sdk's app with a shared secret on every call but ``/health``.

rasa_sdk's Sanic app answers anyone. ``python -m bot.action_server --actions actions --port
5055`` (what ``ops/services.py`` starts) builds the same app (every module under
``actions/`` registered) and adds a request middleware: a call without
``Authorization: Bearer <MESO_ACTION_TOKEN>`` gets 401 before rasa_sdk sees it (compared in
constant time). Rasa sends the header from its endpoints file (``action_endpoint.headers``,
written by ``ops.services.write_endpoints`` as ``${MESO_ACTION_TOKEN}``, filled by Rasa from
its environment). ``/health`` stays open for readiness checks; it says nothing.

The secret comes from the environment only, never from the command line (``ps`` shows
arguments to every user). Without it the server does not start.

``rasa run actions`` (a developer's unlocked action server with the root ``endpoints.yml``)
is unchanged.

Each call is logged in one line with its request id (``bot.logs``, ``contract.logs``): the id
of the API request that led Rasa to make it.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys
import time
import types
from typing import Awaitable, Callable, List, Optional, Union

TOKEN_ENV = "MESO_ACTION_TOKEN"
"""Environment variable holding the shared secret (ops/services.py generates one per start)."""
OPEN_PATHS = frozenset({"/health"})
"""Paths answered without the secret."""
SCHEME = "Bearer"

logger = logging.getLogger(__name__)


def authorised(header: Optional[str], token: str) -> bool:
    """True when ``header`` (the Authorization header, or None) is ``Bearer <token>``.

    Constant-time in the secret's content; an empty ``token`` authorises nothing.
    """
    if not token or not header:
        return False
    return hmac.compare_digest(header.encode("utf-8"), f"{SCHEME} {token}".encode("utf-8"))


def token_check(token: str) -> Callable[..., Awaitable[object]]:
    """The request middleware: None (go on) or a 401 response."""
    if not token:
        raise ValueError(f"the action server needs a secret ({TOKEN_ENV})")
    from sanic import response

    async def require_token(request):  # type: ignore[no-untyped-def]
        if request.path in OPEN_PATHS or authorised(request.headers.get("authorization"), token):
            return None
        logger.warning("action server: %s %s refused (no valid token)", request.method, request.path)
        return response.json({"error": "unauthorised"}, status=401,
                             headers={"WWW-Authenticate": SCHEME})

    return require_token


def request_log() -> tuple[Callable[..., Awaitable[None]], Callable[..., Awaitable[None]]]:
    """The request and response middleware giving each call its request id (Rasa's, from
    ``X-Request-ID``, else a new one) and logging one line when it is answered: path, status
    and time (``/health`` at DEBUG). Never the body: it holds the conversation."""
    from bot.logs import working_for
    from contract.logs import FIELDS, REQUEST_ID_HEADER, request_id

    async def take_id(request):  # type: ignore[no-untyped-def]
        request.ctx.started = time.perf_counter()
        # Set on every call: calls on one kept-alive connection share a task (and a context).
        request_id.set(working_for(request.headers))

    async def log_line(request, response):  # type: ignore[no-untyped-def]
        started = getattr(request.ctx, "started", None)
        ms = round((time.perf_counter() - started) * 1000) if started is not None else 0
        level = logging.DEBUG if request.path in OPEN_PATHS else logging.INFO
        logger.log(level, "action server: %s %s %d in %d ms", request.method, request.path,
                   response.status, ms,
                   extra={FIELDS: {"method": request.method, "route": request.path,
                                   "status": response.status, "ms": ms}})
        rid = request_id.get()
        if rid is not None:
            response.headers[REQUEST_ID_HEADER] = rid

    return take_id, log_line


def create_app(
    token: str,
    actions: Union[str, types.ModuleType] = "actions",
    cors_origins: Union[str, List[str], None] = None,
):  # type: ignore[no-untyped-def]
    """rasa_sdk's app (every action of ``actions`` registered), refusing calls without ``token``."""
    from rasa_sdk.endpoint import create_app as sdk_app

    app = sdk_app(actions, cors_origins=cors_origins)
    take_id, log_line = request_log()
    app.register_middleware(take_id, "request")  # first: a refusal has its id too
    app.register_middleware(token_check(token), "request")
    app.register_middleware(log_line, "response")
    return app


def main(argv: Optional[List[str]] = None) -> int:
    """Start the locked action server; the arguments are ``rasa run actions``'s."""
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.endpoint import create_argument_parser, create_ssl_context
    from rasa_sdk.plugin import plugin_manager

    from bot.logs import configure as configure_logs
    from bot.process_tuning import ACTION_SERVER_UNUSED, freeze_startup_objects, skip_unused_frameworks
    from contract.logs import format_refused

    skip_unused_frameworks(ACTION_SERVER_UNUSED)  # before the actions import spaCy
    args = create_argument_parser().parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"error: set {TOKEN_ENV} (the secret Rasa sends in its action_endpoint headers)",
              file=sys.stderr)
        return 2
    refused = format_refused()
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    configure_logs("actions", args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file,
                                 args.loglevel, args.logging_config_file)

    app = create_app(token, args.actions or "actions", args.cors)  # loads the knowledge base
    freeze_startup_objects()
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    host = os.environ.get("SANIC_HOST", "127.0.0.1")
    logger.info("Action server (token required) on %s:%s", host, args.port)
    app.run(host, args.port, ssl=ssl_context, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
