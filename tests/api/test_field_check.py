"""The field test's anonymous results: stored as counts with no conversation id, whatever
the transcript consent; the staff page and its CSV per month (no id, no text, formulas
neutralised); who may see them."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from api_fakes import REFUSED, Harness, messages_url
from staff_fakes import StaffClient

from api.models import FieldCheckCount
from api.staff.field_check import CSV_COLUMNS, FEW, figures

pytestmark = pytest.mark.anyio

COLUMNS = ["month", "phase", "knowledge", "sure", "checks"]


def replying(*messages: dict[str, Any]) -> Callable[[str, str, bool], dict[str, Any]]:
    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": list(messages), "nlu": {"intent": "field_check", "confidence": 1.0}}

    return reply


def finished(phase: str, knowledge: int, sure: int) -> dict[str, Any]:
    """The bot's last message of a finished check (actions/field_check.py)."""
    return {"text": "Thank you! That is the check done.",
            "custom": {"field_check": {"phase": phase, "knowledge": knowledge, "sure": sure}}}


async def say(h: Harness, conversation_id: str, text: str = "/field_check") -> list[dict[str, Any]]:
    response = await h.client.post(messages_url(conversation_id), json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def counts(h: Harness) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in h.rows(f"SELECT {', '.join(COLUMNS)} FROM field_check_counts ORDER BY 1, 2, 3, 4")]


def add_counts(h: Harness, *rows: tuple[str, str, int, int, int]) -> None:
    """Rows written straight into the database, as months of checks would leave them."""
    for row in rows:
        h.execute(f"INSERT INTO field_check_counts ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?)", *row)


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


# --- storing -------------------------------------------------------------------------------


async def test_the_table_has_no_conversation_id_and_no_time(h: Harness) -> None:
    assert await h.columns("field_check_counts") == COLUMNS
    assert await h.foreign_keys("field_check_counts") == []
    assert [c.name for c in FieldCheckCount.__table__.columns] == COLUMNS


@pytest.mark.parametrize("consent", [True, False])
async def test_a_finished_check_is_counted_without_the_conversation(h: Harness, consent: bool) -> None:
    conversation_id = await h.new_conversation(consent=consent)
    h.rasa.reply = replying(finished("before", 3, 2))
    month = this_month()

    shown = await say(h, conversation_id)

    assert shown[0]["text"] == "Thank you! That is the check done."
    assert "field_check" not in shown[0], "the browser never sees the block"
    assert counts(h) in ([(month, "before", 3, 2, 1)], [(this_month(), "before", 3, 2, 1)])
    # Nothing of it is anywhere with the conversation: not its row, not its messages.
    stored = [str(tuple(row)) for row in h.rows("SELECT * FROM field_check_counts")]
    assert stored and not any(conversation_id in row for row in stored)
    [row] = h.rows("SELECT record, summary FROM conversations WHERE id = ?", conversation_id)
    assert (row["record"], row["summary"]) == ("{}", None)
    if not consent:
        assert h.messages(conversation_id) == []


async def test_the_same_result_adds_to_one_row_and_others_get_their_own(h: Harness) -> None:
    first, second = await h.new_conversation(), await h.new_conversation(consent=False)
    h.rasa.reply = replying(finished("before", 3, 2))
    await say(h, first)
    await say(h, second)
    h.rasa.reply = replying(finished("after", 5, 4))
    await say(h, first)
    month = this_month()
    assert counts(h) == [(month, "after", 5, 4, 1), (month, "before", 3, 2, 2)]


@pytest.mark.parametrize("block", [
    {"phase": "before", "knowledge": 3, "sure": 2, "conversation_id": "abc"},
    {"phase": "before", "knowledge": 3, "sure": 2, "note": "I was unsure"},
    {"phase": "during", "knowledge": 3, "sure": 2},
    {"phase": "after", "knowledge": 6, "sure": 2},
    {"phase": "after", "knowledge": 3, "sure": 5},
    {"phase": "after", "knowledge": "3", "sure": 2},
    {"phase": "after", "knowledge": True, "sure": 2},
])
async def test_a_block_outside_the_contract_is_dropped_and_the_reply_kept(h: Harness, block: dict) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.outside_contract = True
    h.rasa.reply = replying({"text": "Thank you!", "custom": {"field_check": block}})
    shown = await say(h, conversation_id)
    assert [m["text"] for m in shown] == ["Thank you!"]
    assert counts(h) == []


async def test_the_database_refuses_a_result_out_of_range(h: Harness) -> None:
    for bad in (("2026-03", "during", 1, 1, 1), ("2026-03", "before", 6, 1, 1),
                ("2026-03", "before", 1, 5, 1), ("2026-03", "before", 1, 1, 0)):
        with pytest.raises(REFUSED):
            add_counts(h, bad)


# --- the figures ---------------------------------------------------------------------------


def _row(month: str, phase: str, knowledge: int, sure: int, checks: int) -> FieldCheckCount:
    return FieldCheckCount(month=month, phase=phase, knowledge=knowledge, sure=sure, checks=checks)


def test_figures_per_month_keep_before_and_after_apart() -> None:
    months = figures([
        _row("2026-03", "before", 2, 1, 3), _row("2026-03", "before", 4, 4, 1),
        _row("2026-03", "after", 5, 4, 2), _row("2026-03", "after", 3, 2, 2),
        _row("2026-04", "before", 1, 0, 1),
    ])
    assert [m.month for m in months] == ["2026-04", "2026-03"]
    april, march = months
    assert (march.before.took, march.after.took) == (4, 4)
    assert march.before.mean_knowledge == pytest.approx((2 * 3 + 4) / 4)
    assert march.after.mean_knowledge == pytest.approx((5 * 2 + 3 * 2) / 4)
    assert (march.before.share_sure_all, march.after.share_sure_all) == (0.25, 0.5)
    assert march.before.knowledge == (0, 0, 3, 0, 1, 0) and march.after.sure == (0, 0, 2, 0, 2)
    # A month with no check at the end: nothing to average, no share.
    assert (april.after.took, april.after.mean_knowledge, april.after.share_sure_all) == (0, None, None)
    assert april.before.few and not april.after.few and FEW == 5


# --- the staff page and its CSV -------------------------------------------------------------


async def test_the_page_shows_each_month_with_before_and_after(h: Harness, reviewer_client: StaffClient) -> None:
    add_counts(h, ("2026-03", "before", 2, 4, 6), ("2026-03", "after", 4, 4, 3),
               ("2026-03", "after", 5, 1, 3), ("2026-02", "before", 1, 0, 2))
    response = await reviewer_client.client.get("/staff/field-check")
    assert response.status_code == 200
    page = response.text
    assert page.index("2026-03") < page.index("2026-02")
    row = page[page.index("<th scope=\"row\">2026-03"):].split("</tr>")[0]
    cells = [c.split("</td>")[0].strip() for c in row.split('<td class="num">')[1:]]
    assert cells == ["6", "6", "2.0 of 5", "4.5 of 5", "100%", "50%"]
    assert "too few to read" in page.split("2026-02")[1]
    assert 'href="/staff/field-check" aria-current="page">Field test</a>' in page
    [entry] = h.rows("SELECT detail FROM audit_log WHERE action = 'view_field_check'")
    assert entry["detail"] == '{"months": 2}'


async def test_the_page_without_any_check(reviewer_client: StaffClient) -> None:
    response = await reviewer_client.client.get("/staff/field-check")
    assert response.status_code == 200 and "No checks yet." in response.text


async def test_every_console_page_links_to_it(reviewer_client: StaffClient) -> None:
    page = (await reviewer_client.client.get("/staff/questions")).text
    assert '<a href="/staff/field-check">Field test</a>' in page


async def test_the_csv_has_numbers_per_month_and_no_id_nor_text(h: Harness, reviewer_client: StaffClient) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying(finished("after", 4, 3))
    await say(h, conversation_id)
    add_counts(h, ("2026-03", "before", 2, 4, 6))

    response = await reviewer_client.client.get("/staff/field-check.csv")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="field-check-')
    assert response.headers["cache-control"] == "no-store"
    assert conversation_id not in response.text and conversation_id[:8] not in response.text
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert not any("conversation" in column or "text" in column for column in rows[0])
    by_key = {(r[0], r[1]): dict(zip(rows[0], r)) for r in rows[1:]}
    assert set(by_key) == {(this_month(), "before"), (this_month(), "after"), ("2026-03", "before"), ("2026-03", "after")}
    now_after = by_key[(this_month(), "after")]
    assert (now_after["took"], now_after["mean_knowledge"], now_after["share_sure_4_of_4"]) == ("1", "4.00", "0.000")
    assert (now_after["knowledge_4"], now_after["sure_3"]) == ("1", "1")
    march = by_key[("2026-03", "before")]
    assert (march["took"], march["mean_knowledge"], march["share_sure_4_of_4"]) == ("6", "2.00", "1.000")
    assert by_key[("2026-03", "after")]["took"] == "0" and by_key[("2026-03", "after")]["mean_knowledge"] == ""
    [entry] = h.rows("SELECT detail FROM audit_log WHERE action = 'export'")
    assert entry["detail"] == '{"format": "field_check_csv", "rows": 4}'


async def test_the_csv_neutralises_what_a_spreadsheet_would_run(h: Harness, reviewer_client: StaffClient) -> None:
    # No text is ever stored here; a month written into the database by hand still cannot
    # become a formula in a spreadsheet.
    add_counts(h, ("=1+2", "before", 1, 1, 1), ("@SUM(1)", "after", 1, 1, 1))
    body = (await reviewer_client.client.get("/staff/field-check.csv")).text
    rows = list(csv.reader(io.StringIO(body)))
    months = {r[0] for r in rows[1:]}
    assert months == {"'=1+2", "'@SUM(1)"}


async def test_only_staff_see_the_figures(h: Harness) -> None:
    for url in ("/staff/field-check", "/staff/field-check.csv"):
        response = await h.client.get(url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/staff/login?next=%2Fstaff%2Ffield-check")
        assert response.content == b""


async def test_the_routes_are_tagged_for_any_member_of_staff(h: Harness) -> None:
    from fastapi.routing import iter_route_contexts

    found = {c.path: list(c.tags) for c in iter_route_contexts(h.app.routes)
             if (c.path or "").startswith("/staff/field-check")}
    assert found == {"/staff/field-check": ["staff"], "/staff/field-check.csv": ["staff"]}
