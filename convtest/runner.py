"""Hold each conversation through the public chat API and judge every step.

A :class:`Target` is one API: a private stack this run started, or a running deployment.
Conversations run concurrently (``workers`` at a time); one conversation's steps run in
order. A case is *failed* when an assertion does not hold, *error* when the API could not
be used (an HTTP error, no answer), *not run* when the target cannot give what it needs (a
clinic fixture on a deployment, or what the assistant understood without the test key).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.patient_auth import bearer
from api.schemas import TEST_KEY_HEADER
from convtest.checks import Check, Reply, check_step, forbidden, judge
from convtest.draft import DraftTurn
from convtest.spec import TestCase

MAX_RETRY_WAIT = 90.0
"""Seconds a conversation may spend waiting out rate limits (429) before it errors."""

PASSED, FAILED, ERROR, NOT_RUN = "passed", "failed", "error", "not run"


@dataclass
class Target:
    """One chat API to hold conversations with."""

    name: str
    url: str
    test_key: str = ""
    private: bool = False
    clinic_fixture: str | None = None


@dataclass
class Turn:
    """One exchange: what was sent (nothing for the opening) and what came back, judged."""

    kind: str
    """``start``, ``user`` or ``press``."""
    sent: str
    reply: Reply
    checks: list[Check] = field(default_factory=list)
    step: int = 0
    """The 1-based step number in the file (0: the opening)."""
    line: int | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


@dataclass
class CaseResult:
    case: TestCase
    status: str = PASSED
    reason: str = ""
    turns: list[Turn] = field(default_factory=list)
    seconds: float = 0.0
    target: str = ""

    @property
    def failures(self) -> list[tuple[Turn, Check]]:
        return [(turn, check) for turn in self.turns for check in turn.failed]

    @property
    def checks(self) -> int:
        return sum(len(turn.checks) for turn in self.turns)

    def draft_turns(self) -> list[DraftTurn]:
        """The exchanges as they happened, for ``--record``."""
        return [
            DraftTurn(kind=t.kind, text=t.sent, messages=t.reply.messages,
                      intent=(t.reply.understanding or {}).get("intent"),
                      confidence=(t.reply.understanding or {}).get("confidence"))
            for t in self.turns if t.kind != "start"
        ]


def why_not_run(case: TestCase, target: Target, *, record_only: bool = False) -> str | None:
    """Why ``case`` cannot run on ``target`` (None: it can). A recording needs no test key:
    its draft then simply has no intent."""
    if case.clinic is not None and not target.private:
        return (f"needs the clinic fixture '{case.clinic_fixture}', which only a private stack "
                f"can have (not {target.url})")
    if case.needs_understanding and not target.test_key and not record_only:
        return ("checks what the assistant understood (intent, confidence, responses, actions "
                "or slots): set MESO_TEST_KEY to the deployment's test key")
    return None


class _Unavailable(Exception):
    """The API gave no usable answer; the message says what came back."""


class Conversation:
    """One conversation through the public API."""

    def __init__(self, http: httpx.AsyncClient, target: Target, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = dict(headers)
        if target.test_key:
            self.headers[TEST_KEY_HEADER] = target.test_key
        self.conversation_id = ""
        self.token = ""
        self.waited = 0.0

    async def _post(self, path: str, body: dict[str, Any], expected: int) -> dict[str, Any]:
        headers = {**self.headers, **(bearer(self.token) if self.token else {})}
        while True:
            try:
                response = await self.http.post(path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise _Unavailable(f"no answer from the API ({type(exc).__name__})") from None
            if response.status_code == 429 and self.waited < MAX_RETRY_WAIT:
                wait = min(float(response.headers.get("Retry-After", "5") or 5), 30.0)
                self.waited += wait
                await asyncio.sleep(wait)
                continue
            if response.status_code != expected:
                try:
                    detail = response.json().get("detail", "")
                except ValueError:
                    detail = response.text[:200]
                raise _Unavailable(f"HTTP {response.status_code}: {detail}")
            try:
                return response.json()
            except ValueError:
                raise _Unavailable("the API's answer is not JSON") from None

    async def start(self, consent: bool) -> Reply:
        body = await self._post("/api/v1/conversations", {"consent": consent}, 201)
        self.conversation_id = body["conversation_id"]
        self.token = body["token"]
        return Reply(messages=body.get("messages") or [], understanding=body.get("understanding"))

    async def send(self, text: str) -> Reply:
        body = await self._post(f"/api/v1/conversations/{self.conversation_id}/messages",
                                {"text": text}, 200)
        return Reply(messages=body.get("messages") or [], understanding=body.get("understanding"))


def _press(reply: Reply, title: str) -> dict[str, str] | None:
    wanted = " ".join(title.split()).casefold()
    return next((b for b in reply.buttons
                 if " ".join(b.get("title", "").split()).casefold() == wanted), None)


async def run_case(case: TestCase, target: Target, http: httpx.AsyncClient,
                   *, record_only: bool = False) -> CaseResult:
    """Hold ``case``'s conversation on ``target`` and judge it (``record_only``: no judging)."""
    result = CaseResult(case=case, target=target.name)
    reason = why_not_run(case, target, record_only=record_only)
    if reason is not None:
        result.status, result.reason = NOT_RUN, reason
        return result
    started = time.perf_counter()
    conversation = Conversation(http, target, case.headers)
    try:
        await _hold(case, target, conversation, result, record_only)
    except _Unavailable as exc:
        result.status, result.reason = ERROR, str(exc)
    finally:
        result.seconds = time.perf_counter() - started
    if result.status == PASSED and result.failures:
        first_turn, first = result.failures[0]
        result.status = FAILED
        where = f"step {first_turn.step}" if first_turn.step else "opening"
        result.reason = f"{where}: {first.what}: expected {first.expected}; got {first.actual}"
    return result


async def _hold(case: TestCase, target: Target, conversation: Conversation,
                result: CaseResult, record_only: bool) -> None:
    reply = await conversation.start(case.consent)
    turn = Turn(kind="start", sent="", reply=reply)
    result.turns.append(turn)
    if not record_only and case.needs_understanding and reply.understanding is None:
        result.status = NOT_RUN
        result.reason = (f"{target.url} did not return what the assistant understood: "
                         "is MESO_TEST_KEY the deployment's test key?")
        return
    judge_all = not record_only
    if judge_all:
        turn.checks.extend(forbidden(reply, case.no_reply_contains, case.no_reply_matches))
    for number, step in enumerate(case.steps, start=1):
        if not step.sends:
            if judge_all:
                turn.checks.append(check_step(step, turn.reply))
            continue
        sent = step.value
        if step.kind == "press":
            button = _press(turn.reply, step.value)
            if button is None:
                offered = ", ".join(turn.reply.button_titles) or "(no button)"
                failed = Turn(kind="press", sent=step.value, reply=Reply(error="not sent"),
                              step=number, line=step.line)
                failed.checks.append(Check(f"press: {step.value}", False,
                                           f"a button titled '{step.value}'", f"offered {offered}"))
                result.turns.append(failed)
                result.reason = "the rest was not sent: a button to press was not offered"
                return
            sent = button["payload"]
        try:
            reply = await conversation.send(sent)
        except _Unavailable as exc:
            result.turns.append(Turn(kind=step.kind, sent=step.value, step=number, line=step.line,
                                     reply=Reply(error=str(exc))))
            raise _Unavailable(f"step {number} ({step.kind}: {step.value}): {exc}") from None
        turn = Turn(kind=step.kind, sent=step.value, reply=reply, step=number, line=step.line)
        result.turns.append(turn)
        if judge_all:
            turn.checks.extend(judge(a, reply) for a in step.assertions)
            turn.checks.extend(forbidden(reply, case.no_reply_contains, case.no_reply_matches))


async def run_all(cases: list[tuple[TestCase, Target]], *, workers: int = 4,
                  timeout: float = 30.0, record_only: bool = False,
                  progress: Any = None) -> list[CaseResult]:
    """Run every (case, target) pair, ``workers`` conversations at a time, in input order."""
    semaphore = asyncio.Semaphore(max(1, workers))
    clients: dict[str, httpx.AsyncClient] = {}
    for _, target in cases:
        if target.url not in clients:
            clients[target.url] = httpx.AsyncClient(base_url=target.url, timeout=timeout)

    async def one(case: TestCase, target: Target) -> CaseResult:
        async with semaphore:
            result = await run_case(case, target, clients[target.url], record_only=record_only)
        if progress is not None:
            progress(result)
        return result

    try:
        return list(await asyncio.gather(*(one(c, t) for c, t in cases)))
    finally:
        for client in clients.values():
            await client.aclose()
