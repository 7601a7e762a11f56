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
from typing import Any, Iterator, Optional, Text

import sqlalchemy as sa
import sqlalchemy.orm
import sqlalchemy.pool
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot.kb.semantic import SIMILARITIES_KEY

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

    async def _retrieve(self, sender_id: Text,
                        fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            rows = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions
            ).with_entities(self.SQLEvent.data).all()
        events = [json.loads(data) for (data,) in rows]
        if self.domain and events:
            tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
            if not fetch_events_from_all_sessions:
                setattr(tracker, _STORED, len(events))
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
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                parse_data = data.get("parse_data")
                if isinstance(parse_data, dict) and SIMILARITIES_KEY in parse_data:
                    data["parse_data"] = {k: v for k, v in parse_data.items() if k != SIMILARITIES_KEY}
                session.add(self.SQLEvent(
                    sender_id=tracker.sender_id,
                    type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=(data.get("parse_data") or {}).get("intent", {}).get(INTENT_NAME_KEY),
                    action_name=data.get("name"),
                    data=json.dumps(data),
                ))
            session.commit()

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
