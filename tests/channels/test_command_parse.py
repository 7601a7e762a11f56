"""A command is read without the NLU pipeline, and exactly as the pipeline reads it.

Compared against the trained model's own parse (``make train``) for every command the
assistant can receive: the opening command both ways, every button payload in the domain
and every intent of the domain written as a command.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from bot import paths
from bot.channels.meso import command_parse
from contract.commands import PREFIX, command, start_command


def _button_payloads(domain: dict[str, Any]) -> set[str]:
    payloads = set()
    for variations in (domain.get("responses") or {}).values():
        for variation in variations:
            for button in variation.get("buttons") or []:
                if str(button.get("payload", "")).startswith(PREFIX):
                    payloads.add(button["payload"])
    return payloads


@pytest.fixture(scope="module")
def processor() -> Iterator[Any]:
    model = paths.REPO_ROOT / "models" / "meso.tar.gz"
    if not model.is_file():
        pytest.fail("no trained model: run `make train`")
    yield Agent.load(str(model)).processor


def _pipeline(processor: Any, text: str) -> dict[str, Any]:
    message = UserMessage(text, CollectingOutputChannel(), "command-parse-test")
    return asyncio.run(processor.parse_message(message))


def test_every_command_reads_as_the_pipeline_reads_it(processor: Any) -> None:
    domain = paths.load_domain()
    texts = ({start_command(True), start_command(False)} | _button_payloads(domain)
             | {command(intent) for intent in processor.domain.intents})
    assert len(_button_payloads(domain)) > 5  # the domain's buttons were found
    for text in sorted(texts):
        assert command_parse(processor.domain, text) == _pipeline(processor, text), text


def test_a_command_with_a_confidence_and_entities_keeps_them(processor: Any) -> None:
    parsed = command_parse(processor.domain, start_command(True).replace("{", "@0.5{", 1))
    assert parsed is not None and parsed["intent"]["confidence"] == 0.5
    assert [(e["entity"], e["value"]) for e in parsed["entities"]] == [("transcript_consent", "yes")]


@pytest.mark.filterwarnings("ignore:Failed to parse arguments")
@pytest.mark.parametrize("text", ["/not_an_intent_of_ours", "/", "hello", "/affirm extra words"])
def test_text_naming_no_intent_of_the_domain_is_left_to_the_pipeline(processor: Any, text: str) -> None:
    assert command_parse(processor.domain, text) is None
