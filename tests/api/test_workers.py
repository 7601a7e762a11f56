"""Two API workers on one real PostgreSQL and one real Redis: conversations spread over both,
one conversation's messages sent through both at once, rate limits counted together.

Each worker is the real app with its own engine, locks and Redis client (two ``running_app``
in one event loop: they share nothing in memory), in front of one fake Rasa that records
how many turns of a conversation it is given at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from api_fakes import FakeRasa, Harness, messages_url, running_app
from sqlalchemy import text

from api.patient_auth import PatientKeys
from api.settings import Settings

pytestmark = pytest.mark.anyio

LINK_SECRET = "k" * 32  # the same on every worker, as the README asks


@pytest.fixture
def worker_settings(
    make_settings: Callable[..., Settings], postgres_url: str, redis_url: str
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return make_settings(
            database_url=postgres_url, redis_url=redis_url, link_secret=LINK_SECRET, **overrides
        )

    return make


async def _two_workers(
    settings: Callable[..., Settings], rasa: FakeRasa, **overrides: Any
) -> AsyncIterator[tuple[Harness, Harness]]:
    """The first worker migrates; the second, started after, only checks (as ``make
    run-scale`` does after its migrate step). One patient's tokens serve both."""
    async with running_app(settings(**overrides), rasa, db_path=None) as first:  # type: ignore[arg-type]
        async with running_app(
            settings(migrate_on_start=False, **overrides), rasa, db_path=None  # type: ignore[arg-type]
        ) as second:
            second.client.auth = first.client.auth
            yield first, second


@pytest.fixture
async def workers(
    worker_settings: Callable[..., Settings], fake_rasa: FakeRasa
) -> AsyncIterator[tuple[Harness, Harness]]:
    async for pair in _two_workers(worker_settings, fake_rasa):
        yield pair


async def _transcript(h: Harness, conversation_id: str) -> list[tuple[int, str, str]]:
    async with h.app.state.runtime.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT seq, role, text FROM messages WHERE conversation_id = :c ORDER BY seq"),
            {"c": conversation_id},
        )
        return [tuple(row) for row in rows]


def _patient_turns(transcript: list[tuple[int, str, str]]) -> list[str]:
    """The patient's messages in stored order, each checked to be followed by its reply."""
    said = []
    for index, (_seq, role, said_text) in enumerate(transcript):
        if role == "patient":
            assert transcript[index + 1][1:] == ("assistant", f"reply to {said_text}"), transcript
            said.append(said_text)
    return said


async def test_ten_messages_at_once_through_both_workers_are_answered_one_at_a_time_in_order(
    workers: tuple[Harness, Harness], fake_rasa: FakeRasa
) -> None:
    fake_rasa.delay = lambda: 0.02  # each turn long enough for the others to pile up
    conversation_id = await workers[0].new_conversation()
    texts = [f"question {i}" for i in range(10)]

    async def send(i: int) -> httpx.Response:
        return await workers[i % 2].client.post(
            messages_url(conversation_id), json={"text": texts[i], "client_id": f"client-{i:04d}"}
        )

    responses = await asyncio.gather(*(send(i) for i in range(10)))
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    for i, response in enumerate(responses):  # each patient got the answer to their message
        assert [m["text"] for m in response.json()["messages"]] == [f"reply to {texts[i]}"]
    assert fake_rasa.max_in_flight == 1  # never two turns of the conversation at Rasa at once
    transcript = await _transcript(workers[1], conversation_id)
    assert [seq for seq, _, _ in transcript] == list(range(1, len(transcript) + 1))
    stored = _patient_turns(transcript)
    assert sorted(stored) == sorted(texts)  # each once
    asked = [c["message"] for c in fake_rasa.calls if c["sender"] == conversation_id][1:]
    assert asked == stored  # the order Rasa answered them is the order they are stored in


async def test_twenty_conversations_of_eight_turns_spread_over_both_workers(
    workers: tuple[Harness, Harness], fake_rasa: FakeRasa
) -> None:
    fake_rasa.delay = lambda: random.uniform(0, 0.01)
    ids = [await workers[i % 2].new_conversation() for i in range(20)]

    async def patient(n: int, conversation_id: str) -> list[int]:
        codes = []
        for turn in range(8):
            worker = workers[(n + turn) % 2]
            response = await worker.client.post(
                messages_url(conversation_id), json={"text": f"p{n} t{turn}"}
            )
            codes.append(response.status_code)
        return codes

    codes = await asyncio.gather(*(patient(n, c) for n, c in enumerate(ids)))
    assert all(code == 200 for patient_codes in codes for code in patient_codes)
    for n, conversation_id in enumerate(ids):
        transcript = await _transcript(workers[n % 2], conversation_id)
        assert [seq for seq, _, _ in transcript] == list(range(1, len(transcript) + 1))
        assert _patient_turns(transcript) == [f"p{n} t{turn}" for turn in range(8)]
    assert fake_rasa.max_in_flight == 1


async def test_the_message_limit_is_counted_across_workers(
    worker_settings: Callable[..., Settings], fake_rasa: FakeRasa
) -> None:
    async for first, second in _two_workers(
        worker_settings, fake_rasa, rate_limit_messages_per_minute=4
    ):
        conversation_id = await first.new_conversation()
        codes = [
            (await (first, second)[i % 2].client.post(
                messages_url(conversation_id), json={"text": f"q{i}"}
            )).status_code
            for i in range(5)
        ]
        assert codes == [200, 200, 200, 200, 429]  # four in all, not four per worker


async def test_a_conversation_opened_on_one_worker_is_refused_without_its_token_on_the_other(
    workers: tuple[Harness, Harness],
) -> None:
    conversation_id = await workers[0].new_conversation()
    workers[1].client.auth = PatientKeys()  # a stranger's client, knowing only the id
    response = await workers[1].client.post(messages_url(conversation_id), json={"text": "hi"})
    assert response.status_code in (401, 404)
