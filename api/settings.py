"""Settings of the API process, read from environment variables prefixed ``MESO_``.

Every path default is derived from this file's location, never from the working directory.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PACKAGE_DIR: Path = Path(__file__).resolve().parent
"""The ``api`` package folder."""

REPO_ROOT: Path = PACKAGE_DIR.parent
"""The repository root (the folder holding ``pyproject.toml``)."""

DEFAULT_DB_PATH: Path = REPO_ROOT / "var" / "meso.db"

NonNegativeInt = Annotated[int, Field(ge=0)]


def normalise_database_url(url: str) -> str:
    """Return ``url`` with an asyncio driver, so one URL serves Rasa's SQL store and the API.

    ``sqlite:///x.db`` becomes ``sqlite+aiosqlite:///x.db`` and ``postgresql://...`` becomes
    ``postgresql+asyncpg://...``; a URL that already names a driver is kept as it is.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL (e.g. sqlite:////srv/meso.db)") from None
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class Settings(BaseSettings):
    """All configuration of the API. Environment variable = ``MESO_`` + field name, upper case."""

    model_config = SettingsConfigDict(env_prefix="MESO_", extra="ignore", frozen=True)

    var_dir: Path = Field(
        default=DEFAULT_DB_PATH.parent,
        description="Data folder (shared with the other processes); holds the default database.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; default: SQLite file meso.db in var_dir. SQLite files "
        "(and their folder) are created on start-up.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Bring the database to the newest migration at start-up. Off where "
        "several workers share one database: the migrations then run once, as their own step "
        "(python -m api.cli migrate, which make run calls first), and a worker refuses to "
        "start on a database that is not at the newest migration.",
    )
    redis_url: str = Field(
        default="",
        description="Redis URL (redis://[:password@]host:port/db) where every API worker counts "
        "the rate limits together; empty: each worker counts alone, in memory. A client's IP "
        "never reaches Redis, only a keyed hash of it (keyed by MESO_LINK_SECRET).",
    )
    rasa_url: str = Field(
        default="http://127.0.0.1:5005",
        description="Base URL of the Rasa server; of each replica, comma-separated, when "
        "several share one tracker store and lock store (a conversation stays on one while it "
        "answers).",
    )
    rasa_token: SecretStr = Field(
        default=SecretStr(""), description="Token of Rasa's HTTP API (its --auth-token)."
    )
    action_server_url: str = Field(
        default="http://127.0.0.1:5055",
        description="Base URL of the Rasa action server (of each, comma-separated), for "
        "/readyz: ready while one answers.",
    )
    rasa_timeout: float = Field(
        default=4.0, gt=0, description="Seconds to wait for one reply from Rasa before a 503."
    )
    readiness_timeout: float = Field(
        default=2.0, gt=0, description="Seconds allowed to each /readyz check."
    )
    max_text_chars: int = Field(
        default=1000, gt=0, description="Longest patient message, in characters after stripping."
    )
    rate_limit_messages_per_minute: NonNegativeInt = Field(
        default=30, description="Messages per minute per conversation; 0 disables the limit."
    )
    rate_limit_conversations_per_minute: NonNegativeInt = Field(
        default=60, description="New conversations per minute per client IP; 0 disables the limit."
    )
    rate_limit_summaries_per_minute: NonNegativeInt = Field(
        default=60,
        description="Summary page and summary.json requests per minute per client IP; "
        "0 disables the limit.",
    )
    rate_limit_history_per_minute: NonNegativeInt = Field(
        default=60,
        description="Conversation history requests per minute per client IP; 0 disables.",
    )
    knowledge_dir: Path = Field(
        default=REPO_ROOT / "knowledge",
        description="The knowledge folder (the bot's MESO_KNOWLEDGE_DIR); its sources.yml gives "
        "the titles of the sources a summary cites.",
    )
    clinic_file: Path = Field(
        default=REPO_ROOT / "clinic.yml",
        description="The clinic's facts (the bot's MESO_CLINIC_FILE), read at start-up for "
        "the widget's configuration.",
    )
    domain_file: Path = Field(
        default=REPO_ROOT / "domain.yml",
        description="The bot's domain: the API reads its opening and urgent replies at start-up, "
        "to send them itself when the bot cannot answer (the safety net).",
    )
    tracker_url: str = Field(
        default="",
        description="Rasa's tracker store (its SQLAlchemy URL, as ops writes it into the stack's endpoints file); default: "
        "SQLite file rasa-tracker.db in var_dir. The API deletes a conversation's events there "
        "when it erases the conversation.",
    )
    transcript_idle_minutes: int = Field(
        default=30,
        gt=0,
        description="A conversation without transcript consent is deleted (Rasa's events "
        "included) after this many minutes without a message.",
    )
    purge_interval_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between two runs of that deletion."
    )
    scrub_interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="On PostgreSQL, hours between two rewrites of the tables that held erased "
        "conversations (api/scrub.py: VACUUM FULL, so none of their bytes stay in the "
        "database's files); 0: never (run `python -m api.cli scrub` on a schedule of your own). "
        "SQLite needs none.",
    )
    resume_hours: float = Field(
        default=24.0,
        gt=0,
        description="The public API stops serving a conversation (history, summary, new "
        "messages) after this many hours without activity; staff still see it.",
    )
    summary_link_minutes: float = Field(
        default=60.0,
        gt=0,
        description="A printable summary link (signed, carrying no secret) works this long.",
    )
    link_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Key that signs summary links (at least 32 characters; the same on every "
        "API worker). Empty: a random key made at start-up, so links stop working when the "
        "API restarts and are not shared between workers.",
    )
    widget_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of the pages allowed to call /api/ from a "
        "browser (CORS), comma-separated in the environment; empty: the API's own origin only.",
    )
    staff_idle_minutes: int = Field(
        default=30, gt=0, description="A staff console session ends after this many idle minutes."
    )
    staff_cookie_secure: bool = Field(
        default=True, description="Staff session cookie over HTTPS only (false: plain-http dev)."
    )
    login_attempts_per_minute: NonNegativeInt = Field(
        default=5,
        description="Staff logins per minute per client IP (and per trusted browser); 0: off.",
    )
    staff_require_totp: Literal["admins", "all"] = Field(
        default="admins",
        description="Who must use the TOTP second factor: admins, or all staff. Someone who "
        "must but has not set it up is taken to set it up right after the password.",
    )
    staff_session_max_hours: float = Field(
        default=12.0,
        gt=0,
        description="A staff session ends this many hours after sign-in, active or not.",
    )
    staff_reauth_minutes: float = Field(
        default=15.0,
        gt=0,
        description="Exports with personal details and erasure ask for the password or a code "
        "again when the last one was given longer ago than this.",
    )
    staff_lockout_failures: int = Field(
        default=5,
        ge=1,
        description="Wrong passwords for one account (from browsers not trusted for it) before "
        "each further attempt must wait; the wait doubles from 15 seconds.",
    )
    staff_lockout_max_seconds: int = Field(
        default=300,
        ge=1,
        description="The longest such wait, and the longest wait for wrong second-factor codes.",
    )
    retention_days: NonNegativeInt = Field(
        default=365, description="`api.cli retention` erases conversations idle longer; 0: never."
    )
    notify_email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Staff addresses told at once of each red flag and callback request "
        "(api/notifications), comma-separated; empty: no email.",
    )
    notify_email_from: str = Field(
        default="", description="The From address of those emails (needed with notify_email_to)."
    )
    smtp_host: str = Field(default="", description="The SMTP server that sends them.")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Its port.")
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the SMTP connection with STARTTLS before logging in."
    )
    smtp_user: str = Field(default="", description="SMTP login; empty: none.")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password.")
    notify_webhook_url: str = Field(
        default="",
        description="A URL that gets the same notices as a JSON POST (a team chat's incoming "
        "webhook: the body has a `text`); empty: none.",
    )
    notify_webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="When set, each POST carries X-Meso-Signature: sha256=<HMAC of the body "
        "with it>, so the receiver can tell it came from here.",
    )
    notify_remind_minutes: float = Field(
        default=30.0,
        ge=0,
        description="A same-day, emergency or crisis flag nobody has marked reviewed this many "
        "minutes after it came is notified again (once); 0: no reminders.",
    )
    backup_dir: Path = Field(
        default=DEFAULT_DB_PATH.parent / "backups",
        description="Where `api.cli backup` writes its backups (one folder each, owner-only); "
        "default: backups in var_dir. Put it on another disk or host's mount.",
    )
    backup_keep_days: NonNegativeInt = Field(
        default=14,
        description="Backups older than this are deleted by every backup and retention run "
        "(an erased conversation stays in backups at most this long); 0: never deleted.",
    )
    pg_bin: str = Field(
        default="",
        description="Folder of PostgreSQL's programs (pg_dump, pg_restore for backups); "
        "default: the PATH.",
    )

    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description="Prometheus scrapes GET /metrics with Authorization: Bearer <this> "
        "(32 characters or more); empty: /metrics is not served (404).",
    )
    test_key: SecretStr = Field(
        default=SecretStr(""),
        description="Conversation tests holding this key (header X-Meso-Test-Key) get what "
        "the assistant understood of each turn (intent, confidence, actions, responses, "
        "slots) with the replies; empty: nobody does. Set it on staging, not in production.",
    )

    public_url: str = Field(
        default="",
        description="The API's public base URL as browsers reach it (https://assistant."
        "example-clinic.com); when it is https, every response carries Strict-Transport-"
        "Security. Empty: unknown (no HSTS).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="IP addresses or networks (CIDR) of the reverse proxies in front of the "
        "API, comma-separated in the environment. Only a request from one of them has its "
        "X-Forwarded-For (the client address rate limits use) and X-Forwarded-Proto "
        "believed; empty: nobody's.",
    )
    api_docs: bool = Field(
        default=False,
        description="Serve the interactive API documentation (/docs) and the OpenAPI "
        "document (/openapi.json); off in production (`make run` turns it on).",
    )

    log_level: str = Field(default="INFO", description="Level of the api.* loggers.")

    @model_validator(mode="before")
    @classmethod
    def _default_databases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        var_dir = Path(data.get("var_dir") or DEFAULT_DB_PATH.parent).resolve()
        if not data.get("database_url"):
            data = {**data, "database_url": f"sqlite:///{var_dir / 'meso.db'}"}
        if not data.get("tracker_url"):
            data = {**data, "tracker_url": f"sqlite:///{var_dir / 'rasa-tracker.db'}"}
        if not data.get("backup_dir"):
            data = {**data, "backup_dir": var_dir / "backups"}
        return data

    @field_validator("database_url", "tracker_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("link_secret", "metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (or empty)")
        return value

    @field_validator("widget_origins", "notify_email_to", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("widget_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        origins: list[str] = []
        for origin in value:
            parts = urlsplit(origin.rstrip("/"))
            if (
                parts.scheme not in {"http", "https"}
                or not parts.hostname
                or parts.path
                or parts.query
                or parts.fragment
                or parts.username
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], "
                    "e.g. https://www.example-clinic.com, comma-separated"
                )
            origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return list(dict.fromkeys(origins))

    @model_validator(mode="after")
    def _email_complete(self) -> Settings:
        if self.notify_email_to and not (self.smtp_host and self.notify_email_from):
            raise ValueError("MESO_NOTIFY_EMAIL_TO needs MESO_SMTP_HOST and MESO_NOTIFY_EMAIL_FROM")
        if self.notify_webhook_url and urlsplit(self.notify_webhook_url).scheme not in {"http", "https"}:
            raise ValueError("MESO_NOTIFY_WEBHOOK_URL must be an http(s) URL")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks: list[str] = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network: write e.g. 10.0.0.5, "
                    "10.0.0.0/24 or ::1, comma-separated"
                ) from None
        return list(dict.fromkeys(networks))

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL, e.g. https://assistant.example.com")
        return value

    @property
    def hsts(self) -> bool:
        """Whether responses carry Strict-Transport-Security (the public URL is https)."""
        return self.public_url.lower().startswith("https://")

    @field_validator("rasa_url", "action_server_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        urls = [url.strip().rstrip("/") for url in value.split(",")]
        if not all(url.startswith(("http://", "https://")) for url in urls):
            raise ValueError("must be http:// or https:// URLs, comma-separated")
        return ",".join(urls)

    @property
    def max_body_bytes(self) -> int:
        """Largest request body accepted at all: room for the longest text, JSON-escaped."""
        return 4096 + 12 * self.max_text_chars
