"""The FastAPI application.

``create_app()`` builds an app without doing any work; the lifespan does all set-up (settings,
clinic facts, database and its migrations, the shared HTTP client, the purge of conversations
without transcript consent) and tear-down. Start it with::

    .venv-api/bin/uvicorn api.main:app --host 127.0.0.1 --port 8000 --no-proxy-headers

(forwarded headers count only from ``MESO_TRUSTED_PROXIES``: ``api.proxies``)
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import swagger_ui_bundle
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import create_engine, create_sessionmaker, require_head, upgrade_head
from api.deps import Runtime
from api.locks import conversation_locks
from api.http_transport import LeanTransport
from api.rasa_client import CONNECTIONS, RasaClient, note_absent_sniffio
from api.ratelimit import RateLimits
from api.background import stop as stop_background
from api.metrics import Metrics
from api.request_log import RequestLog, route_of
from api.notifications.channels import channels as notification_channels
from api.notifications.dispatch import Dispatcher
from api.retention import purge_forever
from api.scrub import scrub_forever
from api.routes import chat, feedback, health, metrics, staff, summary, widget
from api.schemas import UNAVAILABLE_DETAIL
from api.proxies import TrustedProxies
from api.settings import PACKAGE_DIR, Settings
from api.sources import load_sources
from api.staff.errors import install as install_staff_errors
from api.staff.errors import is_staff_path, staff_bad_request, staff_server_error
from api import text_hygiene
from api.tracker_store import TrackerStore
from api.safety_net import load as load_safety_net
from api.signed_links import SummaryLinks
from api.signed_links import new_key as new_link_key
from api.write_behind import WriteBehind
from bot.kb.loader import load_clinic
from contract.logs import REQUEST_ID_HEADER, request_id

logger = logging.getLogger("api")

STATIC_DIR = PACKAGE_DIR / "static"
WIDGET_DIR = STATIC_DIR / "widget"
"""The embeddable widget (``/widget/widget.js``, ``/widget/widget.css``)."""
DEMO_DIR = STATIC_DIR / "demo"
"""A mock clinic website embedding the widget: ``/`` is its home page, the rest under ``/demo/``."""
CSP = "default-src 'self'"
STAFF_CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
"""The staff console may not be framed (clickjacking), nor post forms elsewhere."""
DOCS_PATHS = ("/docs",)
"""Swagger UI starts with an inline script, so its page gets no CSP."""
DOCS_GATED = ("/docs", "/redoc", "/openapi.json")
"""Served only with ``settings.api_docs`` (these paths and everything under them)."""
HSTS = b"max-age=31536000; includeSubDomains"
"""Strict-Transport-Security when the public URL is https: one year, subdomains too."""
SWAGGER_UI_DIR = Path(swagger_ui_bundle.swagger_ui_path)
"""Swagger UI's files, served by the API itself: the docs work without internet access."""

INTERNAL_ERROR_DETAIL = (
    "Something went wrong on our side. Please try again, or contact the clinic directly."
)


def _configure_logging(level: str) -> None:
    logger.setLevel(level.upper())
    # httpx logs every request URL at INFO, and Rasa's /status URL carries the token.
    for name in ("httpx", "httpcore"):
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def security_headers(path: str, hsts: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers every response on ``path`` carries (see :class:`SecurityHeaders`);
    ``hsts``: the public URL is https (``settings.hsts``)."""
    headers = [(b"x-content-type-options", b"nosniff")]
    if hsts:
        headers.append((b"strict-transport-security", HSTS))
    staff = is_staff_path(path)
    # The console's forms need a real Origin header (checked against CSRF), which browsers
    # send as "null" under no-referrer; same-origin still tells no other site.
    headers.append((b"referrer-policy", b"same-origin" if staff else b"no-referrer"))
    if staff:
        headers.append((b"content-security-policy", STAFF_CSP.encode()))
        headers.append((b"x-frame-options", b"DENY"))
    elif not path.startswith(DOCS_PATHS):
        headers.append((b"content-security-policy", CSP.encode()))
    if path.startswith("/api/") or staff:
        headers.append((b"cache-control", b"no-store"))
    return headers


def _with_security_headers(request: Request, response: Response) -> Response:
    """For answers made outside the middleware stack (an unhandled error's 500)."""
    runtime = getattr(request.app.state, "runtime", None)
    hsts = bool(runtime and runtime.settings.hsts)
    for name, value in security_headers(request.url.path, hsts):
        response.headers[name.decode()] = value.decode()
    rid = request_id.get()
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


class SecurityHeaders:
    """Pure ASGI middleware adding security headers to every response.

    CSP ``default-src 'self'`` everywhere but the interactive docs; ``Cache-Control: no-store``
    on the API and the staff console (transcripts are health data and must not stay in the
    browser); the staff console cannot be framed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        runtime: Runtime | None = (
            getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        )
        hsts = bool(runtime and runtime.settings.hsts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *security_headers(path, hsts)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DocsGate:
    """404 for the API documentation (``DOCS_GATED``, ``/docs-assets/``) unless
    ``settings.api_docs`` is on: production does not describe its API to everyone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def gated(path: str) -> bool:
        return path.startswith("/docs") or any(
            path == p or path.startswith(p + "/") for p in DOCS_GATED
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.gated(scope["path"]):
            runtime: Runtime | None = (
                getattr(scope["app"].state, "runtime", None) if "app" in scope else None
            )
            if runtime is None or not runtime.settings.api_docs:
                response = JSONResponse({"detail": "Not Found"}, status_code=404)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ApiCors:
    """CORS for ``/api/`` only, for the origins in ``settings.widget_origins``.

    The widget on a clinic's own site calls the API from another origin: GET and POST with a
    JSON body, no cookies or credentials. Retry-After is readable (429). Other paths (the
    widget's files, pages) need no CORS. The origins are read from the running app's
    settings, so nothing is configured before the lifespan starts.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: tuple[tuple[str, ...], ASGIApp] | None = None

    def _cors_for(self, origins: tuple[str, ...]) -> ASGIApp:
        if self._cors is None or self._cors[0] != origins:
            cors = CORSMiddleware(
                self.app,
                allow_origins=origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Content-Type", "Authorization"],
                allow_credentials=False,
                expose_headers=["Retry-After"],
                max_age=600,
            )
            self._cors = (origins, cors)
        return self._cors[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime | None = (
            getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        )
        if (
            scope["type"] != "http"
            or not scope["path"].startswith("/api/")
            or runtime is None
            or not runtime.settings.widget_origins
        ):
            await self.app(scope, receive, send)
            return
        await self._cors_for(tuple(runtime.settings.widget_origins))(scope, receive, send)


class BodySizeLimit:
    """Pure ASGI middleware refusing request bodies over ``settings.max_body_bytes`` with 413.

    The body is read here (it is small) and replayed to the app, so a body sent without a
    Content-Length is limited too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": "The request is too large."}, status_code=status.HTTP_413_CONTENT_TOO_LARGE
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime | None = (
            getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        )
        if (
            scope["type"] != "http"
            or scope["method"] not in {"POST", "PUT", "PATCH"}
            or runtime is None
        ):
            await self.app(scope, receive, send)
            return
        limit = runtime.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def describe_validation_error(errors: list[dict[str, Any]]) -> str:
    """Turn pydantic's error list into one sentence a person can act on."""
    if not errors:
        return "The request is not valid."
    error = errors[0]
    kind: str = error.get("type", "")
    where = [str(part) for part in error.get("loc", ()) if part != "body"]
    field = ".".join(where)
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if not field and kind == "missing":
        return "The request needs a JSON body."
    if not field and kind in {"model_attributes_type", "dict_type", "model_type"}:
        return "The request body must be a JSON object."
    if kind == "missing":
        return f'The field "{field}" is required.'
    if kind == "string_type":
        return f'The field "{field}" must be a string.'
    if kind == "bool_type":
        return f'The field "{field}" must be true or false.'
    if kind == text_hygiene.EMPTY_ERROR:
        return str(error.get("msg", "The text is empty."))
    message = str(error.get("msg", "is not valid")).rstrip(".")
    return f'The field "{field}" is not valid: {message}.' if field else f"{message}."


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_staff_path(request.url.path):
        return staff_bad_request(request)
    return JSONResponse(
        {"detail": describe_validation_error(list(exc.errors()))},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    logger.error("database error on %s %s: %s", request.method, route_of(request.scope), type(exc).__name__)
    if is_staff_path(request.url.path):
        return staff_server_error(request, status.HTTP_503_SERVICE_UNAVAILABLE)
    runtime = getattr(request.app.state, "runtime", None)
    detail = runtime.safety_net.unavailable(UNAVAILABLE_DETAIL) if runtime else UNAVAILABLE_DETAIL
    return JSONResponse({"detail": detail}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled %s on %s %s", type(exc).__name__, request.method, route_of(request.scope))
    # Starlette sends this 500 from its outermost middleware, past SecurityHeaders.
    if is_staff_path(request.url.path):
        response = staff_server_error(request, status.HTTP_500_INTERNAL_SERVER_ERROR)
    else:
        response = JSONResponse(
            {"detail": INTERNAL_ERROR_DETAIL}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return _with_security_headers(request, response)


def _summary_links(config: Settings) -> SummaryLinks:
    """The summary-link signer: the configured key, or a random one for this process."""
    secret = config.link_secret.get_secret_value()
    if not secret:
        logger.warning(
            "MESO_LINK_SECRET is not set: summary links made now stop working at restart"
        )
    key = secret.encode() if secret else new_link_key()
    return SummaryLinks(key, timedelta(minutes=config.summary_link_minutes))


def _notifier(
    config: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, across_workers: bool
) -> Dispatcher | None:
    """The staff notifications' dispatcher, or None (logged) when no channel is set."""
    configured = notification_channels(config)
    if not configured:
        logger.warning("no notification channel is set (MESO_NOTIFY_EMAIL_TO, "
                       "MESO_NOTIFY_WEBHOOK_URL): staff are not told of red flags at once")
        return None
    if not config.public_url:
        logger.warning("MESO_PUBLIC_URL is not set: notifications link to the console by path only")
    remind = config.notify_remind_minutes
    return Dispatcher(sessionmaker, configured, console_url=config.public_url,
                      remind_after=timedelta(minutes=remind) if remind else None,
                      across_workers=across_workers)


def create_app(
    settings: Settings | None = None,
    *,
    rasa_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app. Nothing is read or opened until the lifespan starts.

    ``settings`` defaults to ``Settings()`` (environment, prefix ``MESO_``), read at start-up.
    ``rasa_transport`` replaces the network under the Rasa client (tests pass an
    ``httpx.MockTransport`` standing in for Rasa and the action server).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings if settings is not None else Settings()
        _configure_logging(config.log_level)
        clinic = load_clinic(config.clinic_file)
        safety_net = load_safety_net(config.domain_file, clinic)
        engine = create_engine(config.database_url)
        tracker = TrackerStore(config.tracker_url)
        locks = conversation_locks(config.database_url)
        links = _summary_links(config)
        limits = RateLimits(config.redis_url, config.link_secret.get_secret_value().encode())
        try:
            if config.migrate_on_start:
                await upgrade_head(engine)
            else:
                await require_head(engine)
            note_absent_sniffio()
            transport = rasa_transport or LeanTransport(httpx.AsyncHTTPTransport(limits=CONNECTIONS))
            async with RasaClient(
                transport,
                rasa_url=config.rasa_url,
                action_server_url=config.action_server_url,
                token=config.rasa_token.get_secret_value(),
                timeout=config.rasa_timeout,
                check_timeout=config.readiness_timeout,
            ) as rasa:
                app.state.runtime = Runtime(
                    settings=config,
                    engine=engine,
                    sessionmaker=create_sessionmaker(engine),
                    rasa=rasa,
                    locks=locks,
                    message_limiter=limits.limiter(
                        "messages", config.rate_limit_messages_per_minute
                    ),
                    conversation_limiter=limits.limiter(
                        "conversations", config.rate_limit_conversations_per_minute
                    ),
                    summary_limiter=limits.limiter(
                        "summaries", config.rate_limit_summaries_per_minute
                    ),
                    history_limiter=limits.limiter(
                        "history", config.rate_limit_history_per_minute
                    ),
                    sources=load_sources(config.knowledge_dir),
                    clinic=clinic,
                    tracker=tracker,
                    login_limiter=limits.limiter("logins", config.login_attempts_per_minute),
                    safety_net=safety_net,
                    write_behind=WriteBehind(links, config.resume_hours),
                    summary_links=links,
                    metrics=app.state.metrics,
                )
                runtime = app.state.runtime
                purge = asyncio.create_task(
                    purge_forever(
                        runtime.sessionmaker,
                        tracker,
                        idle=timedelta(minutes=config.transcript_idle_minutes),
                        interval=config.purge_interval_seconds,
                        locks=runtime.locks,
                        across_workers=locks.shared,
                    ),
                    name="purge-unconsented",
                )
                write_behind = asyncio.create_task(
                    runtime.write_behind.run_forever(runtime.sessionmaker, runtime.locks),
                    name="write-behind",
                )
                background = [purge, write_behind]
                notifier = _notifier(config, runtime.sessionmaker, across_workers=locks.shared)
                if notifier is not None:
                    background.append(asyncio.create_task(notifier.run_forever(), name="notify"))
                if config.scrub_interval_hours and "postgresql" in {
                    engine.dialect.name, tracker.dialect
                }:
                    background.append(asyncio.create_task(
                        scrub_forever(
                            engine,
                            runtime.sessionmaker,
                            tracker,
                            interval=config.scrub_interval_hours * 3600,
                            across_workers=locks.shared,
                        ),
                        name="scrub",
                    ))
                logger.info(
                    "API ready (database %s; conversation locks %s; rate limits %s)",
                    engine.dialect.name,
                    "shared" if locks.shared else "in this process",
                    "shared through Redis" if limits.shared else "in this process",
                )
                # What is alive now lives as long as the app: kept out of the garbage
                # collector's full walks, which took about 60 ms (bot/process_tuning.py
                # does the same for Rasa and the action server). Given back at the end.
                gc.freeze()
                try:
                    yield
                finally:
                    gc.unfreeze()
                    for task in background:
                        await stop_background(task)
                    if notifier is not None:
                        await notifier.aclose()
                    app.state.runtime = None
        finally:
            await limits.close()
            await locks.close()
            await tracker.dispose()
            await engine.dispose()

    app = FastAPI(
        title="Mesotherapy assistant: public chat API",
        version="1.0.0",
        description="Chat with the clinic's assistant about mesotherapy for hair loss. "
        "`POST /api/v1/conversations` returns the conversation's `token`; every later call on "
        "that conversation sends it as `Authorization: Bearer <token>` (the id alone opens "
        "nothing). "
        'Every error response is JSON `{"detail": str}`.',
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(text_hygiene.Utf8JsonBody)  # inside BodySizeLimit: bounded body
    app.add_middleware(BodySizeLimit)
    app.add_middleware(DocsGate)  # inside SecurityHeaders: its 404 has them too
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ApiCors)  # refusals (413, 429, ...) are readable cross-origin
    # Every answer logged and counted; inside TrustedProxies, it knows whose X-Request-ID counts.
    app.state.metrics = Metrics()
    app.add_middleware(RequestLog, metrics=app.state.metrics)
    # Outermost: every layer below sees the client and scheme MESO_TRUSTED_PROXIES allow.
    app.add_middleware(TrustedProxies)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    # asyncpg reports a PostgreSQL it cannot connect to as the OS error itself, past
    # SQLAlchemy's wrapping: nothing else in the app lets one escape.
    app.add_exception_handler(ConnectionError, _database_error)
    app.add_exception_handler(Exception, _internal_error)
    install_staff_errors(app)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(summary.router)
    app.include_router(summary.page_router)
    app.include_router(feedback.router)
    app.include_router(widget.router)
    app.include_router(staff.router)
    app.include_router(metrics.router)

    @app.get("/", include_in_schema=False)
    async def demo_home_page() -> FileResponse:
        return FileResponse(DEMO_DIR / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: documentation",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/widget", StaticFiles(directory=WIDGET_DIR), name="widget")
    app.mount("/demo", StaticFiles(directory=DEMO_DIR, html=True), name="demo")
    return app


app = create_app()
