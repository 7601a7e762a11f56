"""Settings of the API process, read from environment variables prefixed ``MESO_``.

Every path default is derived from this file's location, never from the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

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
    parsed = make_url(url)
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
    rasa_url: str = Field(
        default="http://127.0.0.1:5005", description="Base URL of the Rasa server."
    )
    rasa_token: SecretStr = Field(
        default=SecretStr(""), description="Token of Rasa's HTTP API (its --auth-token)."
    )
    action_server_url: str = Field(
        default="http://127.0.0.1:5055", description="Base URL of the Rasa action server."
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
    knowledge_dir: Path = Field(
        default=REPO_ROOT / "knowledge",
        description="The knowledge folder (the bot's MESO_KNOWLEDGE_DIR); its sources.yml gives "
        "the titles of the sources a summary cites.",
    )

    log_level: str = Field(default="INFO", description="Level of the api.* loggers.")

    @model_validator(mode="before")
    @classmethod
    def _default_database(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("database_url"):
            var_dir = Path(data.get("var_dir") or DEFAULT_DB_PATH.parent)
            data = {**data, "database_url": f"sqlite:///{var_dir.resolve() / 'meso.db'}"}
        return data

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("rasa_url", "action_server_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body accepted at all: room for the longest text, JSON-escaped."""
        return 4096 + 12 * self.max_text_chars
