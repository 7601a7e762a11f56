"""action_decline_request: decline a diagnosis, a dose, stopping a medicine, self-injection,
and near-topic requests (mesotherapy for fat or the face, other cosmetic procedures, writing
texts, other people's chats, records the assistant does not have).

Each reply says why the assistant can't help with that, who can (a clinician or a
pharmacist), how to reach the clinic where that helps, and offers the knowledge entries on
the subject as buttons instead of restating their facts. It never gives a dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.replies import contact_line, entry_button, template
from bot.kb.runtime import Runtime, get_runtime


@dataclass(frozen=True)
class Refusal:
    """One kind of request the assistant declines."""

    kind: str
    response: str  # the domain response giving the reason and who to ask
    entries: tuple[str, ...]  # knowledge entries offered as buttons (missing ones are skipped)
    contact: bool = True  # whether the clinic's contact line follows the reason


def _refusal(kind: str, entries: tuple[str, ...], contact: bool = True) -> Refusal:
    """A kind of request (``ask_<kind>`` in the domain) and its reply ``utter_decline_<kind>``."""
    return Refusal(kind, f"utter_decline_{kind}", entries, contact)


REFUSALS: dict[str, Refusal] = {f"ask_{r.kind}": r for r in (
    _refusal("diagnosis", ("hair-loss-types-used-for", "hair-loss-types-scalp-conditions", "choosing-clinic-book")),
    _refusal("dose", ("alternatives-minoxidil", "alternatives-finasteride", "ingredients-ask-for-list")),
    _refusal("stop_medicine", ("candidacy-blood-thinners", "candidacy-who-should-avoid", "choosing-clinic-book")),
    _refusal("self_injection", ("side-effects-serious", "choosing-clinic-safety", "regulation-off-label")),
    _refusal("other_use", ("what-is-mesotherapy", "hair-loss-types-used-for", "evidence-overall")),
    _refusal("other_procedure", ("what-is-mesotherapy", "alternatives-overview", "alternatives-compared")),
    _refusal("writing", ("what-is-mesotherapy", "evidence-overall", "about-sources"), contact=False),
    _refusal("other_person", ("what-is-mesotherapy", "side-effects-common", "cost-per-session"), contact=False),
    _refusal("records", ("ingredients-what-is-injected", "ingredients-ask-for-list", "choosing-clinic-book")),
)}


class ActionDeclineRequest(Action):
    """Declines the request named by the latest intent, with the reason and who to ask."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_decline_request"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        intent = str(((tracker.latest_message or {}).get("intent") or {}).get("name") or "")
        # A diagnosis is the safest reading when the intent is not one of ours: it declines
        # to judge the person's own case and points to a clinician.
        refusal = REFUSALS.get(intent, REFUSALS["ask_diagnosis"])
        text = template(domain, refusal.response)
        if refusal.contact:
            text += "\n\n" + contact_line(domain, kb.clinic)
        buttons = [entry_button(kb, kb.entries[e]) for e in refusal.entries if e in kb.entries]
        dispatcher.utter_message(text=text, buttons=buttons or None,
                                 json_message={"declined": refusal.kind})
        return []
