"""Rasa's SQL tracker store, cheaper per turn as conversations grow.

Rasa reads a conversation's events from the database for every message. Its
``SQLTrackerStore`` loads each row as an ORM object before it reads the one column it needs,
so a long conversation costs more on every turn; and on SQLite it writes with a rollback
journal and a full sync per commit, and (unlike the API) without ``secure_delete``.
:class:`MesoTrackerStore` is the same store (same table, same rows, same queries) with:

* only the ``data`` column read, as plain rows, and no count query before each write of
  a tracker read or written here already (it knows how many events the database has);
* user events stored without the entry scores of that turn (see :meth:`MesoTrackerStore.save`);
* a new conversation written once, at the end of its first turn, not also when created;
* the latest session of recently active conversations kept in memory, marshalled as the
  events' attributes, the events made for one turn carried to the next, with the rule
  policy's replay of it (:class:`RecentConversations`):
  the next turn checks with one small query (the conversation's row count and highest row
  id) that the database holds just what it kept, and reads, decodes and rebuilds nothing
  else; anything else (a row written or
  deleted elsewhere, an erasure, a new session) and it reads the database as before;
* on SQLite, a few connections kept open instead of one opened for every read and write;
* on SQLite, every connection in WAL mode with ``synchronous = NORMAL`` (as the API's
  own database), ``secure_delete`` on (an erased conversation's events are overwritten,
  in Rasa's writes too) and a busy timeout, so Rasa and the API's erasure wait for each
  other instead of failing.

Named in the stack's endpoints file (``ops/services.write_endpoints``) as
``type: bot.stores.tracker_store.MesoTrackerStore``; any SQLAlchemy URL Rasa accepts works.
"""

from __future__ import annotations

import itertools
import json
import logging
import marshal
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Text

import sqlalchemy as sa
import sqlalchemy.orm
import sqlalchemy.pool
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, SessionStarted, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot.kb.semantic import SIMILARITIES_KEY
from bot.process_tuning import TAIL_REPLAY

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_POOL_SIZE = 2
"""Connections kept open to a SQLite tracker database (and as many more at a peak)."""
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA secure_delete = ON",
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


_STORED = "_meso_events_stored"
"""Set on a tracker this store read: how many of its events the database holds."""

RECENT_MAX_BYTES = 32 * 2**20
"""Marshalled events kept for recent conversations, in all (the least recently used go)."""
RECENT_IDLE_S = 120.0
"""A conversation idle this long is let go (checked whenever any conversation is read or
written): an erased conversation's events leave Rasa's memory at the latest then."""
THAWED_MAX_BYTES = 64 * 2**20
"""Events made from kept conversations, held for their next turns, in all (estimated; the
least recently read go first, and are made again when next needed)."""
THAWED_BYTES_PER_MARSHALLED_BYTE = 5
"""Python objects of events against their marshalled bytes (measured: 4.9)."""


@dataclass
class _Recent:
    rows: int  # the conversation's rows in the database, every session
    last_id: int  # their highest id
    chunks: list[bytes] = field(default_factory=list)  # latest session's events, marshalled (_freeze)
    size: int = 0
    thawed: list = field(default_factory=list)  # events made from chunks[:thawed_chunks]
    thawed_chunks: int = 0
    replay: Any = None  # the rule policy's replay on the last tracker saved (bot.process_tuning)
    used: float = 0.0


class RecentConversations:
    """The latest session of recently active conversations, as the database holds them.

    Each conversation is kept with the row count and highest row id the database had when
    it was read or last written here: :meth:`take` gives its events only when the database
    still has exactly those, so a row written by another process, an erasure or a deletion
    is never missed. Events are kept marshalled, as the attributes of the events Rasa reads
    back from the stored rows, so no read decodes JSON or builds events from their
    parameters again. Bounded in bytes (:data:`RECENT_MAX_BYTES`) and idle time
    (:data:`RECENT_IDLE_S`). Used from Rasa's event loop only.

    The events made for one turn are kept for the next (:data:`THAWED_MAX_BYTES` of them in
    all): each turn gets a new list and a new tracker, the events already made and only the
    rows written since made anew. Rasa treats an event as a value once it is in a tracker
    (its tracker copies share them too, ``bot.process_tuning.copy_trackers_by_state``); the
    only changes it makes to one are the two a replay makes again the same way (an added
    entity, the featurisation flag of the latest message), and those the stored row holds
    already. Making every event anew each turn cost 1.6 ms of Rasa's CPU by turn 55.
    """

    def __init__(self, max_bytes: int = RECENT_MAX_BYTES, idle_s: float = RECENT_IDLE_S,
                 clock: Callable[[], float] = time.monotonic,
                 thawed_max_bytes: int = THAWED_MAX_BYTES) -> None:
        self._max_bytes, self._idle_s, self._clock = max_bytes, idle_s, clock
        self._recent: "OrderedDict[str, _Recent]" = OrderedDict()
        self._size = 0
        self._thawed_max_bytes = thawed_max_bytes
        self._thawed: "OrderedDict[str, int]" = OrderedDict()  # conversations with events made: their estimated bytes
        self._thawed_size = 0
        self._classes: dict[str, type] = {}  # the event classes of the kept events, by _class_key

    def __len__(self) -> int:
        return len(self._recent)

    @property
    def size(self) -> int:
        return self._size

    @property
    def thawed_size(self) -> int:
        """Estimated bytes of the events held made (:data:`THAWED_BYTES_PER_MARSHALLED_BYTE`)."""
        return self._thawed_size

    def take(self, sender_id: str, rows: int, last_id: Optional[int]) -> Optional[tuple[list, Any]]:
        """A new list of the events kept for ``sender_id`` (made once, then carried from turn
        to turn), and its replay (handed over: kept no more), if the database has ``rows``
        rows up to ``last_id`` as when they were kept; else None, and the conversation is let
        go."""
        self._expire()
        recent = self._recent.get(sender_id)
        if recent is None:
            return None
        if (recent.rows, recent.last_id) != (rows, last_id):
            self.drop(sender_id)
            return None
        recent.used = self._clock()
        self._recent.move_to_end(sender_id)
        replay, recent.replay = recent.replay, None
        new = recent.chunks[recent.thawed_chunks:]
        recent.thawed.extend(_thaw(self._classes, item) for chunk in new for item in marshal.loads(chunk))
        recent.thawed_chunks = len(recent.chunks)
        events = list(recent.thawed)
        self._hold_thawed(sender_id, recent)
        return events, replay

    def _hold_thawed(self, sender_id: str, recent: _Recent) -> None:
        """Count ``recent``'s made events as held (most recently read), and let go of the least
        recently read ones beyond :data:`THAWED_MAX_BYTES` (their chunks stay)."""
        estimate = recent.size * THAWED_BYTES_PER_MARSHALLED_BYTE
        self._thawed_size += estimate - self._thawed.pop(sender_id, 0)
        self._thawed[sender_id] = estimate
        while self._thawed_size > self._thawed_max_bytes and self._thawed:
            oldest, bytes_ = self._thawed.popitem(last=False)
            self._thawed_size -= bytes_
            kept = self._recent.get(oldest)
            if kept is not None:
                kept.thawed, kept.thawed_chunks = [], 0

    def _let_go_thawed(self, sender_id: str) -> None:
        self._thawed_size -= self._thawed.pop(sender_id, 0)

    def keep(self, sender_id: str, rows: int, last_id: int, events: list, replay: Any = None) -> None:
        """Keep ``events`` (stored events' dicts: the latest session) for ``sender_id``, whose
        rows the database now counts ``rows``, up to ``last_id``."""
        self.drop(sender_id)
        self._recent[sender_id] = _Recent(rows, last_id)
        self._append(sender_id, events, replay)

    def add(self, sender_id: str, rows_added: int, last_id: int, events: list, replay: Any = None) -> None:
        """The rows a turn just wrote (``events``, up to ``last_id``) follow the ones kept for
        ``sender_id``, if any are kept (else nothing is)."""
        recent = self._recent.get(sender_id)
        if recent is not None:
            recent.rows, recent.last_id = recent.rows + rows_added, last_id
            self._append(sender_id, events, replay)

    def _append(self, sender_id: str, events: list, replay: Any) -> None:
        recent = self._recent[sender_id]
        try:
            chunk = _freeze(self._classes, events)
        except Exception:  # noqa: BLE001 - not kept, never a failed write: the database is read instead
            logger.warning("tracker store: events of %s not kept in memory", sender_id[:8], exc_info=True)
            self.drop(sender_id)
            return
        recent.chunks.append(chunk)
        recent.size += len(chunk)
        self._size += len(chunk)
        recent.replay, recent.used = replay, self._clock()
        self._recent.move_to_end(sender_id)
        self._expire()

    def drop(self, sender_id: str) -> None:
        recent = self._recent.pop(sender_id, None)
        if recent is not None:
            self._size -= recent.size
        self._let_go_thawed(sender_id)

    def _expire(self) -> None:
        now = self._clock()
        while self._recent:
            sender_id, oldest = next(iter(self._recent.items()))
            if self._size <= self._max_bytes and now - oldest.used < self._idle_s:
                break
            self.drop(sender_id)


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _freeze(classes: dict[str, type], events: list) -> bytes:
    """Stored events' dicts as Rasa reads them back (``deserialise_events``), marshalled as
    (class, attributes) pairs; ``classes`` learns each class. ValueError if an attribute is
    not a plain value marshal can hold (or whatever Rasa raises on a malformed dict)."""
    items = []
    for event in deserialise_events(events):
        cls = type(event)
        key = _class_key(cls)
        classes.setdefault(key, cls)
        items.append((key, event.__dict__))
    return marshal.dumps(items)


def _thaw(classes: dict[str, type], item: tuple[str, dict]) -> Any:
    """A new event of the pair's class with the pair's attributes (no constructor runs: the
    attributes are those its constructor made for the stored event)."""
    key, attributes = item
    event = object.__new__(classes[key])
    event.__dict__ = attributes
    return event


class MesoTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` reading plain rows, with SQLite tuned on every connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 opens a new SQLite connection for every session of a file
            # database; a small pool keeps a few open (each tuned once, when opened). Rasa
            # uses them from its event loop only.
            url = self.engine.url
            self.engine.dispose()
            self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=SQLITE_POOL_SIZE,
                                           max_overflow=SQLITE_POOL_SIZE,
                                           connect_args={"check_same_thread": False})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self.recent = RecentConversations()

    def _rows(self, session: Any, sender_id: Text) -> tuple[int, Optional[int]]:
        """How many rows the conversation has in the database (every session), and the highest id."""
        rows, last_id = session.query(sa.func.count(self.SQLEvent.id), sa.func.max(self.SQLEvent.id)) \
            .filter(self.SQLEvent.sender_id == sender_id).one()
        return int(rows), last_id

    async def _retrieve(self, sender_id: Text,
                        fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        replay, rows, last_id = None, 0, None
        with self.session_scope() as session:
            if fetch_events_from_all_sessions:
                kept = None
            else:
                rows, last_id = self._rows(session, sender_id)
                kept = self.recent.take(sender_id, rows, last_id)
            if kept is not None:
                events, replay = kept
            else:
                data = self._event_query(
                    session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions
                ).with_entities(self.SQLEvent.data).all()
                events = [json.loads(text) for (text,) in data]
                if events and last_id is not None:
                    self.recent.keep(sender_id, rows, last_id, events)
        if self.domain and events:
            tracker = (DialogueStateTracker.from_events(sender_id, events, self.domain.slots) if kept is not None
                       else DialogueStateTracker.from_dict(sender_id, events, self.domain.slots))
            if not fetch_events_from_all_sessions:
                setattr(tracker, _STORED, len(events))
                if replay is not None:
                    tracker.__dict__[TAIL_REPLAY] = replay
            return tracker
        return None

    async def create_tracker(self, sender_id: Text, append_action_listen: bool = True) -> DialogueStateTracker:
        """Rasa's new tracker (listening, with nothing stored yet), not written at once:
        Rasa writes a new conversation's first event here and the rest at the end of the
        turn; the turn's one write stores all of it. Rasa creates one only when the
        database has no event of that conversation, under its lock on the conversation."""
        tracker = self.init_tracker(sender_id)
        if append_action_listen:
            tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        setattr(tracker, _STORED, 0)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Rasa's ``SQLTrackerStore.save``, storing each user event without the entry scores
        the classifier put in its parse data (``SIMILARITIES_KEY``): they serve the action
        server during that turn only, and kept they would grow every later turn's reads."""
        await self.stream_events(tracker)
        new = getattr(tracker, _STORED, None) == 0
        added: list[tuple[Any, str, str]] = []  # (row, type name, data)
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                parse_data = data.get("parse_data")
                if isinstance(parse_data, dict) and SIMILARITIES_KEY in parse_data:
                    data["parse_data"] = {k: v for k, v in parse_data.items() if k != SIMILARITIES_KEY}
                text = json.dumps(data)
                row = self.SQLEvent(
                    sender_id=tracker.sender_id,
                    type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=(data.get("parse_data") or {}).get("intent", {}).get(INTENT_NAME_KEY),
                    action_name=data.get("name"),
                    data=text,
                )
                session.add(row)
                added.append((row, event.type_name, text))
            session.flush()
            ids = [row.id for row, _, _ in added]
            session.commit()
        self._keep_written(tracker, new, [(kind, text) for _, kind, text in added], ids)

    def _keep_written(self, tracker: DialogueStateTracker, new: bool, added: list[tuple[str, str]],
                      ids: list) -> None:
        """After a turn's write: the conversation kept in memory gets the rows just written
        (as a read would give them back), or a new one is kept; a new session is let go (a
        read knows where the latest session starts)."""
        sender_id = tracker.sender_id
        if not added:
            return
        if any(kind == SessionStarted.type_name for kind, _ in added) or None in ids:
            self.recent.drop(sender_id)
            return
        events = [json.loads(text) for _, text in added]
        replay = tracker.__dict__.get(TAIL_REPLAY)
        if new:
            self.recent.keep(sender_id, len(added), max(ids), events, replay)
            return
        self.recent.add(sender_id, len(added), max(ids), events, replay)

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Any]:
        """The events not stored yet. Rasa counts the stored ones with a query on every
        save; a tracker this store has read or written already knows how many it has
        there (of its latest session, as Rasa counts), so only its first write counts.
        Rasa's lock on the conversation is held in between."""
        stored = getattr(tracker, _STORED, None)
        events = (list(super()._additional_events(session, tracker)) if stored is None
                  else list(itertools.islice(tracker.events, stored, len(tracker.events))))
        setattr(tracker, _STORED, len(tracker.events))
        return iter(events)
