"""Test doubles and helpers shared by the API tests (a fake Rasa, a harness over the app).

The fake Rasa speaks the contract (``contract/``): its replies are checked against
``contract.payloads`` as they leave, so a test cannot have it send a block the real bot never
sends, unless the test says it wants exactly that (``outside_contract``, for the API's own
rejection of bad blocks). Its opening command is ``contract.commands``'.

Named uniquely (not ``conftest``) so test modules can import it next to the bot's tests.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from api.main import create_app
from api.patient_auth import PatientKeys
from api.signed_links import SUMMARY_PATH
from api.settings import Settings
from contract import commands, payloads

RASA_URL = "http://rasa.test:5005"
ACTION_URL = "http://actions.test:5055"
TOKEN = "test-token-123"
COST_PAYLOAD = '/ask_topic{"topic":"cost"}'
PAIN_PAYLOAD = '/ask_topic{"topic":"pain"}'

Reply = Callable[[str, str, bool], Any]

SUMMARY_DOC: dict[str, Any] = {
    "title": "Your questions for the consultation",
    "generated_at": "2026-11-29T10:15:00Z",
    "sections": [{"heading": "Cost", "items": [{"text": "Ask for a written quote."}]}],
}
"""A small valid ``summary`` block, as the bot would send it."""
CALLBACK_REQUEST: dict[str, Any] = {
    "name": "Ann Example",
    "phone": "+44 20 7946 0958",
    "consent": True,
}
"""A valid ``callback`` block, as the bot would send it."""


def opening_reply(sender: str, message: str, command: bool) -> dict[str, Any]:
    return {
        "messages": [
            {"text": "Hello! I answer general questions about mesotherapy for hair loss."},
            {
                "text": "I am not a doctor. What would you like to know?",
                "buttons": [
                    {"title": "What does it cost?", "payload": COST_PAYLOAD},
                    {"title": "Does it hurt?", "payload": PAIN_PAYLOAD},
                ],
            },
        ],
        "nlu": {"intent": None, "confidence": None, "entities": []},
    }


def answer_reply(sender: str, message: str, command: bool) -> dict[str, Any]:
    return {
        "messages": [
            {
                "text": f"reply to {message}",
                "custom": {
                    "sources": [
                        {
                            "id": "nhs-hair-loss",
                            "title": "Hair loss (NHS)",
                            "url": "https://example.org/nhs",
                        },
                        {"id": "clinic-leaflet", "title": "Clinic leaflet"},
                    ],
                    "topic": "cost",
                    "entry_id": "cost-001",
                    "score": 0.87,
                    "certainty": "moderate",
                    "reviewed": "2026-10-01",
                },
            }
        ],
        "nlu": {
            "intent": "ask_cost",
            "confidence": 0.93,
            "entities": [{"entity": "treatment", "value": "mesotherapy"}],
        },
    }


def default_reply(sender: str, message: str, command: bool) -> dict[str, Any]:
    if command and commands.is_start(message):
        return opening_reply(sender, message, command)
    return answer_reply(sender, message, command)


def tracker_events(
    message: str, command: bool, reply: Any, message_id: str | None = None
) -> list[dict[str, Any]]:
    """The events Rasa's tracker gains from one webhook call (as Rasa 3.6 stores them)."""
    text = message if command else message.lstrip("/ ")
    user: dict[str, Any] = {"event": "user", "text": text, "parse_data": {"intent": {"name": "x"}}}
    if message_id is not None:
        user["message_id"] = message_id
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_listen"}, user]
    for m in reply.get("messages", []) if isinstance(reply, dict) else []:
        events.append(
            {
                "event": "bot",
                "text": m.get("text"),
                "data": {
                    "elements": None,
                    "quick_replies": None,
                    "buttons": m.get("buttons"),
                    "attachment": None,
                    "image": None,
                    "custom": m.get("custom"),
                },
                "metadata": {"utter_action": "action_x"},
            }
        )
    return events


def messages_url(conversation_id: str) -> str:
    """The chat API's messages URL of a conversation."""
    return f"/api/v1/conversations/{conversation_id}/messages"


def sent(call: dict[str, Any]) -> dict[str, Any]:
    """A webhook call without its ``message_id`` (the turn's name, made from a row id)."""
    return {key: value for key, value in call.items() if key != "message_id"}


@dataclass
class FakeRasa:
    """Stands in for Rasa (webhook, /status) and the action server (/health)."""

    reply: Reply = default_reply
    """Returns the webhook's JSON body, an httpx.Response, or raises (e.g. httpx.ConnectError)."""
    status: Callable[[], httpx.Response] = lambda: httpx.Response(
        200, json={"model_file": "models/20261101.tar.gz", "num_active_training_jobs": 0}
    )
    health: Callable[[], httpx.Response] = lambda: httpx.Response(200, json={"status": "ok"})
    delay: Callable[[], float] = lambda: 0.0
    """Seconds the webhook waits before answering."""
    check_delay: float = 0.0
    """Seconds /status and /health wait before answering."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each conversation's tracker events, as Rasa would keep them."""
    tracker_response: Callable[[str], httpx.Response | None] = lambda sender: None
    """Replaces the tracker endpoint's answer when it returns a response (failure tests)."""
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: int = 0
    outside_contract: bool = False
    """Let replies carry blocks outside ``contract.payloads`` (tests of the API's rejection)."""
    late: Reply | None = None
    """Rasa answers this turn only after the API gave up: the turn (with this reply) reaches
    the tracker, and the webhook hangs past any timeout."""

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = request.url
        if f"{url.scheme}://{url.host}:{url.port}" == RASA_URL:
            if request.method == "POST" and url.path == "/webhooks/meso/webhook":
                return await self._webhook(request)
            if request.method == "GET" and url.path == "/status":
                await asyncio.sleep(self.check_delay)
                if url.params.get("token") != TOKEN:
                    return httpx.Response(401, json={"message": "unauthorised"})
                return self.status()
            if request.method == "GET" and url.path.startswith("/conversations/"):
                return self._tracker(request)
            if request.method == "POST" and url.path.endswith("/tracker/events"):
                return self._append(request)
        if f"{url.scheme}://{url.host}:{url.port}" == ACTION_URL and url.path == "/health":
            await asyncio.sleep(self.check_delay)
            return self.health()
        return httpx.Response(404)

    def _tracker(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("token") != TOKEN:
            return httpx.Response(401, json={"message": "unauthorised"})
        sender = request.url.path.split("/")[2]
        replaced = self.tracker_response(sender)
        if replaced is not None:
            return replaced
        events = [{"event": "session_started"}, *self.events.get(sender, [])]
        return httpx.Response(200, json={"sender_id": sender, "slots": {}, "events": events})

    def _append(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("token") != TOKEN:
            return httpx.Response(401, json={"message": "unauthorised"})
        sender = request.url.path.split("/")[2]
        self.events.setdefault(sender, []).extend(json.loads(request.content))
        return httpx.Response(200, json={"sender_id": sender})

    def _within_contract(self, result: Any) -> None:
        if self.outside_contract or not isinstance(result, dict):
            return
        for message in result.get("messages", []):
            problems = payloads.check_custom(message.get("custom"))[1]
            assert not problems, f"the fake Rasa would send what the bot never sends: {problems}"

    async def _webhook(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sender = body["sender"]
        self.in_flight[sender] = self.in_flight.get(sender, 0) + 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[sender])
        try:
            await asyncio.sleep(self.delay())
            self.calls.append(body)
            if self.late is not None:
                late = self.late(sender, body["message"], body["command"])
                self.events.setdefault(sender, []).extend(
                    tracker_events(body["message"], body["command"], late, body.get("message_id"))
                )
                await asyncio.sleep(3600)
            result = self.reply(sender, body["message"], body["command"])
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, httpx.Response):
                return result
            self._within_contract(result)
            self.events.setdefault(sender, []).extend(
                tracker_events(body["message"], body["command"], result, body.get("message_id"))
            )
            return httpx.Response(200, json=result)
        finally:
            self.in_flight[sender] -= 1


@dataclass
class Harness:
    client: httpx.AsyncClient
    app: FastAPI
    rasa: FakeRasa
    db_path: Path
    database_url: str = ""

    def rows(self, sql: str, *params: Any) -> list[Any]:
        """Read the app's database directly, outside the app (``?`` placeholders): the SQLite
        file, or PostgreSQL (rows indexed by position and by name either way)."""
        return database_rows(self.database_url, sql, *params)

    def execute(self, sql: str, *params: Any) -> None:
        """Write to the app's database directly, outside the app (``?`` placeholders; an
        aware datetime is stored as the app's own columns store it, in either database)."""
        database_execute(self.database_url, sql, *params)

    @asynccontextmanager
    async def writes_refused(self) -> AsyncIterator[None]:
        """Another client holds the write lock while the block runs (reads still go
        through): SQLite's ``BEGIN EXCLUSIVE`` on the file, PostgreSQL's ``LOCK TABLE ... IN
        EXCLUSIVE MODE`` on the tables a turn writes."""
        if not self.database_url.startswith("postgresql"):
            locker = sqlite3.connect(self.db_path, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            return
        locker = await _postgres_connection(self.database_url)
        holding = locker.transaction()
        try:
            await holding.start()
            await locker.execute(
                "LOCK TABLE conversations, messages, callback_requests IN EXCLUSIVE MODE"
            )
            yield
        finally:
            await locker.close()  # its transaction rolled back

    def query_plan(self, sql: str) -> str:
        """How the database would run ``sql``: SQLite's ``EXPLAIN QUERY PLAN``; PostgreSQL's
        ``EXPLAIN`` with sequential scans off (a test's few rows would otherwise always be
        read whole), so an index shows whenever the query can use it."""
        if not self.database_url.startswith("postgresql"):
            return "\n".join(r["detail"] for r in self.rows(f"EXPLAIN QUERY PLAN {sql}"))
        rows = _on_postgres(self.database_url, f"EXPLAIN {sql}", (), fetch=True,
                            first="SET enable_seqscan = off")
        return "\n".join(r[0] for r in rows)

    async def stored_bytes(self) -> bytes:
        """What someone with the database could read: SQLite's file and its ``-wal`` file,
        free pages included; on PostgreSQL every row of every table, as text."""
        if not self.database_url.startswith("postgresql"):
            files = (self.db_path, self.db_path.with_name(self.db_path.name + "-wal"))
            return b"".join(f.read_bytes() for f in files if f.exists())
        tables = await self._inspect(lambda i: i.get_table_names())
        return "\n".join(
            str(tuple(row)) for table in tables for row in self.rows(f"SELECT * FROM {table}")
        ).encode()

    async def columns(self, table: str) -> list[str]:
        """A table's column names, in order, as the database itself describes them."""
        return [c["name"] for c in await self._inspect(lambda i: i.get_columns(table))]

    async def foreign_keys(self, table: str) -> list[dict[str, Any]]:
        """A table's foreign keys, as the database itself describes them."""
        return list(await self._inspect(lambda i: i.get_foreign_keys(table)))

    async def _inspect(self, read: Callable[[Any], Any]) -> Any:
        from sqlalchemy import inspect

        async with self.app.state.runtime.engine.connect() as connection:
            return await connection.run_sync(lambda sync: read(inspect(sync)))

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, to prove a request changed nothing."""
        return {
            table: [tuple(row) for row in self.rows(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("conversations", "messages", "callback_requests")
        }

    def messages(self, conversation_id: str) -> list[sqlite3.Row]:
        return self.rows(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq", conversation_id
        )

    def token(self, conversation_id: str) -> str:
        """The bearer token the client holds for a conversation it created."""
        auth = self.client.auth
        assert isinstance(auth, PatientKeys)
        return auth.tokens[conversation_id]

    async def new_conversation(self, consent: bool = True) -> str:
        """Start a conversation (by default with transcript consent) and return its id."""
        response = await self.client.post("/api/v1/conversations", json={"consent": consent})
        assert response.status_code == 201, response.text
        return str(response.json()["conversation_id"])


@asynccontextmanager
async def running_app(settings: Settings, rasa: FakeRasa, db_path: Path) -> AsyncIterator[Harness]:
    """Start the real app (lifespan included) and talk to it in-process."""
    app = create_app(settings, rasa_transport=httpx.MockTransport(rasa.handler))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", auth=PatientKeys()
        ) as client:
            yield Harness(client=client, app=app, rasa=rasa, db_path=db_path,
                          database_url=settings.database_url)


def database_rows(url: str, sql: str, *params: Any) -> list[Any]:
    """Run ``sql`` (``?`` placeholders, as sqlite3 takes them) on the database at ``url``
    (``sqlite:///<file>`` or ``postgresql...``) and return its rows, each read by position
    and by name (sqlite3.Row, asyncpg's Record)."""
    if url.startswith("postgresql"):
        return _on_postgres(url, sql, params, fetch=True)
    connection = sqlite3.connect(_sqlite_file(url))
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, _for_sqlite(params)).fetchall()
    finally:
        connection.close()


def database_execute(url: str, sql: str, *params: Any) -> None:
    """Run one writing statement like ``database_rows`` and commit it."""
    if url.startswith("postgresql"):
        _on_postgres(url, sql, params, fetch=False)
        return
    connection = sqlite3.connect(_sqlite_file(url))
    try:
        connection.execute(sql, _for_sqlite(params))
        connection.commit()
    finally:
        connection.close()


def _refusals() -> tuple[type[Exception], ...]:
    import asyncpg

    return (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


REFUSED = _refusals()
"""What a direct write the database's own constraints refuse raises, in either database."""


def database_tables(url: str) -> set[str]:
    """The tables in the database at ``url`` (none for a SQLite file not yet there)."""
    if url.startswith("postgresql"):
        rows = _on_postgres(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
                            (), fetch=True)
    elif Path(_sqlite_file(url)).exists():
        rows = database_rows(url, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = []
    return {row[0] for row in rows}


def stored_time(value: str | datetime) -> datetime:
    """A timestamp column's value as read directly (SQLite: text, without its zone, always
    UTC; PostgreSQL: an aware datetime) as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _sqlite_file(url: str) -> str:
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    if parts.get_backend_name() != "sqlite" or not parts.database:
        raise ValueError(f"not a SQLite file's or PostgreSQL's URL: {url!r}")
    return parts.database


def _for_sqlite(params: tuple[Any, ...]) -> tuple[Any, ...]:
    """An aware datetime as SQLAlchemy's DateTime stores it in SQLite (naive UTC text)."""
    return tuple(
        value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        if isinstance(value, datetime) else value
        for value in params
    )


async def _postgres_connection(url: str) -> Any:
    """An asyncpg connection to the database of ``url`` (outside the app's pools)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    return await asyncpg.connect(host=parts.host, port=parts.port, user=parts.username,
                                 password=parts.password, database=parts.database)


def _on_postgres(
    url: str, sql: str, params: tuple[Any, ...], fetch: bool, first: str = ""
) -> list[Any]:
    """asyncpg on a thread of its own (callers may be inside an event loop); ``first``, a
    statement run before on the same connection."""
    numbered = sql
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${n}", 1)

    async def run() -> list[Any]:
        connection = await _postgres_connection(url)
        try:
            if first:
                await connection.execute(first)
            if fetch:
                return list(await connection.fetch(numbered, *params))
            await connection.execute(numbered, *params)
            return []
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()


RASA_EVENTS_TABLE = """
CREATE TABLE events (
    id INTEGER NOT NULL PRIMARY KEY,
    sender_id VARCHAR(255) NOT NULL,
    type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT,
    intent_name VARCHAR(255),
    action_name VARCHAR(255),
    data TEXT
)
"""
"""Rasa 3.6's ``SQLTrackerStore.SQLEvent`` table, as it creates it in SQLite."""


def rasa_tracker_db(path: Path, events: dict[str, int]) -> None:
    """Create Rasa's tracker database at ``path`` with ``events[sender]`` events per sender."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.execute(RASA_EVENTS_TABLE)
        connection.execute("CREATE INDEX ix_events_sender_id ON events (sender_id)")
        for sender, count in events.items():
            for i in range(count):
                connection.execute(
                    "INSERT INTO events (sender_id, type_name, timestamp, data) "
                    "VALUES (?, ?, ?, ?)",
                    (sender, "user" if i % 2 else "bot", 1_700_000_000.0 + i, '{"text": "x"}'),
                )
        connection.commit()
    finally:
        connection.close()


def tracker_counts(path: Path) -> dict[str, int]:
    """Events per sender in Rasa's tracker database at ``path``."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id"
        ).fetchall()
    finally:
        connection.close()
    return dict(rows)


class SummaryLinkTo:
    """Equal to any signed link to one conversation's summary page (links carry their
    expiry, so two made a second apart differ)."""

    def __init__(self, conversation_id: str) -> None:
        self.prefix = f"{SUMMARY_PATH}/{conversation_id}."

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(self.prefix)

    def __repr__(self) -> str:
        return f"<a summary link starting {self.prefix}>"
