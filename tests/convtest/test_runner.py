"""Holding conversations and judging them, against a fake of the chat API's contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from chat_fake import KEY, FakeChat, message

from api.schemas import TEST_KEY_HEADER
from convtest import draft, report
from convtest.runner import ERROR, FAILED, NOT_RUN, PASSED, Target, run_all, run_case
from convtest.spec import Catalog, TestCase, read_file

pytestmark = pytest.mark.anyio

PRIVATE = Target(name="private", url="http://chat.test", test_key=KEY, private=True)
DEPLOYMENT = Target(name="staging", url="http://chat.test")
PAYLOAD = '/ask_topic{"topic":"cost"}'
DEPLOYMENT_SUITE = """
fixtures:
  - priced:
      clinic: {name: Test, price_per_session: 300}
test_cases:
  - test_case: clinic
    fixtures: [priced]
    steps: [{user: "price?"}]
  - test_case: intent
    steps:
      - user: hi
        assertions: [{intent: greet}]
  - test_case: plain
    steps:
      - user: hi
        assertions: [{buttons: ["What does it cost?"]}]
"""
"""A clinic fixture, an intent check and a plain check: what a deployment can and cannot run."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def cases(tmp_path: Path, text: str) -> list[TestCase]:
    path = tmp_path / "t.yml"
    path.write_text(text, encoding="utf-8")
    found, problems = read_file(path, Catalog())
    assert problems == []
    return found


def cost_answer(text: str) -> dict[str, Any]:
    if text == PAYLOAD:
        return {"messages": [message("It costs $250 to $400.", topic="cost", entry="cost-per-session",
                                     sources=[{"id": "hairloss-guide", "title": "Guide"}])],
                "understanding": {"intent": "ask_topic", "confidence": 1.0}}
    return {"messages": [message("Pick one.", buttons=[{"title": "What does it cost?", "payload": PAYLOAD}])],
            "understanding": {"intent": "greet", "confidence": 0.91, "actions": ["utter_menu"],
                              "responses": ["utter_menu"], "slots": {"topic": None}}}


async def run(case: TestCase, fake: FakeChat, target: Target = PRIVATE):
    async with fake.client() as http:
        return await run_case(case, target, http)


async def test_a_press_sends_the_payload_of_the_button_with_that_title(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, """
test_cases:
  - test_case: press
    steps:
      - bot: Hello.
      - user: hi
        assertions:
          - buttons: ["what does it COST?"]
          - intent: greet
          - min_confidence: 0.9
      - utter: utter_menu
      - slot_was_set: [topic]
      - press: What does it cost?
        assertions:
          - topic: cost
          - entry: cost-per-session
          - sources: [hairloss-guide]
          - text_contains: ["$250"]
          - red_flag: none
""")
    fake = FakeChat(cost_answer)

    result = await run(case, fake)

    assert result.status == PASSED, result.failures
    assert fake.sent == ["hi", PAYLOAD]
    assert fake.consents == [True]
    assert result.checks == 11


async def test_failures_show_what_was_expected_beside_what_came_back(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, """
test_cases:
  - test_case: wrong
    no_reply:
      contains: ["$250"]
    steps:
      - user: hi
        assertions:
          - topic: pain
          - intent: [ask_pain, ask_cost]
      - bot: Something else.
      - press: What does it cost?
""")

    result = await run(case, FakeChat(cost_answer))

    assert result.status == FAILED
    shown = [(turn.step, check.what, check.expected, check.actual) for turn, check in result.failures]
    assert shown == [
        (1, "topic: pain", "topic pain", "topic (none)"),
        (1, "intent: ask_pain, ask_cost", "intent ask_pain or ask_cost", "intent greet (0.91)"),
        (1, "bot: Something else.", "message 1: Something else.", "message 1: Pick one."),
        (3, "no_reply contains: $250", "no reply contains '$250'", "It costs $250 to $400."),
    ]
    assert result.reason.startswith("step 1: topic: pain: expected topic pain; got topic (none)")


async def test_a_button_not_offered_fails_and_stops_the_conversation(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, """
test_cases:
  - test_case: missing button
    steps:
      - user: hi
      - press: Book now
      - user: never sent
""")
    fake = FakeChat(cost_answer)

    result = await run(case, fake)

    assert result.status == FAILED
    assert fake.sent == ["hi"]
    (turn, check), = result.failures
    assert (turn.step, check.expected, check.actual) == (
        2, "a button titled 'Book now'", "offered What does it cost?")


async def test_an_http_error_is_an_error_with_the_apis_detail(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, "test_cases:\n  - test_case: down\n    steps:\n      - user: hi\n")
    fake = FakeChat(lambda text: httpx.Response(503, json={"detail": "The assistant is not available"}))

    result = await run(case, fake)

    assert result.status == ERROR
    assert result.reason == "step 1 (user: hi): HTTP 503: The assistant is not available"


async def test_rate_limits_are_waited_out(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, "test_cases:\n  - test_case: busy\n    steps:\n      - user: hi\n")
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "wait"}),
                    cost_answer("hi")])

    result = await run(case, FakeChat(lambda text: next(answers)))

    assert result.status == PASSED
    assert result.turns[-1].reply.messages[0]["text"] == "Pick one."


async def test_on_a_deployment_clinic_fixtures_and_understanding_without_the_key_are_not_run(
    tmp_path: Path,
) -> None:
    clinic, intent, plain = cases(tmp_path, DEPLOYMENT_SUITE)
    fake = FakeChat(cost_answer)

    async with fake.client() as http:
        results = [await run_case(c, DEPLOYMENT, http) for c in (clinic, intent, plain)]

    assert [r.status for r in results] == [NOT_RUN, NOT_RUN, PASSED]
    assert "clinic fixture 'priced'" in results[0].reason
    assert "MESO_TEST_KEY" in results[1].reason
    assert fake.sent == ["hi"], "a test that cannot run sends nothing"
    assert all(TEST_KEY_HEADER not in headers for headers in fake.headers)


async def test_a_wrong_key_is_reported_as_not_run_never_passed(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, """
test_cases:
  - test_case: intent
    steps:
      - user: hi
        assertions: [{intent: greet}]
""")
    wrong = Target(name="staging", url="http://chat.test", test_key="not-the-key")

    result = await run(case, FakeChat(cost_answer), wrong)

    assert result.status == NOT_RUN
    assert "did not return what the assistant understood" in result.reason


async def test_reports_put_failures_first_and_show_the_difference(tmp_path: Path) -> None:
    good, bad = cases(tmp_path, """
test_cases:
  - test_case: good
    tags: [ok]
    steps: [{user: hi, assertions: [{buttons: ["What does it cost?"]}]}]
  - test_case: bad
    tags: [broken]
    steps: [{user: hi, assertions: [{text_contains: [zebra <b>]}]}]
""")
    fake = FakeChat(cost_answer)
    async with fake.client() as http:
        results = [await run_case(good, PRIVATE, http), await run_case(bad, PRIVATE, http)]

    page, xml = tmp_path / "r.html", tmp_path / "j.xml"
    report.html(results, page, tmp_path, target="fake", seconds=1.0)
    report.junit(results, xml, tmp_path)
    text = page.read_text()
    summary = report.console(results, tmp_path, 1.0)

    assert text.index('id="bad"') < text.index('id="good"')
    assert "contains zebra &lt;b&gt;" in text and "<b>]" not in text
    assert "missing zebra &lt;b&gt; in: Pick one." in text
    root = ET.parse(xml).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    failure = root.find(".//testcase[@name='bad']/failure")
    assert failure is not None and "expected: contains zebra <b>" in failure.text
    assert "got:      missing zebra <b> in: Pick one." in failure.text
    assert summary.splitlines()[0] == "FAILED: bad (t.yml:6)"
    assert summary.splitlines()[-1].endswith("1 passed, 1 failed")


async def test_run_all_holds_conversations_concurrently_in_input_order(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    found = cases(tmp_path, "test_cases:\n" + "".join(
        f"  - test_case: c{i}\n    steps: [{{user: hi}}]\n" for i in range(6)))
    fake = FakeChat(cost_answer)
    import convtest.runner as runner

    real_client = httpx.AsyncClient
    monkeypatch.setattr(runner.httpx, "AsyncClient",
                        lambda base_url, timeout: real_client(
                            transport=httpx.MockTransport(fake.handler), base_url=base_url))

    results = await run_all([(c, PRIVATE) for c in found], workers=3)

    assert [r.case.name for r in results] == [f"c{i}" for i in range(6)]
    assert all(r.status == PASSED for r in results)
    assert len(fake.consents) == 6


async def test_a_recorded_draft_reads_back_without_a_problem(tmp_path: Path) -> None:
    (case,) = cases(tmp_path, """
test_cases:
  - test_case: to record
    tags: [draft]
    steps:
      - user: hi
      - press: What does it cost?
""")
    async with FakeChat(cost_answer).client() as http:
        result = await run_case(case, PRIVATE, http, record_only=True)
    doc = draft.document([draft.test_case("recorded", result.draft_turns())])
    path = tmp_path / "recorded.yml"
    path.write_text(draft.dump(doc, header="a draft"), encoding="utf-8")

    (read,), problems = read_file(path, Catalog())

    assert problems == []
    assert [s.kind for s in read.steps] == ["user", "press"]
    first = {a.name: a.value for a in read.steps[0].assertions}
    second = {a.name: a.value for a in read.steps[1].assertions}
    assert first["intent"] == ["greet"] and first["min_confidence"] == pytest.approx(0.8)
    assert first["buttons"] == ["What does it cost?"]
    assert second["entry"] == "cost-per-session" and second["sources"] == ["hairloss-guide"]
    assert second["text_contains"] == ["It costs $250 to $400"]
    assert path.read_text().startswith("# a draft\n")


async def test_recording_needs_no_key_but_still_no_clinic_fixture_on_a_deployment(tmp_path: Path) -> None:
    clinic, intent, _ = cases(tmp_path, DEPLOYMENT_SUITE)
    fake = FakeChat(cost_answer)

    async with fake.client() as http:
        skipped = await run_case(clinic, DEPLOYMENT, http, record_only=True)
        recorded = await run_case(intent, DEPLOYMENT, http, record_only=True)

    assert skipped.status == NOT_RUN and skipped.draft_turns() == []
    assert recorded.status == PASSED
    assert [t.text for t in recorded.draft_turns()] == ["hi"]
    assert recorded.draft_turns()[0].intent is None, "no key: the draft has no intent"
