"""The contract between the runtimes, run in both environments (CPython 3.10 and 3.11+)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract import callback, commands, payloads, urgent
from contract.levels import LEVELS, MOST_SEVERE_FIRST, URGENT, most_severe, severity
from contract.safety.limits import detect_limit
from contract.safety.red_flags import detect

ROOT = Path(__file__).resolve().parents[2]


def test_the_contract_needs_nothing_beyond_the_standard_library() -> None:
    """Imported and run by an interpreter that sees no installed package at all."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import contract.payloads, contract.commands, contract.urgent, contract.callback;"
        "from contract.safety.red_flags import detect;"
        "from contract.safety.limits import detect_limit;"
        "assert detect('my lips are swelling').level == 'emergency';"
        "assert detect_limit('how many mg of minoxidil should i take').kind == 'dose';"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'yaml', 'pydantic', 'rasa', 'spacy'}];"
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(ROOT)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_one_severity_order_with_crisis_first() -> None:
    assert LEVELS == ("prompt", "same_day", "emergency", "crisis")
    assert MOST_SEVERE_FIRST == ("crisis", "emergency", "same_day", "prompt")
    assert URGENT == {"emergency", "crisis"}
    assert [severity(level) for level in LEVELS] == [0, 1, 2, 3]
    assert most_severe("emergency", None, "crisis") == "crisis"
    assert detect("i want to die and i cant breathe").level == "crisis"


@pytest.mark.parametrize("consent", [True, False])
def test_the_start_command_round_trips(consent: bool) -> None:
    text = commands.start_command(consent)
    parsed = commands.parse(text)
    assert parsed.intent == commands.START_INTENT and commands.is_start(text)
    assert parsed.entities == {commands.CONSENT_ENTITY: "yes" if consent else "no"}


@pytest.mark.parametrize("text", ["hello", "/", "/ask cost", '/ask_cost{"entry": 3}', "/ask_cost{nope"])
def test_malformed_commands_are_refused(text: str) -> None:
    assert not commands.is_command(text)
    with pytest.raises(commands.CommandError):
        commands.parse(text)


def test_button_payloads_are_built_the_same_way() -> None:
    assert commands.command("ask_cost", {"entry": "cost-per-session"}) == '/ask_cost{"entry":"cost-per-session"}'
    with pytest.raises(commands.CommandError):
        commands.command("ask cost")


def test_a_red_flag_block_is_built_and_checked_by_the_same_description() -> None:
    block = payloads.red_flag("emergency", ("breathing",))
    assert payloads.check_custom(block) == (block, [])
    with pytest.raises(ValueError):
        payloads.red_flag("urgent")


def test_blocks_outside_the_contract_are_named_with_their_kinds_never_their_values() -> None:
    kept, problems = payloads.check_custom({
        "topic": "cost",
        "score": 3,
        "red_flag": {"level": "very bad"},
        "callback": {"name": "Bob", "phone": "555-SECRET", "consent": True},
        "surprise": {"x": 1},
    })
    assert kept == {"topic": "cost"}
    found = {p.block: p.kinds for p in problems}
    assert found == {"score": ("range",), "red_flag": ("level",), "callback": ("phone",),
                     "surprise": ("unknown",)}
    assert "SECRET" not in repr(problems) and "Bob" not in repr(problems)


def test_a_level_written_loosely_still_counts() -> None:
    assert payloads.check_custom({"red_flag": {"level": " Same-Day "}})[1] == []


@pytest.mark.parametrize(("block", "kinds"), [
    ({"name": "Ann", "phone": "07700 900123", "consent": True}, []),
    ({"name": "Ann", "email": "ann@example.org", "consent": True, "preferred_time": " "}, []),
    ({"name": "Ann", "consent": True}, ["no_contact"]),
    ({"name": "Ann", "phone": "123", "consent": True}, ["phone"]),
    ({"name": "", "email": "ann@example.org", "consent": True}, ["name"]),
    ({"name": "Ann\u202e", "email": "ann@example.org", "consent": True}, ["name"]),
    ({"name": "Ann", "email": "ann@example.org", "consent": "yes"}, ["consent"]),
])
def test_callback_field_rules(block: dict, kinds: list[str]) -> None:
    request, found = callback.check(block)
    assert found == kinds
    assert (request is None) == bool(kinds)


RESPONSES = {
    "utter_red_flag_emergency": [{"text": "Call {emergency} now."}],
    "utter_red_flag_emergency_fr": [{"text": "Appelez le {emergency}."}],
    "utter_red_flag_crisis": [{"text": "Please call {crisis_line}; in danger call {emergency}."}],
    "utter_red_flag_same_day": [{"text": "Contact {clinic_call} today."}],
    "utter_red_flag_prompt": [{"text": "Book to see {clinic_call}."}],
    "utter_red_flag_call_clinic": [{"text": "{clinic} on {phone}"}],
    "utter_emergency_number_default": [{"text": "your local emergency number"}],
    "utter_emergency_number_default_fr": [{"text": "15 ou 112"}],
    "utter_crisis_line_default": [{"text": "a crisis line"}],
}


def test_urgent_text_uses_the_clinics_numbers_or_the_defaults() -> None:
    bare = urgent.Contacts(clinic="Clinic")
    full = urgent.Contacts(clinic="Clinic", phone="0123", emergency_number="999", crisis_line="116 123")
    assert urgent.urgent_text(RESPONSES, bare, "emergency") == "Call your local emergency number now."
    assert urgent.urgent_text(RESPONSES, bare, "emergency", "fr") == "Appelez le 15 ou 112."
    assert urgent.urgent_text(RESPONSES, full, "crisis") == "Please call 116 123; in danger call 999."
    assert urgent.urgent_text(RESPONSES, full, "same_day") == "Contact Clinic on 0123 today."
    assert urgent.urgent_text(RESPONSES, bare, "prompt") == "Book to see Clinic."
    with pytest.raises(ValueError):
        urgent.urgent_text(RESPONSES, bare, "soon")


SHARE = {"per_100": 88, "label": "88 out of 100: red skin for a few hours",
         "alt": "88 out of 100 men who had mesotherapy in one trial: red skin for a few hours.",
         "text": "88 out of 100 men ... Group size: 25 people.", "value": "88%", "source": "skincare-guide",
         "id": "trial-redness"}


def test_figures_are_numbers_with_their_source_or_shares_drawn_as_icon_arrays() -> None:
    block = {"figures": [{"value": "$250 to $400", "source": "hairloss-guide"}, SHARE,
                         {"per_100": 0, "label": "None", "alt": "0 out of 100 people."}]}
    assert payloads.check_custom(block) == (block, [])
    assert "figures" in payloads.ACTED_ON
    assert payloads.is_share(SHARE) and not payloads.is_share(block["figures"][0])


@pytest.mark.parametrize(("figures", "kind"), [
    ("88%", "not_a_list"),
    ([SHARE] * 51, "not_a_list"),
    ([{**SHARE, "per_100": 101}], "per_100"),
    ([{**SHARE, "per_100": -1}], "per_100"),
    ([{**SHARE, "per_100": True}], "per_100"),
    ([{**SHARE, "per_100": 88.5}], "per_100"),
    ([{**SHARE, "alt": ""}], "share"),
    ([{k: v for k, v in SHARE.items() if k != "label"}], "share"),
    ([{**SHARE, "alt": "x" * 1001}], "share"),
    ([{"source": "guide"}], "figure"),
    (["88%"], "figure"),
])
def test_a_figure_outside_the_contract_is_dropped_with_its_kind(figures: object, kind: str) -> None:
    kept, problems = payloads.check_custom({"figures": figures, "topic": "cost"})
    assert kept == {"topic": "cost"}
    assert [(p.block, kind in p.kinds) for p in problems] == [("figures", True)]


def test_summary_items_may_carry_shares_only() -> None:
    summary = {"title": "Notes", "generated_at": "2026-11-29T10:15:00Z", "footer": None, "sections": [
        {"heading": "Asked", "intro": None, "items": [{"text": "Side effects", "sources": [], "figures": [SHARE]}]}]}
    assert payloads.check_custom({"summary": summary})[1] == []
    for bad in ([{"value": "88%", "source": "guide"}], [{**SHARE, "per_100": 200}], [SHARE] * 11, "88"):
        summary["sections"][0]["items"][0]["figures"] = bad
        kept, problems = payloads.check_custom({"summary": summary})
        assert kept == {} and problems[0].block == "summary" and "item" in problems[0].kinds, bad


def test_a_field_check_block_is_three_numbers_and_nothing_else() -> None:
    """The field test's anonymous result: built and checked by the same description; a block
    with anything more (an id, a text) is refused, named by its kinds, never its values."""
    block = payloads.field_check("before", 0, 4)
    assert block == {"field_check": {"phase": "before", "knowledge": 0, "sure": 4}}
    assert payloads.check_custom(block) == (block, [])
    assert "field_check" in payloads.ACTED_ON
    kept, problems = payloads.check_custom({"field_check": {
        "phase": "after", "knowledge": 5, "sure": 4, "conversation_id": "SECRET-ID"}})
    assert kept == {} and [(p.block, p.kinds) for p in problems] == [("field_check", ("extra_keys",))]
    assert "SECRET" not in repr(problems)
    for bad, kind in [({"phase": "later", "knowledge": 1, "sure": 1}, "phase"),
                      ({"phase": "after", "knowledge": 6, "sure": 1}, "knowledge"),
                      ({"phase": "after", "knowledge": 1.0, "sure": 1}, "knowledge"),
                      ({"phase": "after", "knowledge": 1, "sure": False}, "sure"),
                      ({"phase": "after", "knowledge": 1}, "sure")]:
        assert payloads.check_custom({"field_check": bad})[1][0].kinds == (kind,)
    with pytest.raises(ValueError):
        payloads.field_check("after", 5, 5)
