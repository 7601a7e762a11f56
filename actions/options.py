"""action_compare_options: the five options side by side, one point (dimension) at a time.

Without a ``choice`` entity: an overview with a button per point and per option. With
``choice`` = a dimension id (``harms``): that point for every option, one message each.
With ``choice`` = an option id (``prp``): that option on every point. Every option gets
the same treatment in the same order; a point the sources are silent on says so. Each
message carries its own sources.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.decision import button, cell_reply, dimension_label, readable_date
from bot.dialogue.replies import Reply, command, template
from bot.kb.decision import OPTION_DIMENSIONS, DecisionAid
from bot.kb.runtime import Runtime, get_runtime


def with_not_covered(text: str, aid: DecisionAid) -> str:
    """``text`` ending with options.yml's line on the options none of the sources cover."""
    return f"{text}\n\n{aid.not_covered}" if aid.not_covered else text


def _send(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    dispatcher.utter_message(text=reply.text, buttons=reply.buttons or None, json_message=reply.custom)


class ActionCompareOptions(Action):
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_compare_options"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        aid = self._runtime.kb.decision
        if aid is None:
            dispatcher.utter_message(text=template(domain, "utter_did_not_understand"))
            return []
        choice = next(tracker.get_latest_entity_values("choice"), None)
        option_ids = [o.id for o in aid.options]
        if choice in OPTION_DIMENSIONS:
            self._dimension(dispatcher, domain, aid, choice)
        elif choice in option_ids:
            self._option(dispatcher, domain, aid, choice)
        else:
            self._overview(dispatcher, domain, aid)
        return []

    def _buttons(self, domain: dict[str, Any], aid: DecisionAid, shown: str | None) -> list[dict[str, str]]:
        """A button per point, then per option (leaving out the one just shown)."""
        buttons = [{"title": dimension_label(domain, d), "payload": command("compare_options", {"choice": d})}
                   for d in OPTION_DIMENSIONS if d != shown]
        buttons += [{"title": o.title, "payload": command("compare_options", {"choice": o.id})}
                    for o in aid.options if o.id != shown]
        return buttons

    def _overview(self, dispatcher: CollectingDispatcher, domain: dict[str, Any], aid: DecisionAid) -> None:
        names = ", ".join(o.title for o in aid.options)
        text = with_not_covered(template(domain, "utter_options_overview", options=names,
                                         reviewed=readable_date(aid.reviewed)), aid)
        dispatcher.utter_message(text=text, buttons=self._buttons(domain, aid, None),
                                 json_message={"decision": {"options": [o.id for o in aid.options],
                                                            "dimensions": list(OPTION_DIMENSIONS)},
                                               "reviewed": aid.reviewed, "review_due": aid.review_due})

    def _dimension(self, dispatcher: CollectingDispatcher, domain: dict[str, Any], aid: DecisionAid,
                   dimension: str) -> None:
        kb = self._runtime.kb
        label = dimension_label(domain, dimension)
        dispatcher.utter_message(text=template(domain, "utter_options_dimension_intro", dimension=label,
                                               reviewed=readable_date(aid.reviewed)))
        for option in aid.options:
            _send(dispatcher, cell_reply(domain, kb, aid, option, dimension, option.title))
        self._next(dispatcher, domain, aid, dimension)

    def _option(self, dispatcher: CollectingDispatcher, domain: dict[str, Any], aid: DecisionAid,
                option_id: str) -> None:
        kb = self._runtime.kb
        option = aid.option(option_id)
        dispatcher.utter_message(text=template(domain, "utter_options_option_intro", option=option.title,
                                               reviewed=readable_date(aid.reviewed)))
        for dimension in OPTION_DIMENSIONS:
            _send(dispatcher, cell_reply(domain, kb, aid, option, dimension, dimension_label(domain, dimension)))
        self._next(dispatcher, domain, aid, option_id)

    def _next(self, dispatcher: CollectingDispatcher, domain: dict[str, Any], aid: DecisionAid,
              shown: str) -> None:
        buttons = self._buttons(domain, aid, shown)
        buttons.append(button(domain, "utter_button_decision_menu", "decision_help"))
        dispatcher.utter_message(text=with_not_covered(template(domain, "utter_options_next"), aid), buttons=buttons)
