""""Questions we could not answer": grouping by similar wording (pure), and the page."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_fakes import Harness
from staff_fakes import StaffClient

from api.models import CallbackRequest, Conversation, Message
from api.staff.questions import MAX_EXAMPLES, Question, group_questions, jaccard, words

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _questions(*texts: str) -> list[Question]:
    return [Question(f"conv-{i}", 1, text, T0 + timedelta(minutes=i)) for i, text in enumerate(texts)]


def _texts(groups: list) -> list[list[str]]:
    return [[q.text for q in group.questions] for group in groups]


def test_words_are_normalised() -> None:
    assert words("How much do the SESSIONS cost?!") == {"much", "session", "cost"}
    assert words("Dyeing my hair, treated scalp") == {"dye", "hair", "treat", "scalp"}
    # Short words keep their endings; -ss and -us are no plurals.
    assert words("gas bus loss hurts") == {"gas", "bus", "loss", "hurt"}
    # Only stop words: the words themselves, so repeats still meet.
    assert words("What is it?") == {"what", "is", "it"}
    assert words("???") == {"???"}


def test_jaccard() -> None:
    assert jaccard(frozenset({"a", "b"}), frozenset({"a", "c"})) == pytest.approx(1 / 3)
    assert jaccard(frozenset({"a"}), frozenset({"a"})) == 1.0


def test_similar_phrasings_group_together_and_different_ones_apart() -> None:
    groups = group_questions(
        _questions(
            "How much does it cost?",
            "does it hurt",
            "how much does it COST",
            "what does it cost",
            "can I dye my hair after the sessions",
            "Does it hurt a lot?",
            "dyeing hair after a session",
            "qwzx plmk",
        )
    )
    assert _texts(groups) == [
        ["How much does it cost?", "how much does it COST", "what does it cost"],
        ["can I dye my hair after the sessions", "dyeing hair after a session"],
        ["does it hurt", "Does it hurt a lot?"],
        ["qwzx plmk"],
    ]
    assert [g.count for g in groups] == [3, 2, 2, 1]


def test_a_message_joins_the_most_similar_group_not_the_first() -> None:
    groups = group_questions(
        _questions("scalp itch", "scalp redness swelling", "scalp itch redness swelling")
    )
    # The last one reaches 0.5 with the first group and 0.75 with the second.
    assert _texts(groups) == [
        ["scalp redness swelling", "scalp itch redness swelling"],
        ["scalp itch"],
    ]


def test_grouping_does_not_depend_on_the_input_order() -> None:
    questions = _questions("cost please", "price of a session", "session price", "cost?", "pain")
    assert _texts(group_questions(questions)) == _texts(group_questions(questions[::-1]))


def test_groups_of_equal_size_newest_first_and_times_and_wordings() -> None:
    questions = _questions("pain", "cost", "COST ", "cost", "price", "pain", "cost!", "Cost")
    groups = group_questions(questions)
    cost = groups[0]
    assert cost.count == 5
    assert cost.example.text == "cost"  # the most frequent wording ("cost" 3 times over "Cost")
    assert [q.text for q in cost.other_examples] == ["cost!"]
    assert cost.first_seen == T0 + timedelta(minutes=1)
    assert cost.last_seen == T0 + timedelta(minutes=7)
    assert cost.conversation_ids()[0] == "conv-7"
    # "pain" (last at minute 5) before "price" (minute 4): equal counts, the newest first.
    assert [g.example.text for g in groups[1:]] == ["pain", "price"]


def test_other_examples_are_limited() -> None:
    texts = [f"cost of session number{i}" for i in range(MAX_EXAMPLES + 3)]
    group = group_questions(_questions(*texts, *texts))[0]
    assert group.count == 2 * len(texts)
    assert len(group.other_examples) == MAX_EXAMPLES


def test_ten_thousand_messages_are_grouped_exactly_once() -> None:
    topics = ["cost", "pain", "hair loss", "scalp", "results", "session", "side effect"]
    texts = [f"{topics[i % 7]} question {i % 50} variant{i % 13}" for i in range(10_000)]
    groups = group_questions(_questions(*texts))
    assert sum(g.count for g in groups) == 10_000
    seen = [(q.conversation_id, q.seq) for g in groups for q in g.questions]
    assert len(set(seen)) == 10_000


# The page ------------------------------------------------------------------------------------


def _message(cid: str, seq: int, text: str, intent: str, confidence: float | None,
             at: datetime, role: str = "patient") -> Message:
    return Message(conversation_id=cid, seq=seq, role=role, text=text, intent=intent,
                   intent_confidence=confidence, created_at=at)


async def _seed_questions(h: Harness) -> None:
    """Three conversations: fallbacks and low-confidence messages, some well understood."""
    day1, day2 = T0, T0 + timedelta(days=1)
    rows: list[Any] = [
        Conversation(id="conv-q-aaaa1", created_at=day1, last_activity_at=day1),
        Conversation(id="conv-q-bbbb2", created_at=day1, last_activity_at=day2),
        Conversation(id="conv-q-cccc3", created_at=day2, last_activity_at=day2),
        _message("conv-q-aaaa1", 1, "can I swim after a session", "nlu_fallback", 0.3, day1),
        _message("conv-q-aaaa1", 2, "what does it cost", "ask_cost", 0.95, day1),  # understood
        _message("conv-q-aaaa1", 3, "swimming after the sessions?", "ask_aftercare", 0.45, day1),
        _message("conv-q-aaaa1", 4, "reply text", "nlu_fallback", None, day1, role="assistant"),
        _message("conv-q-bbbb2", 1, "swim after session, Ann Example ann@example.com",
                 "nlu_fallback", 0.2, day2),
        _message("conv-q-bbbb2", 2, '/ask_topic{"topic":"cost"}', "ask_topic", 0.1, day2),
        _message("conv-q-cccc3", 1, "is it vegan", "ask_ingredients", 0.59, day2),
        _message("conv-q-cccc3", 2, "is it halal", "ask_ingredients", 0.6, day2),  # not under
        CallbackRequest(conversation_id="conv-q-bbbb2", name="Ann Example", email="a@b.co",
                        consent_at=day2),
    ]
    async with h.app.state.runtime.sessionmaker() as session:
        session.add_all(rows)
        await session.commit()


def _rows(html: str) -> list[str]:
    """The text of each group's row (tags stripped, spaces collapsed)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.split(r"<tr\b", body)[1:]
    return [" ".join(re.sub(r"<[^>]+>", " ", "<tr" + row).split()) for row in rows]


Page = Callable[..., Awaitable[httpx.Response]]


@pytest.fixture
async def page(h: Harness, reviewer_client: StaffClient) -> Page:
    """The page as a reviewer gets it (``await page(date_from=...)``), the data seeded."""
    await _seed_questions(h)

    async def get(**params: str) -> httpx.Response:
        return await reviewer_client.client.get("/staff/questions", params=params)

    return get


def _audited(h: Harness) -> list[dict[str, Any]]:
    rows = h.rows("SELECT * FROM audit_log WHERE action = 'view_questions'")
    assert all(row["actor_name"] == "reviewer" for row in rows)
    return [json.loads(row["detail"]) for row in rows]


@pytest.mark.anyio
async def test_the_page_groups_fallbacks_and_low_confidence_masked(page: Page, h: Harness) -> None:
    response = await page()
    assert response.status_code == 200
    assert "4 messages in 2 groups." in response.text
    swim, vegan = _rows(response.text)
    assert swim.startswith("3 can I swim after a session")
    assert "swimming after the sessions?" in swim
    assert "swim after session, A*** a***@e***.com" in swim
    assert "Ann Example" not in response.text and "ann@example.com" not in response.text
    assert vegan.startswith("1 is it vegan")
    assert 'href="/staff/conversations/conv-q-bbbb2"' in response.text
    assert 'href="/staff/conversations/conv-q-aaaa1"' in response.text
    assert "what does it cost" not in response.text and "halal" not in response.text
    assert "ask_topic" not in response.text and "reply text" not in response.text
    assert _audited(h) == [{"filters": {}, "messages": 4, "groups": 2}]


@pytest.mark.anyio
async def test_the_date_range_narrows_the_messages(page: Page, h: Harness) -> None:
    response = await page(date_from="2026-03-02", date_to="2026-03-02")
    assert response.status_code == 200
    assert "2 messages in 2 groups." in response.text
    assert "can I swim after a session" not in response.text
    [detail] = _audited(h)
    assert detail["filters"] == {"date_from": "2026-03-02", "date_to": "2026-03-02"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"date_from": "03/01/2026"}, "&#34;Sent from&#34; must be a date written as YYYY-MM-DD"),
        ({"date_to": "2026-3-1"}, "&#34;Sent to&#34; must be a date"),
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "must be on or after &#34;Sent from"),
    ],
)
async def test_bad_dates_are_a_422_with_the_reason(
    page: Page, h: Harness, params: dict[str, str], reason: str
) -> None:
    response = await page(**params)
    assert response.status_code == 422
    assert reason in response.text and 'aria-invalid="true"' in response.text
    assert "swim" not in response.text
    assert _audited(h) == [{"invalid_filter": True}]


@pytest.mark.anyio
async def test_no_questions(page: Page) -> None:
    response = await page(date_from="2027-01-01")
    assert response.status_code == 200
    assert "No questions went unanswered in these dates." in response.text
