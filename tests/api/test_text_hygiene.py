"""Text hygiene (``api.text_hygiene``): what a patient's text may hold at the door (refused
characters, newlines, invisible-only text, undecodable bodies), and bidirectional and
control characters shown as markers wherever staff read text (pages and exports)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
import yaml
from api_fakes import CALLBACK_REQUEST, Harness, messages_url
from markupsafe import Markup
from pydantic_core import PydanticCustomError
from staff_fakes import StaffClient

from api import text_hygiene
from api.models import CallbackRequest, utcnow
from api.schemas import EMPTY_MESSAGE_DETAIL
from api.staff.templating import environment

pytestmark = pytest.mark.anyio

RLO = "\u202e"
"""RIGHT-TO-LEFT OVERRIDE: what follows it is drawn reversed."""
SPOOF = f"price {RLO}gnp.exe"
"""Patient text that, drawn as is, reads "price exe.png"."""
MARKED = "price [U+202E]gnp.exe"

# The rules (pure) ---------------------------------------------------------------------------

REFUSED = {
    "NUL": "\x00",
    "bell": "\x07",
    "vertical tab": "\x0b",
    "escape": "\x1b",
    "DEL": "\x7f",
    "C1 padding": "\x80",
    "C1 next line": "\x85",
    "C1 application command": "\x9f",
    "high surrogate": "\ud800",
    "low surrogate": "\udfff",
}


@pytest.mark.parametrize("character", REFUSED.values(), ids=REFUSED.keys())
def test_controls_and_unpaired_surrogates_are_refused_by_code_point(character: str) -> None:
    with pytest.raises(PydanticCustomError) as raised:
        text_hygiene.clean(f"secret words {character} here")

    message = raised.value.message()
    assert raised.value.type == text_hygiene.REFUSED_ERROR
    assert f"U+{ord(character):04X}" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    "text", ["tab\tand\nnewline", "café ☕ 😀", "مرحبا", f"a{RLO}b", "a\u200db", "x\xa0y"]
)
def test_ordinary_text_tab_newline_and_format_characters_are_kept(text: str) -> None:
    assert text_hygiene.clean(text) == text


def test_crlf_and_a_lone_cr_become_lf() -> None:
    assert text_hygiene.clean("one\r\ntwo\rthree\n") == "one\ntwo\nthree\n"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n\t ",
        "\u200b",  # zero-width space
        "\u200c\u200d",  # zero-width non-joiner and joiner
        "\ufeff",  # BOM
        "\u2060\u2063",  # word joiner, invisible separator
        f"{RLO}\u2066\u200f",  # bidirectional controls only
        "\u00ad",  # soft hyphen
        "\u3164\u2800",  # Hangul filler, braille blank
        "\U000e0041\ufe0f",  # a tag character, a variation selector
        "\u3000\u2028 \u200b\n",  # ideographic space, line separator
    ],
)
def test_text_without_a_visible_character_is_empty(text: str) -> None:
    assert not text_hygiene.has_visible(text)
    with pytest.raises(PydanticCustomError) as raised:
        text_hygiene.patient_text("Empty.")(text)
    assert raised.value.type == text_hygiene.EMPTY_ERROR
    assert raised.value.message() == "Empty."


@pytest.mark.parametrize("text", ["a", "\u200b?", "١", "😀", "\u0301", f"{RLO}x"])
def test_one_visible_character_is_enough(text: str) -> None:
    assert text_hygiene.patient_text("Empty.")(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SPOOF, MARKED),
        ("\u202a\u202b\u202c\u202d", "[U+202A][U+202B][U+202C][U+202D]"),
        ("\u2066x\u2067y\u2068z\u2069", "[U+2066]x[U+2067]y[U+2068]z[U+2069]"),
        ("\u200e\u200f\u061c", "[U+200E][U+200F][U+061C]"),
        ("nul\x00 c1\x85 esc\x1b", "nul[U+0000] c1[U+0085] esc[U+001B]"),
        ("tab\tnewline\ncr\r", "tab\tnewline\ncr\r"),
        ("plain, ünïcode, 😀", "plain, ünïcode, 😀"),
    ],
)
def test_staff_see_bidirectional_and_control_characters_as_markers(
    text: str, expected: str
) -> None:
    assert text_hygiene.shown(text) == expected


def test_shown_value_walks_json_and_keeps_string_classes() -> None:
    class Block(str):
        pass

    value = {f"k{RLO}": [Block(f"a{RLO}"), (1, None, f"b{RLO}")], "n": 2.5}

    shown = text_hygiene.shown_value(value)

    assert shown == {"k[U+202E]": ["a[U+202E]", (1, None, "b[U+202E]")], "n": 2.5}
    assert type(shown["k[U+202E]"][0]) is Block


def test_every_template_expression_is_shown_with_markers_and_still_escaped() -> None:
    template = environment().from_string("<p>{{ text }}</p>{{ markup }}{{ items|join(',') }}")

    html = template.render(
        text=f"<b>{SPOOF}</b>", markup=Markup(f"<i>{RLO}</i>"), items=[RLO, "x"]
    )

    assert html == (
        f"<p>&lt;b&gt;{MARKED}&lt;/b&gt;</p><i>[U+202E]</i>[U+202E],x"
    )


# At the door --------------------------------------------------------------------------------


async def _post_raw(h: Harness, url: str, body: bytes) -> Any:
    return await h.client.post(url, content=body, headers={"Content-Type": "application/json"})


BAD_TEXT = {
    "lone surrogate": b'{"text": "a\\ud800"}',
    "low surrogate first": b'{"text": "\\udc00b"}',
    "NUL": b'{"text": "a\\u0000b"}',
    "C1 control": b'{"text": "a\\u0085b"}',
    "escape": b'{"text": "zebra \\u001b[31m quagga"}',
    "DEL": b'{"text": "a\\u007f"}',
}


@pytest.mark.parametrize("consent", [True, False], ids=["kept", "not kept"])
@pytest.mark.parametrize("body", BAD_TEXT.values(), ids=BAD_TEXT.keys())
async def test_refused_characters_get_422_naming_the_problem_and_nothing_is_stored(
    h: Harness, body: bytes, consent: bool
) -> None:
    conversation_id = await h.new_conversation(consent=consent)
    before = h.snapshot()
    calls = len(h.rasa.calls)

    response = await _post_raw(h, messages_url(conversation_id), body)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith('The field "text" is not valid: it contains ')
    assert "U+" in detail and detail.endswith("send the text again.")
    assert "zebra" not in detail and "quagga" not in detail
    assert h.snapshot() == before
    assert len(h.rasa.calls) == calls


async def test_a_lone_surrogate_is_named_as_invalid_unicode(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await _post_raw(h, messages_url(conversation_id), BAD_TEXT["lone surrogate"])

    assert "unpaired surrogate (U+D800)" in response.json()["detail"]


@pytest.mark.parametrize(
    "text", ["\u200b", "\u200b\u200c\u200d", "\ufeff \u2060", f" {RLO}\u2066 \n", "\u3164"]
)
async def test_invisible_only_text_gets_the_empty_message_error(h: Harness, text: str) -> None:
    conversation_id = await h.new_conversation()
    before = h.snapshot()

    response = await h.client.post(messages_url(conversation_id), json={"text": text})

    assert response.status_code == 422
    assert response.json() == {"detail": EMPTY_MESSAGE_DETAIL}
    assert h.snapshot() == before
    assert all(call["message"] != text.strip() for call in h.rasa.calls)


async def test_crlf_is_stored_and_sent_as_lf(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(
        messages_url(conversation_id), json={"text": "line one\r\nline two\rthree"}
    )

    assert response.status_code == 200
    assert h.messages(conversation_id)[-2]["text"] == "line one\nline two\nthree"
    assert h.rasa.calls[-1]["message"] == "line one\nline two\nthree"


async def test_a_bidirectional_control_with_words_is_kept_as_sent(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await h.client.post(messages_url(conversation_id), json={"text": SPOOF})

    assert response.status_code == 200
    assert h.messages(conversation_id)[-2]["text"] == SPOOF


UNDECODABLE = {
    "invalid UTF-8 in a string": b'{"text": "caf\xe9"}',
    "a lone continuation byte": b'{"text": "\x80"}',
    # json.loads decodes bytes with "surrogatepass": these would become an unpaired surrogate.
    "a surrogate encoded as bytes": b'{"text": "a\xed\xa0\x80"}',
    "UTF-16 with a BOM": '{"text": "hi"}'.encode("utf-16"),
    "UTF-32": '{"text": "hi"}'.encode("utf-32"),
}


@pytest.mark.parametrize("body", UNDECODABLE.values(), ids=UNDECODABLE.keys())
async def test_a_body_that_is_not_utf8_json_gets_422(h: Harness, body: bytes) -> None:
    conversation_id = await h.new_conversation()
    before = h.snapshot()

    response = await _post_raw(h, messages_url(conversation_id), body)

    assert response.status_code == 422
    assert response.json() == {"detail": text_hygiene.NOT_UTF8_DETAIL}
    assert h.snapshot() == before


async def test_a_utf8_bom_is_still_read(h: Harness) -> None:
    conversation_id = await h.new_conversation()

    response = await _post_raw(
        h, messages_url(conversation_id), '{"text": "hi"}'.encode("utf-8-sig")
    )

    assert response.status_code == 200


@pytest.mark.parametrize("message_id", ["4\u0000", "\ud800", "4\u0085"])
async def test_feedback_message_ids_with_controls_are_refused(
    h: Harness, message_id: str
) -> None:
    conversation_id = await h.new_conversation()
    await h.client.post(messages_url(conversation_id), json={"text": "cost?"})
    before = h.snapshot()

    response = await _post_raw(
        h,
        f"/api/v1/conversations/{conversation_id}/feedback",
        json.dumps({"message_id": message_id, "rating": "up"}).encode(),
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith('The field "message_id" is not valid: ')
    assert h.snapshot() == before


# Where staff read it ------------------------------------------------------------------------


def _fallback(sender: str, message: str, command: bool) -> dict[str, Any]:
    """The bot did not understand (so the message is on the questions page)."""
    return {
        "messages": [{"text": "Sorry, I did not get that."}],
        "nlu": {"intent": "nlu_fallback", "confidence": 0.2, "entities": []},
    }


async def _spoofed_conversation(h: Harness) -> str:
    """A kept conversation whose patient message holds an RLO, with a callback request
    holding one too (written directly: the bot's callback rules refuse format characters,
    so only older rows can hold them)."""
    conversation_id = await h.new_conversation()
    h.rasa.reply = _fallback
    response = await h.client.post(messages_url(conversation_id), json={"text": SPOOF})
    assert response.status_code == 200
    async with h.app.state.runtime.sessionmaker() as session:
        session.add(
            CallbackRequest(
                conversation_id=conversation_id,
                name=CALLBACK_REQUEST["name"],
                phone=CALLBACK_REQUEST["phone"],
                preferred_time=f"after {RLO}mp5",
                consent_at=utcnow(),
            )
        )
        await session.commit()
    return conversation_id


async def test_the_transcript_and_callback_details_show_the_rlo_as_a_marker(
    h: Harness, reviewer_client: StaffClient
) -> None:
    conversation_id = await _spoofed_conversation(h)

    html = (await reviewer_client.client.get(f"/staff/conversations/{conversation_id}")).text

    assert RLO not in html
    assert MARKED in html
    assert "<dd>after [U+202E]mp5</dd>" in html
    assert h.messages(conversation_id)[2]["text"] == SPOOF  # stored as the patient sent it


async def test_the_questions_page_shows_the_rlo_as_a_marker(
    h: Harness, reviewer_client: StaffClient
) -> None:
    await _spoofed_conversation(h)

    html = (await reviewer_client.client.get("/staff/questions")).text

    assert RLO not in html
    assert MARKED in html


async def test_the_inbox_shows_a_searched_rlo_as_a_marker(
    h: Harness, reviewer_client: StaffClient
) -> None:
    await _spoofed_conversation(h)

    response = await reviewer_client.client.get("/staff", params={"q": f"{RLO}gnp"})

    assert response.status_code == 200
    assert RLO not in response.text
    assert "[U+202E]gnp" in response.text


async def test_every_export_shows_the_rlo_as_a_marker(
    h: Harness, reviewer_client: StaffClient
) -> None:
    conversation_id = await _spoofed_conversation(h)
    base = f"/staff/conversations/{conversation_id}"

    texts = {}
    for name in ("export.csv", "export.json", "story.yml", "conversation-test.yml"):
        response = await reviewer_client.client.get(f"{base}/{name}")
        assert response.status_code == 200, (name, response.text)
        texts[name] = response.text
    texts["filtered.csv"] = (await reviewer_client.client.get("/staff/export.csv")).text
    texts["filtered.json"] = (await reviewer_client.client.get("/staff/export.json")).text

    for name, text in texts.items():
        assert RLO not in text, name
        assert "[U+202E]gnp.exe" in text, name
    rows = list(csv.reader(io.StringIO(texts["export.csv"])))
    assert [MARKED] == [row[4] for row in rows if row[3] == "patient"][:1]
    document = json.loads(texts["export.json"])
    [exported] = document["conversations"]
    assert exported["messages"][2]["text"] == MARKED
    assert exported["callback_requests"][0]["preferred_time"] == "after [U+202E]mp5"
    story = yaml.safe_load(texts["story.yml"])
    users = [step["user"] for step in story["stories"][0]["steps"] if "user" in step]
    assert f"{MARKED}\n" in users
    assert MARKED in [
        step.get("user") for step in yaml.safe_load(texts["conversation-test.yml"])
        ["test_cases"][0]["steps"]
    ]


def test_csv_formula_protection_still_applies_after_markers() -> None:
    from api.staff.export import to_csv

    body, _ = to_csv([[f"={RLO}HYPERLINK(1)", f"{RLO}=1+1", "+44"]])

    row = list(csv.reader(io.StringIO(body)))[1]
    assert row == ["'=[U+202E]HYPERLINK(1)", "[U+202E]=1+1", "'+44"]


async def test_browser_details_from_headers_lose_refused_characters(h: Harness) -> None:
    response = await h.client.post(
        "/api/v1/conversations",
        json={"consent": True},
        headers={"User-Agent": "Agent\x7f/1.0\x1b[31m", "Accept-Language": "en-GB\x01"},
    )
    assert response.status_code == 201
    [row] = h.rows(
        "SELECT user_agent, language FROM conversations WHERE id = ?",
        response.json()["conversation_id"],
    )
    assert (row["user_agent"], row["language"]) == ("Agent/1.0[31m", "en-GB")
