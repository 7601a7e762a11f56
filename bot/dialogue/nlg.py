"""The responses Rasa sends itself, without the action server: the opening and red flags.

Rasa runs ``utter_*`` actions in its own process with its response generator; custom
actions need the action server. So that a red flag is answered, and a conversation can
start, with the action server down or stalled, those replies are responses, and this
generator (``nlg: type: bot.dialogue.nlg.ClinicResponses`` in the stack's endpoints) fills
in what the domain alone cannot:

* ``utter_red_flag``: the urgent reply for the latest message's level, in its language, with
  the clinic's numbers (``bot.dialogue.red_flags.red_flag_reply``, the same words as the
  API's safety net) and the ``red_flag`` block;
* ``{clinic}`` in every response (the clinic's name);
* ``utter_topics``: the guided decision support, the disclosure and every topic, as buttons.

The clinic file and the knowledge base's topics are read once, when Rasa creates it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Text

from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import paths
from bot.dialogue.red_flags import red_flag_reply
from bot.dialogue.replies import guide_buttons, topic_buttons
from bot.kb.loader import load_clinic
from bot.kb.model import Clinic, KnowledgeBase
from contract import urgent

RED_FLAG_RESPONSE = "utter_red_flag"
TOPICS_RESPONSE = "utter_topics"


def _built_kb() -> KnowledgeBase:
    """The knowledge base ``make kb`` built (only its topics are used here)."""
    data = json.loads(paths.kb_file().read_text(encoding="utf-8"))
    return KnowledgeBase.from_dict(data["knowledge"])


class ClinicResponses(TemplatedNaturalLanguageGenerator):
    """Rasa's templated responses, plus the clinic's facts and the urgent reply."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, domain: Optional[Domain] = None,
                 clinic: Optional[Clinic] = None, kb: Optional[KnowledgeBase] = None) -> None:
        domain = domain or Domain.empty()
        # Rasa sets ``self.responses`` again once the model's domain is loaded: read it there.
        super().__init__(domain.responses)
        self._clinic = clinic or load_clinic(paths.clinic_file())
        self._contacts = urgent.Contacts.of(self._clinic)
        self._topic_buttons = topic_buttons(kb or _built_kb())

    async def generate(self, utter_action: Text, tracker: DialogueStateTracker, output_channel: Text,
                       **kwargs: Any) -> Optional[Dict[Text, Any]]:
        if utter_action == RED_FLAG_RESPONSE:
            latest = tracker.latest_message.parse_data if tracker.latest_message else {}
            return red_flag_reply(self.responses, self._contacts, latest)
        response = await super().generate(utter_action, tracker, output_channel,
                                          **{"clinic": self._clinic.name, **kwargs})
        if response is not None and utter_action == TOPICS_RESPONSE:
            response["buttons"] = guide_buttons({"responses": self.responses}) + self._topic_buttons
        return response
