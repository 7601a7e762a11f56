"""Shares of people out of 100: from the bot's ``figures`` block to the public Message (for the
widget's icon arrays) and to the printable summary (100 marks, N filled, with the text
alternative), the history included."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from api_fakes import Harness, messages_url

from api.models import utcnow

pytestmark = pytest.mark.anyio

REDNESS: dict[str, Any] = {
    "id": "trial-redness",
    "per_100": 88,
    "label": "88 out of 100: red skin for a few hours after a visit",
    "alt": "88 out of 100 men who had mesotherapy in one trial: red skin for a few hours after a visit.",
    "text": "88 out of 100 men who had mesotherapy in one trial: red skin for a few hours after a "
    "visit. The source's own figure: 88% (skincare guide). Group size: 25 people. Time: 8 weekly "
    "visits. How sure: One small trial.",
    "value": "88%",
    "source": "skincare-guide",
}
PLACEBO = {**REDNESS, "id": "placebo", "per_100": 7, "label": "7 out of 100: denser hair",
           "alt": "7 out of 100 people given a dummy treatment: denser hair."}
PRICE = {"value": "$250 to $400 per session", "source": "hairloss-guide"}


def replying(custom: dict[str, Any]) -> Callable[[str, str, bool], dict[str, Any]]:
    def reply(sender: str, message: str, command: bool) -> dict[str, Any]:
        return {"messages": [{"text": "Harms and side effects: ...", "custom": custom}],
                "nlu": {"intent": "compare_options", "confidence": 1.0}}

    return reply


async def say(h: Harness, conversation_id: str, text: str = "harms") -> list[dict[str, Any]]:
    response = await h.client.post(messages_url(conversation_id), json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


async def test_a_reply_carries_its_shares_for_the_icon_arrays_and_nothing_else(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"figures": [REDNESS, PRICE, PLACEBO]})

    [message] = await say(h, conversation_id)

    # Only the shares, in order, and only what the widget draws with.
    assert message["figures"] == [
        {"per_100": 88, "label": REDNESS["label"], "alt": REDNESS["alt"]},
        {"per_100": 7, "label": PLACEBO["label"], "alt": PLACEBO["alt"]},
    ]


async def test_a_message_without_shares_has_an_empty_list(h: Harness) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"figures": [PRICE]})
    [message] = await say(h, conversation_id)
    assert message["figures"] == []


@pytest.mark.parametrize("bad", [
    {**REDNESS, "per_100": 120},
    {**REDNESS, "per_100": "88"},
    {**REDNESS, "alt": ""},
    {k: v for k, v in REDNESS.items() if k != "label"},
])
async def test_a_share_outside_the_contract_draws_nothing_and_the_reply_still_shows(
    h: Harness, bad: dict[str, Any]
) -> None:
    conversation_id = await h.new_conversation()
    h.rasa.outside_contract = True
    h.rasa.reply = replying({"figures": [bad], "topic": "side_effects"})

    [message] = await say(h, conversation_id)

    assert message["text"] == "Harms and side effects: ..."
    assert message["figures"] == [] and message["topic"] == "side_effects"


async def test_the_history_rebuilt_from_the_tracker_keeps_the_shares(start: Callable[..., Any]) -> None:
    async with start() as h:
        conversation_id = await h.new_conversation(consent=False)
        h.rasa.reply = replying({"figures": [REDNESS]})
        await say(h, conversation_id)
        response = await h.client.get(f"/api/v1/conversations/{conversation_id}/messages")
        assert response.status_code == 200, response.text
        shown = [m for m in response.json()["messages"] if m["figures"]]
        assert [m["figures"][0]["per_100"] for m in shown] == [88]


async def test_the_openapi_document_describes_the_figures() -> None:
    from api.schemas import Message

    schema = Message.model_json_schema()
    figure = schema["$defs"]["Figure"]
    assert set(figure["required"]) == {"per_100", "label", "alt"}
    assert figure["properties"]["per_100"]["minimum"] == 0 and figure["properties"]["per_100"]["maximum"] == 100
    assert "figures" in schema["properties"]


# --- the printable summary -------------------------------------------------------------------

SUMMARY: dict[str, Any] = {
    "title": "Your notes for the consultation",
    "generated_at": "2026-11-29T10:15:00Z",
    "sections": [{"heading": "Numbers from the options you compared", "intro": None, "items": [
        {"text": "Mesotherapy: Harms and side effects", "sources": ["skincare-guide"],
         "figures": [REDNESS]},
        {"text": "Mesotherapy: How it can help", "sources": [],
         "figures": [{**PLACEBO, "text": None}, {**REDNESS, "per_100": 0, "alt": "0 out of 100 <b>x</b>"}]},
    ]}],
    "footer": "General information only.",
}


async def with_summary(h: Harness) -> str:
    conversation_id = await h.new_conversation()
    h.rasa.reply = replying({"summary": SUMMARY})
    await say(h, conversation_id, "summary please")
    return conversation_id


def arrays(page: str) -> list[tuple[str, list[str]]]:
    """Each icon array on the page: its text alternative and the classes of its marks."""
    found = re.findall(r'<div class="icon-array" role="img" aria-label="([^"]*)">(.*?)</div>', page, flags=re.S)
    return [(alt, re.findall(r'<span class="([^"]*)"></span>', marks)) for alt, marks in found]


async def test_the_summary_page_draws_100_marks_with_n_filled_and_the_alt_text(h: Harness) -> None:
    conversation_id = await with_summary(h)
    url = h.app.state.runtime.summary_links.url(conversation_id, utcnow())

    page = (await h.client.get(url)).text

    drawn = arrays(page)
    assert [alt for alt, _ in drawn] == [REDNESS["alt"], PLACEBO["alt"], "0 out of 100 &lt;b&gt;x&lt;/b&gt;"]
    for (_, marks), filled in zip(drawn, (88, 7, 0)):
        assert len(marks) == 100
        assert marks == ["mark on"] * filled + ["mark"] * (100 - filled), "the first N are filled, in order"
    # The share in words beside its marks; the alt stands in when the bot sent no words.
    assert f'<p class="figure-text">{REDNESS["text"]}</p>'.replace("'", "&#39;") in page
    assert f'<p class="figure-text">{PLACEBO["alt"]}</p>' in page
    # Still no script, no inline style, no event handler (CSP default-src 'self').
    assert "<script" not in page.lower() and "<b>" not in page
    assert not re.search(r"\sstyle\s*=", page, flags=re.I) and not re.search(r"\son[a-z]+\s*=", page, flags=re.I)


async def test_the_summary_document_keeps_the_figures(h: Harness) -> None:
    conversation_id = await with_summary(h)
    response = await h.client.get(f"/api/v1/conversations/{conversation_id}/summary.json")
    assert response.status_code == 200, response.text
    [item, _] = response.json()["sections"][0]["items"]
    assert item["figures"] == [{"per_100": 88, "label": REDNESS["label"], "alt": REDNESS["alt"],
                                "text": REDNESS["text"]}]


async def test_the_summary_stylesheet_draws_the_marks_in_a_10_by_10_grid(h: Harness) -> None:
    css = (await h.client.get("/static/summary.css")).text
    assert re.search(r"\.icon-array \{[^}]*grid-template-columns: repeat\(10,", css)
    assert ".icon-array .mark.on" in css
    print_css = (await h.client.get("/static/summary-print.css")).text
    assert ".icon-array .mark.on" in print_css
