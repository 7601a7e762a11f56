"""Typed FastAPI dependencies. Everything they hand out is created in the app's lifespan.

Every dependency is ``async def``, even when it does not wait: FastAPI runs a plain ``def``
dependency in a worker thread, a hand-over between threads on every request. (``get_runtime``
itself is plain, for code that holds a request; ``RuntimeDep`` goes through
``runtime_dependency``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.locks import KeyedLocks
from api.metrics import Metrics
from api.rasa_client import RasaClient
from api.ratelimit import Limiter
from api.safety_net import SafetyNet
from api.write_behind import WriteBehind
from api.settings import Settings
from api.signed_links import SummaryLinks
from api.sources import SourceInfo
from api.staff.audit import CLIENT_ADDRESS, client_address
from api.staff.throttle import LoginThrottle
from api.tracker_store import TrackerStore
from bot.kb.model import Clinic


@dataclass
class Runtime:
    """The process-wide objects of a running app (``app.state.runtime``)."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    rasa: RasaClient
    locks: KeyedLocks
    """Per-conversation locks: across workers on PostgreSQL (``api.locks``)."""
    message_limiter: Limiter
    conversation_limiter: Limiter
    summary_limiter: Limiter
    history_limiter: Limiter
    sources: dict[str, SourceInfo]
    """The knowledge base's sources by id (read from sources.yml at start-up)."""
    clinic: Clinic
    """The clinic's facts (clinic.yml, read and validated at start-up by the bot's own loader)."""
    tracker: TrackerStore
    """Rasa's tracker database, to erase conversations there."""
    login_limiter: Limiter
    """Staff console logins per client address, keyed ``ip:<address>``."""
    safety_net: SafetyNet
    """Red-flag help when the bot cannot answer (``api.safety_net``)."""
    write_behind: WriteBehind
    """Turns the database refused, written when it takes writes again (``api.write_behind``)."""
    summary_links: SummaryLinks
    """Signs and checks the printable summary's expiring links (``api.signed_links``)."""
    metrics: Metrics
    """This app's counters (``api.metrics``, ``GET /metrics``)."""
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    """Wrong staff passwords in a row per account and per trusted browser
    (``api.staff.throttle``)."""


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise RuntimeError(
            "the app's lifespan has not run (start it with uvicorn or a lifespan-aware client)"
        )
    return runtime


async def runtime_dependency(request: Request) -> Runtime:
    return get_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One session per request; closed (rolling back anything uncommitted) when it is done.

    Its ``info`` holds the client's address, which the audit log records."""
    info = {CLIENT_ADDRESS: client_address(request)}
    async with runtime.sessionmaker(info=info) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_rasa(runtime: RuntimeDep) -> RasaClient:
    return runtime.rasa


RasaDep = Annotated[RasaClient, Depends(get_rasa)]
