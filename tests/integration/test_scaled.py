"""The scaled set-up for real (``ops.scale``): private PostgreSQL and Redis, two action
servers, two Rasa replicas (trained model) and an API of two uvicorn workers on one port.

Conversations spread over both workers and both replicas; ten messages sent at once to one
conversation are answered one at a time, in order; a Rasa replica, an action server or an
API worker killed (SIGKILL) mid-run loses nothing and repeats nothing. A patient whose
message failed presses the widget's Retry: the same text with the same ``client_id``.
Transcripts are read from PostgreSQL and compared with Rasa's trackers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ops.scale import ScaledStack, scaled_services
from ops.services import ports

OPEN = {"consent": True}
QUESTIONS = [
    "what is mesotherapy", "does it hurt", "how much does it cost", "how many sessions",
    "what are the side effects", "is it better than minoxidil", "who should not have it",
    "how long do results last",
]
RETRIES = 8
METRICS_TOKEN = "m" * 40
"""Retries a patient makes (the widget's Retry, same client_id) before the test gives up."""


@pytest.fixture(scope="module")
def scaled() -> Iterator[ScaledStack]:
    with scaled_services(
        MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0", MESO_RATE_LIMIT_MESSAGES_PER_MINUTE="0",
        MESO_METRICS_TOKEN=METRICS_TOKEN,
    ) as stack:
        yield stack


@dataclass
class Patient:
    conversation_id: str
    token: str
    said: list[str] = field(default_factory=list)
    retries: int = 0


async def _open(client: httpx.AsyncClient) -> Patient:
    for _ in range(RETRIES):
        try:
            response = await client.post("/api/v1/conversations", json=OPEN)
        except httpx.TransportError:
            await asyncio.sleep(0.5)
            continue
        if response.status_code == 201:
            body = response.json()
            return Patient(body["conversation_id"], body["token"])
        await asyncio.sleep(0.5)
    raise AssertionError("no conversation could be opened")


async def _say(client: httpx.AsyncClient, patient: Patient, words: str) -> dict[str, Any]:
    """Send ``words`` until answered (200), as a patient pressing Retry would."""
    client_id = f"{patient.conversation_id[:10]}-{len(patient.said):03d}"
    patient.said.append(words)
    for attempt in range(RETRIES):
        try:
            response = await client.post(
                f"/api/v1/conversations/{patient.conversation_id}/messages",
                json={"text": words, "client_id": client_id},
                headers={"Authorization": f"Bearer {patient.token}"},
            )
        except httpx.TransportError:  # the worker serving it died
            response = None
        if response is not None and response.status_code == 200:
            return response.json()
        assert response is None or response.status_code == 503, response.text
        patient.retries += 1
        await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError(f"{words!r} never answered")


async def _transcript(stack: ScaledStack, conversation_id: str) -> list[tuple[int, str, str, str]]:
    engine = create_async_engine(stack.postgres.url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT seq, role, text, coalesce(status, '') FROM messages "
                     "WHERE conversation_id = :c ORDER BY seq"),
                {"c": conversation_id},
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


async def _tracker_user_texts(stack: ScaledStack, conversation_id: str) -> list[str]:
    """The user messages of Rasa's tracker (the shared store), read from whichever replica
    answers, the opening command left out."""
    env = stack.services.env
    async with httpx.AsyncClient(timeout=30) as client:
        for url in env["MESO_RASA_URL"].split(","):
            try:
                response = await client.get(
                    f"{url}/conversations/{conversation_id}/tracker",
                    params={"token": env["MESO_RASA_TOKEN"], "include_events": "ALL"},
                )
            except httpx.TransportError:
                continue
            response.raise_for_status()
            return [e["text"] for e in response.json()["events"]
                    if e["event"] == "user" and not e["text"].startswith("/")]
    raise AssertionError("no Rasa replica answers")


async def _check(stack: ScaledStack, patient: Patient) -> None:
    """Every message stored once, in order, answered; Rasa's tracker has the same turns."""
    transcript = await _transcript(stack, patient.conversation_id)
    assert [seq for seq, *_ in transcript] == list(range(1, len(transcript) + 1))
    patients = [(words, status) for _, role, words, status in transcript if role == "patient"]
    assert [words for words, _ in patients] == patient.said, "a message lost, repeated or moved"
    assert all(status == "answered" for _, status in patients)
    for index, (_, role, _, _) in enumerate(transcript):
        if role == "patient":
            assert transcript[index + 1][1] == "assistant", "a message without its answer"
    assert await _tracker_user_texts(stack, patient.conversation_id) == patient.said


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _api_workers(stack: ScaledStack) -> list[int]:
    """The pids of the API's uvicorn worker processes (children of its supervisor)."""
    supervisor = stack.services.procs[stack.services.index_of("api")][1].pid
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = [int(pid) for pid in children
               if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    return workers


def _pid(stack: ScaledStack, name: str) -> int:
    return stack.services.procs[stack.services.index_of(name)][1].pid


async def _run(stack: ScaledStack, conversations: int, turns: int,
               during: Any = None, after_turns: int = 0) -> list[Patient]:
    """``conversations`` patients, each ``turns`` turns, no pauses; ``during`` (a callable)
    runs once ``after_turns`` turns have been answered."""
    answered = 0
    reached = asyncio.Event()
    async with httpx.AsyncClient(base_url=stack.services.env["MESO_API_URL"], timeout=30) as client:
        patients = [await _open(client) for _ in range(conversations)]

        async def talk(patient: Patient, offset: int) -> None:
            nonlocal answered
            for turn in range(turns):
                await _say(client, patient, QUESTIONS[(offset + turn) % len(QUESTIONS)])
                answered += 1
                if answered >= after_turns:
                    reached.set()

        async def fault() -> None:
            if during is not None:
                await reached.wait()
                await asyncio.to_thread(during)

        await asyncio.gather(fault(), *(talk(p, i) for i, p in enumerate(patients)))
    return patients


def test_twenty_conversations_of_eight_turns_spread_over_both_workers_and_replicas(
    scaled: ScaledStack,
) -> None:
    watched = {"rasa": _pid(scaled, "rasa"), "rasa 2": _pid(scaled, "rasa 2"),
               **{f"api worker {i}": pid for i, pid in enumerate(_api_workers(scaled))}}
    assert len(watched) == 4  # two replicas, two workers
    before = {name: _cpu_seconds(pid) for name, pid in watched.items()}
    patients = asyncio.run(_run(scaled, 20, 8))
    busy = {name: _cpu_seconds(pid) - before[name] for name, pid in watched.items()}
    assert all(seconds > 0.1 for seconds in busy.values()), busy  # every one took its share
    assert sum(p.retries for p in patients) == 0  # nothing failed
    for patient in patients:
        asyncio.run(_check(scaled, patient))


def test_ten_messages_at_once_to_one_conversation_are_answered_in_order(
    scaled: ScaledStack,
) -> None:
    async def burst() -> Patient:
        async with httpx.AsyncClient(base_url=scaled.services.env["MESO_API_URL"], timeout=30) as client:
            patient = await _open(client)
            words = [f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(10)]
            replies = await asyncio.gather(*(_say(client, Patient(patient.conversation_id, patient.token,
                                                                  said=[""] * i), w)
                                             for i, w in enumerate(words)))
            assert all(reply["messages"] for reply in replies)
            return patient

    patient = asyncio.run(burst())
    transcript = asyncio.run(_transcript(scaled, patient.conversation_id))
    stored = [words for _, role, words, _ in transcript if role == "patient"]
    assert sorted(stored) == sorted(f"{QUESTIONS[i % len(QUESTIONS)]} ({i})" for i in range(10))
    patient.said = stored  # the order they were answered in: checked against Rasa's
    asyncio.run(_check(scaled, patient))


def _kill_and_restart(scaled: ScaledStack, name: str) -> Any:
    def kill() -> None:
        os.killpg(_pid(scaled, name), signal.SIGKILL)
    return kill


@pytest.mark.parametrize("victim", ["rasa", "action server"])
def test_a_process_killed_mid_run_loses_and_repeats_nothing(scaled: ScaledStack, victim: str) -> None:
    index = scaled.services.index_of(victim)
    try:
        patients = asyncio.run(_run(scaled, 10, 6, during=_kill_and_restart(scaled, victim),
                                    after_turns=15))
        assert scaled.services.procs[index][1].poll() is not None  # it really died
        print(f"{victim} killed: {sum(p.retries for p in patients)} retries of 60 turns")
        for patient in patients:
            asyncio.run(_check(scaled, patient))
    finally:
        if scaled.services.procs[index][1].poll() is not None:
            scaled.services.start_one(index)


def test_an_api_worker_killed_mid_run_loses_and_repeats_nothing(scaled: ScaledStack) -> None:
    killed: list[int] = []

    def kill_one_worker() -> None:
        pid = _api_workers(scaled)[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    patients = asyncio.run(_run(scaled, 10, 6, during=kill_one_worker, after_turns=15))
    assert killed
    print(f"API worker killed: {sum(p.retries for p in patients)} retries of 60 turns")
    for patient in patients:
        asyncio.run(_check(scaled, patient))
    deadline = time.monotonic() + 30  # uvicorn's supervisor starts a new worker
    while len(_api_workers(scaled)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_api_workers(scaled)) == 2 and killed[0] not in _api_workers(scaled)


URGENT = "my lips are swelling and i cant breathe"


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_a_datastore_down_mid_run_answers_red_flags_and_loses_nothing(
    scaled: ScaledStack, store: str,
) -> None:
    """Redis or PostgreSQL stopped for a few seconds under load, then started again: while
    it is down a red flag gets the urgent reply and a plain question a 503 saying what to do
    if it is urgent; afterwards every message is stored once, in order, and answered."""
    server = scaled.redis if store == "redis" else scaled.postgres
    env = scaled.services.env
    with httpx.Client(base_url=env["MESO_API_URL"], timeout=30) as client:
        opened = client.post("/api/v1/conversations", json=OPEN).json()
    seen: dict[str, httpx.Response] = {}

    def outage() -> None:
        auth = {"Authorization": f"Bearer {opened['token']}"}
        path = f"/api/v1/conversations/{opened['conversation_id']}/messages"
        with server.down(), httpx.Client(base_url=env["MESO_API_URL"], timeout=30) as client:
            time.sleep(1.0)
            seen["urgent"] = client.post(path, json={"text": URGENT}, headers=auth)
            seen["plain"] = client.post(path, json={"text": "how much is it?"}, headers=auth)
            time.sleep(1.0)

    patients = asyncio.run(_run(scaled, 10, 6, during=outage, after_turns=15))
    assert seen["urgent"].status_code == 200, seen["urgent"].text
    assert seen["urgent"].json()["messages"][0]["red_flag"] == "emergency"
    assert seen["plain"].status_code == 503 and "If it is urgent, call" in seen["plain"].json()["detail"]
    print(f"{store} down: {sum(p.retries for p in patients)} retries of 60 turns")
    for patient in patients:
        asyncio.run(_check(scaled, patient))


def test_the_scaled_stack_lists_its_replicas(scaled: ScaledStack) -> None:
    env = scaled.services.env
    assert len(ports(env["MESO_RASA_PORT"])) == 2 and len(ports(env["MESO_ACTION_PORT"])) == 2
    assert env["MESO_DATABASE_URL"].startswith("postgresql") and env["MESO_REDIS_URL"].startswith("redis")


def _health_checks_counted(url: str) -> float:
    """``GET /healthz`` answered, as one scrape (on a connection of its own) reports it."""
    scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                        timeout=10)
    assert scraped.status_code == 200, scraped.text
    wanted = 'meso_http_requests_total{method="GET",route="/healthz",status="200"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in scraped.text.splitlines()
               if line.startswith(wanted))


def test_a_scrape_reaching_either_worker_counts_both(scaled: ScaledStack) -> None:
    url = scaled.services.env["MESO_API_URL"]
    before = _health_checks_counted(url)
    for _ in range(30):  # each on a connection of its own: the workers share them out
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert [_health_checks_counted(url) for _ in range(8)] == [before + 30] * 8
