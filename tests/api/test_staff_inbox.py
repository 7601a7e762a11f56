"""The staff inbox: which conversations each filter selects, their order and paging, the page
itself (GET /staff) with its errors, and its audit entry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from api_fakes import Harness
from staff_fakes import StaffClient

from api.models import CallbackRequest, Conversation, ConversationTag, Message
from api.staff.inbox_query import (
    LOW_CONFIDENCE,
    InboxFilters,
    filtered_conversations,
    inbox_page,
    like_pattern,
)

pytestmark = pytest.mark.anyio

BASE = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
_ids = count(1)


async def seed(
    h: Harness,
    *,
    at: datetime = BASE,
    consent: bool = True,
    red_flag: str | None = None,
    reviewed: bool = False,
    callbacks: Iterable[str] = (),
    record: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
    messages: Iterable[Mapping[str, Any]] = (),
) -> str:
    """Store one conversation as the chat routes would have (``messages``: Message fields)."""
    conversation_id = f"conv-{next(_ids):04d}"
    async with h.app.state.runtime.sessionmaker() as session:
        session.add(
            Conversation(
                id=conversation_id,
                created_at=at,
                last_activity_at=at + timedelta(minutes=5),
                transcript_consent=consent,
                red_flag_level=red_flag,
                red_flag_at=at if red_flag else None,
                reviewed_at=at + timedelta(hours=1) if reviewed else None,
                reviewed_by="Rita Reviewer" if reviewed else None,
                record=record or {},
            )
        )
        for seq, fields in enumerate(messages, start=1):
            session.add(
                Message(
                    conversation_id=conversation_id,
                    seq=seq,
                    created_at=at + timedelta(seconds=seq),
                    **{"role": "patient", "text": "", **fields},
                )
            )
        for status in callbacks:
            session.add(
                CallbackRequest(
                    conversation_id=conversation_id,
                    name="Ann Example",
                    phone="+44 20 7946 0958",
                    consent_at=at,
                    status=status,
                )
            )
        for tag in tags:
            session.add(ConversationTag(conversation_id=conversation_id, tag=tag, created_by="x"))
        await session.commit()
    return conversation_id


async def matching(h: Harness, **filters: Any) -> list[str]:
    """The ids the filters select, in inbox order."""
    async with h.app.state.runtime.sessionmaker() as session:
        rows = await session.scalars(filtered_conversations(InboxFilters(**filters)))
        return [c.id for c in rows]


def ago(hours: float) -> datetime:
    return BASE - timedelta(hours=hours)


# --- order and visibility -------------------------------------------------------------------


async def test_unreviewed_red_flags_by_severity_then_open_callbacks_then_newest(h: Harness) -> None:
    newest = await seed(h, at=ago(0))
    old_prompt = await seed(h, at=ago(50), red_flag="prompt")
    old_crisis = await seed(h, at=ago(40), red_flag="crisis")
    same_day = await seed(h, at=ago(30), red_flag="same_day")
    emergency = await seed(h, at=ago(20), red_flag="emergency")
    newer_crisis = await seed(h, at=ago(10), red_flag="crisis")
    old_callback = await seed(h, at=ago(60), callbacks=["done", "open"])
    done_callback = await seed(h, at=ago(3), callbacks=["done"])
    reviewed_emergency = await seed(h, at=ago(2), red_flag="emergency", reviewed=True)
    older = await seed(h, at=ago(70))

    assert await matching(h) == [
        newer_crisis,
        old_crisis,
        emergency,
        same_day,
        old_prompt,
        old_callback,
        newest,
        reviewed_emergency,
        done_callback,
        older,
    ]


async def test_without_transcript_consent_only_callbacks_and_records_are_listed(
    h: Harness,
) -> None:
    consented = await seed(h, at=ago(1))
    await seed(h, at=ago(2), consent=False)
    with_callback = await seed(h, at=ago(3), consent=False, callbacks=["done"])
    with_record = await seed(h, at=ago(4), consent=False, record={"check_pregnant": "no"})

    assert await matching(h) == [consented, with_callback, with_record]


async def test_paging_fifty_a_page_and_past_the_end_shows_the_last_page(h: Harness) -> None:
    ids = [await seed(h, at=ago(i)) for i in range(120)]  # ids[0] is the newest

    async with h.app.state.runtime.sessionmaker() as session:
        first = await inbox_page(session, InboxFilters())
        third = await inbox_page(session, InboxFilters(page=3))
        beyond = await inbox_page(session, InboxFilters(page=9))

    assert (first.total, first.pages, first.page) == (120, 3, 1)
    assert [r.conversation.id for r in first.rows] == ids[:50]
    assert [r.conversation.id for r in third.rows] == ids[100:]
    assert (third.page, third.pages) == (3, 3)
    assert beyond.page == 3 and [r.conversation.id for r in beyond.rows] == ids[100:]


async def test_each_row_counts_its_messages_and_gathers_topics_tags_and_callback_state(
    h: Harness,
) -> None:
    conversation_id = await seed(
        h,
        callbacks=["done", "open"],
        tags=["knowledge-gap", "call back"],
        messages=[
            {"role": "assistant", "text": "Hello", "topic": None},
            {"role": "patient", "text": "how much"},
            {"role": "assistant", "text": "It costs", "topic": "cost", "feedback": "down"},
            {"role": "patient", "text": "does it hurt"},
            {"role": "assistant", "text": "A little", "topic": "pain", "feedback": "down"},
            {"role": "assistant", "text": "More on cost", "topic": "cost", "feedback": "up"},
        ],
    )
    done = await seed(h, at=ago(1), callbacks=["done"])

    async with h.app.state.runtime.sessionmaker() as session:
        page = await inbox_page(session, InboxFilters())

    row, other = page.rows
    assert row.conversation.id == conversation_id
    assert (row.patient_messages, row.thumbs_down) == (2, 2)
    assert row.topics == ["cost", "pain"]
    assert row.tags == ["call back", "knowledge-gap"]
    assert row.callback == "open"
    assert (other.conversation.id, other.callback, other.patient_messages) == (done, "done", 0)


# --- each filter ----------------------------------------------------------------------------


async def test_search_is_a_case_insensitive_substring_of_any_message(h: Harness) -> None:
    fever = await seed(h, at=ago(1), messages=[{"text": "I have a FEVER and swelling"}])
    button = await seed(
        h, at=ago(2), messages=[{"text": '/ask_topic{"topic":"cost"}', "button_title": "Fever?"}]
    )
    assistant = await seed(
        h, at=ago(3), messages=[{"role": "assistant", "text": "A fever needs a doctor."}]
    )
    await seed(h, at=ago(4), messages=[{"text": "how much does it cost"}])

    assert await matching(h, q="fever") == [fever, button, assistant]
    assert await matching(h, q="Fever And Swell") == [fever]


async def test_search_takes_percent_underscore_and_backslash_literally(h: Harness) -> None:
    percent = await seed(h, at=ago(1), messages=[{"text": "is there 50% off"}])
    await seed(h, at=ago(2), messages=[{"text": "is there 500 off"}])
    underscore = await seed(h, at=ago(3), messages=[{"text": "code a_b"}])
    await seed(h, at=ago(4), messages=[{"text": "code axb"}])
    backslash = await seed(h, at=ago(5), messages=[{"text": "path c:\\temp"}])

    assert await matching(h, q="50%") == [percent]
    assert await matching(h, q="%") == [percent]
    assert await matching(h, q="a_b") == [underscore]
    assert await matching(h, q="_") == [underscore]
    assert await matching(h, q="c:\\t") == [backslash]
    assert like_pattern("5%_\\") == "%5\\%\\_\\\\%"


async def test_date_range_includes_both_days_in_utc(h: Harness) -> None:
    before = await seed(h, at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC))
    first = await seed(h, at=datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    last = await seed(h, at=datetime(2026, 3, 4, 23, 59, 59, tzinfo=UTC))
    after = await seed(h, at=datetime(2026, 3, 5, 0, 0, tzinfo=UTC))
    f = InboxFilters.from_query

    assert await matching(h, **vars(f({"date_from": "2026-03-02", "date_to": "2026-03-04"}))) == [
        last,
        first,
    ]
    assert await matching(h, **vars(f({"date_from": "2026-03-05"}))) == [after]
    assert await matching(h, **vars(f({"date_to": "2026-03-01"}))) == [before]


async def test_red_flag_filter_by_level_any_or_none(h: Harness) -> None:
    crisis = await seed(h, at=ago(1), red_flag="crisis")
    prompt = await seed(h, at=ago(2), red_flag="prompt")
    calm = await seed(h, at=ago(3))

    assert await matching(h, red_flag="prompt") == [prompt]
    assert await matching(h, red_flag="flagged") == [crisis, prompt]
    assert await matching(h, red_flag="none") == [calm]


async def test_low_confidence_means_a_fallback_or_a_patient_message_under_the_threshold(
    h: Harness,
) -> None:
    fallback = await seed(
        h, at=ago(1), messages=[{"intent": "nlu_fallback", "intent_confidence": 0.9}]
    )
    low = await seed(
        h, at=ago(2), messages=[{"intent": "ask_cost", "intent_confidence": LOW_CONFIDENCE - 0.01}]
    )
    await seed(h, at=ago(3), messages=[{"intent": "ask_cost", "intent_confidence": LOW_CONFIDENCE}])
    await seed(h, at=ago(4), messages=[{"intent": None, "intent_confidence": None}])

    assert await matching(h, low_confidence=True) == [fallback, low]


async def test_callback_filter_requested_open_and_done(h: Harness) -> None:
    open_one = await seed(h, at=ago(1), callbacks=["done", "open"])
    done = await seed(h, at=ago(2), callbacks=["done"])
    await seed(h, at=ago(3))

    assert await matching(h, callback="requested") == [open_one, done]
    assert await matching(h, callback="open") == [open_one]
    assert await matching(h, callback="done") == [done]


async def test_thumbs_down_topic_reviewed_and_tag_filters(h: Harness) -> None:
    down = await seed(
        h,
        at=ago(1),
        tags=["knowledge-gap"],
        messages=[{"role": "assistant", "text": "x", "topic": "cost", "feedback": "down"}],
    )
    up = await seed(
        h,
        at=ago(2),
        reviewed=True,
        tags=["ok"],
        messages=[{"role": "assistant", "text": "x", "topic": "pain", "feedback": "up"}],
    )

    assert await matching(h, thumbs_down=True) == [down]
    assert await matching(h, topic="pain") == [up]
    assert await matching(h, reviewed=True) == [up]
    assert await matching(h, reviewed=False) == [down]
    assert await matching(h, tag="knowledge-gap") == [down]
    assert await matching(h, tag="knowledge-gap", reviewed=True) == []


# --- reading the query string ---------------------------------------------------------------


def test_query_string_round_trip() -> None:
    query = {
        "q": "50% off",
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
        "red_flag": "emergency",
        "low_confidence": "1",
        "callback": "open",
        "thumbs_down": "1",
        "topic": "cost",
        "reviewed": "no",
        "tag": "knowledge-gap",
        "page": "2",
    }
    filters = InboxFilters.from_query({**query, "format": "csv"})

    assert filters.reviewed is False and filters.low_confidence is True
    assert filters.to_query() == query
    assert InboxFilters.from_query({"low_confidence": "on", "tag": " Call  Back "}).to_query() == {
        "low_confidence": "1",
        "tag": "call back",
    }
    assert InboxFilters.from_query({k: "" for k in query}) == InboxFilters()


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"date_from": "03/01/2026"}, "YYYY-MM-DD"),
        ({"date_to": "2026-02-30"}, "YYYY-MM-DD"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "on or after"),
        ({"red_flag": "severe"}, "Red flag"),
        ({"callback": "maybe"}, "Callback request"),
        ({"reviewed": "perhaps"}, "Reviewed"),
        ({"low_confidence": "2"}, "ticked"),
        ({"page": "0"}, "page number"),
        ({"page": "two"}, "page number"),
        ({"tag": "<b>"}, "letters a to z, digits"),
        ({"q": "x" * 201}, "200 characters"),
    ],
)
def test_unusable_filter_values_are_refused_with_the_reason(
    params: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        InboxFilters.from_query(params)


def test_the_audit_detail_keeps_only_the_search_length() -> None:
    filters = InboxFilters.from_query({"q": "ann@example.org", "red_flag": "crisis"})

    assert filters.audit_detail() == {"red_flag": "crisis", "search_chars": 15}


# --- the page -------------------------------------------------------------------------------

_ROW_LINK = re.compile(r'<th scope="row">\s*<a href="/staff/conversations/([^"]+)"')


def listed(html: str) -> list[str]:
    """The conversation ids of the inbox's rows, in order."""
    return _ROW_LINK.findall(html)


def audit_rows(h: Harness, action: str) -> list[dict[str, Any]]:
    return [
        {**dict(row), "detail": json.loads(row["detail"])}
        for row in h.rows("SELECT * FROM audit_log WHERE action = ? ORDER BY id", action)
    ]


async def test_the_inbox_lists_priority_first_with_words_not_only_colours(
    h: Harness, reviewer_client: StaffClient
) -> None:
    plain = await seed(h, at=ago(1), messages=[{"text": "hi"}, {"text": "more"}])
    callback = await seed(h, at=ago(5), callbacks=["open"])
    emergency = await seed(h, at=ago(9), red_flag="emergency")

    response = await reviewer_client.client.get("/staff")

    assert response.status_code == 200
    assert listed(response.text) == [emergency, callback, plain]
    assert 'class="red-flag red-flag--emergency"' in response.text
    assert "Emergency</span>" in response.text and "Open</span>" in response.text
    assert "3 conversations. Page 1 of 1." in response.text


async def test_a_bad_filter_answers_422_with_the_reason_and_no_results(
    h: Harness, reviewer_client: StaffClient
) -> None:
    await seed(h)

    response = await reviewer_client.client.get("/staff?date_from=31/12/2026&q=x")

    assert response.status_code == 422
    assert "must be a date written as YYYY-MM-DD" in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="31/12/2026"' in response.text  # kept, to be corrected
    assert listed(response.text) == []
    assert "export.csv" not in response.text
    [entry] = audit_rows(h, "view_inbox")
    assert entry["detail"] == {"invalid_filter": True}


async def test_each_view_is_audited_with_the_filters_but_not_the_search_text(
    h: Harness, admin_client: StaffClient
) -> None:
    await seed(h, messages=[{"text": "my email is ann@example.org"}])

    response = await admin_client.client.get(
        "/staff", params={"q": "ann@example.org", "red_flag": "none", "thumbs_down": ""}
    )

    assert response.status_code == 200 and len(listed(response.text)) == 1
    [entry] = audit_rows(h, "view_inbox")
    assert (entry["actor_name"], entry["target_id"]) == ("admin", None)
    assert entry["detail"] == {
        "filters": {"red_flag": "none", "search_chars": 15},
        "page": 1,
        "shown": 1,
        "total": 1,
    }
    assert "ann@" not in json.dumps(
        [tuple(r) for r in h.rows("SELECT * FROM audit_log")], default=str
    )


async def test_paging_links_keep_the_filters(h: Harness, reviewer_client: StaffClient) -> None:
    for i in range(51):
        await seed(h, at=ago(i))
    await seed(h, at=ago(100), red_flag="prompt", reviewed=True)

    first = await reviewer_client.client.get("/staff?red_flag=none")
    second = await reviewer_client.client.get("/staff?red_flag=none&page=2")

    assert "51 conversations match these filters. Page 1 of 2." in first.text
    assert 'href="/staff?red_flag=none&amp;page=2" rel="next"' in first.text
    assert 'rel="prev"' not in first.text
    assert len(listed(first.text)) == 50 and len(listed(second.text)) == 1
    assert 'href="/staff?red_flag=none" rel="prev"' in second.text
    assert 'rel="next"' not in second.text


async def test_the_export_form_carries_the_filters_but_not_the_page(
    h: Harness, reviewer_client: StaffClient
) -> None:
    await seed(h, red_flag="crisis", messages=[{"text": "help"}])

    response = await reviewer_client.client.get("/staff?red_flag=crisis&q=help&page=1")

    assert 'action="/staff/export.csv"' in response.text
    assert '<input type="hidden" name="red_flag" value="crisis">' in response.text
    assert '<input type="hidden" name="q" value="help">' in response.text
    assert 'name="page"' not in response.text


async def test_topic_and_tag_choices_come_from_what_is_in_use(
    h: Harness, reviewer_client: StaffClient
) -> None:
    await seed(
        h,
        tags=["knowledge-gap"],
        messages=[{"role": "assistant", "text": "x", "topic": "cost"}],
    )

    response = await reviewer_client.client.get("/staff?tag=knowledge-gap")

    assert '<option value="cost">cost</option>' in response.text
    assert '<option value="knowledge-gap" selected>knowledge-gap</option>' in response.text
    assert len(listed(response.text)) == 1
