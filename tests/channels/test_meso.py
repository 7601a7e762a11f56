"""The API-facing Rasa channel never lets typed text act as an intent command."""

from __future__ import annotations

import pytest

from bot.channels.meso import as_words


@pytest.mark.parametrize(
    "typed, expected",
    [
        ('/inform{"x": 1}', 'inform{"x": 1}'),
        ("  //ask_cost", "ask_cost"),
        ("/ /restart", "restart"),
        ("how much is it?", "how much is it?"),
        ("price / session", "price / session"),
    ],
)
def test_leading_slashes_are_dropped(typed: str, expected: str) -> None:
    assert as_words(typed) == expected
    assert not as_words(typed).startswith("/")


@pytest.mark.asyncio
async def test_an_answer_keeps_its_sources_in_the_same_message() -> None:
    from bot.channels.meso import WholeMessagesOutput

    out = WholeMessagesOutput()
    await out.send_response("c1", {
        "text": "An answer", "buttons": [{"title": "More", "payload": "/ask_cost"}],
        "custom": {"sources": [{"id": "s", "title": "S", "url": None}], "topic": "cost"},
    })
    await out.send_response("c1", {"text": "Plain glue"})
    assert len(out.messages) == 2
    first, second = out.messages
    assert first["text"] == "An answer" and first["custom"]["topic"] == "cost"
    assert first["buttons"][0]["payload"] == "/ask_cost"
    assert second == {"recipient_id": "c1", "text": "Plain glue"}


@pytest.mark.asyncio
async def test_a_block_outside_the_contract_is_logged_as_it_leaves(caplog: pytest.LogCaptureFixture) -> None:
    from bot.channels.meso import WholeMessagesOutput

    out = WholeMessagesOutput()
    caplog.set_level("ERROR", logger="bot.channels.meso")
    await out.send_response("c1", {"text": "x", "custom": {"red_flag": {"level": "soonish"}, "topic": "cost"}})
    await out.send_response("c1", {"text": "y", "custom": {"red_flag": {"level": "crisis", "flags": []}}})
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ["meso channel: red_flag block outside the contract (level), sender c1"]
    assert len(out.messages) == 2  # sent all the same: the API drops the block, keeps the text
