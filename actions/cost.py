"""action_estimate_cost: a first course plus a year of top-ups, with every sum shown.

Two estimates, never mixed: the published figures of knowledge/decision/costs.yml (price
per visit times visits, from the lowest to the highest figure, each figure named with its
source) and, when clinic.yml sets them, the clinic's own prices. A price the clinic has not
set is said to be missing, never guessed; currencies are never converted.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from bot.dialogue.decision import (
    ClinicSum, PublishedSum, Span, button, clinic_sum, money_text, published_sums, range_list,
    response_buttons, rounded, source_list, span_text,
)
from bot.dialogue.replies import readable_date, template
from bot.kb.decision import DecisionAid
from bot.kb.model import Clinic
from bot.kb.runtime import Runtime, get_runtime


def _money(currency: str | None, span: Span) -> str:
    return span_text(span, currency, money=True)


def _figures(span: Span | None) -> dict[str, str] | None:
    return None if span is None else {"low": float(round(span.low, 2)), "high": float(round(span.high, 2))}


def published_text(domain: dict[str, Any], kb: Any, aid: DecisionAid, sums: list[PublishedSum]) -> str:
    costs = aid.costs
    parts = [template(domain, "utter_cost_published",
                      prices=range_list(kb, aid, costs.per_session),
                      course_counts=range_list(kb, aid, costs.first_course_sessions),
                      upkeep_counts=range_list(kb, aid, costs.maintenance_sessions_per_year))]
    for s in sums:
        parts.append(template(
            domain, "utter_cost_published_sum",
            course_sessions=span_text(s.course_sessions), upkeep_sessions=span_text(s.upkeep_sessions),
            price=_money(s.currency, s.price), course=_money(s.currency, s.course),
            upkeep=_money(s.currency, s.upkeep), year=_money(s.currency, rounded(s.year)),
        ))
    return "\n\n".join(parts)


def clinic_text(domain: dict[str, Any], clinic: Clinic, own: ClinicSum | None,
                published_currencies: list[str]) -> str:
    name = clinic.name
    if own is None:
        return template(domain, "utter_cost_clinic_unset", clinic=name)
    cur = own.currency
    price = money_text(cur, Decimal(str(clinic.price_per_session))) if clinic.price_per_session is not None else ""
    lines = [template(domain, "utter_cost_clinic_heading", clinic=name)]
    if own.course_how == "course_price":
        sessions = f" ({span_text(own.course_sessions)} visits)" if own.course_sessions else ""
        lines.append(template(domain, "utter_cost_clinic_course_price", clinic=name,
                              course=_money(cur, own.course), sessions=sessions))
    elif own.course_how == "sessions_times_price":
        lines.append(template(domain, "utter_cost_clinic_course_sum", clinic=name,
                              sessions=span_text(own.course_sessions), price=price, course=_money(cur, own.course)))
    elif own.course_how == "published_sessions_times_price":
        lines.append(template(domain, "utter_cost_clinic_course_published", clinic=name,
                              sessions=span_text(own.course_sessions), price=price, course=_money(cur, own.course)))
    else:
        lines.append(template(domain, "utter_cost_clinic_course_unset", clinic=name))
    if own.upkeep is not None:
        lines.append(template(domain, "utter_cost_clinic_upkeep", clinic=name,
                              sessions=span_text(own.upkeep_sessions), price=price, upkeep=_money(cur, own.upkeep)))
    else:
        lines.append(template(domain, "utter_cost_clinic_upkeep_unset", clinic=name))
    if own.year is not None and own.course is not None and own.upkeep is not None:
        lines.append(template(domain, "utter_cost_clinic_year", clinic=name, course=_money(cur, own.course),
                              upkeep=_money(cur, own.upkeep), year=_money(cur, rounded(own.year))))
    text = "\n".join(lines)
    other = [c for c in published_currencies if c != cur]
    if other:
        text += "\n\n" + template(domain, "utter_cost_currency_note", published=" and ".join(other),
                                  clinic=name, currency=cur or "-")
    return text


class ActionEstimateCost(Action):
    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime or get_runtime()

    def name(self) -> str:
        return "action_estimate_cost"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        kb = self._runtime.kb
        aid = kb.decision
        clinic = kb.clinic
        if aid is None:
            dispatcher.utter_message(text=template(domain, "utter_cost_clinic_unset", clinic=clinic.name))
            return []
        costs = aid.costs
        sums = published_sums(costs)
        own = clinic_sum(clinic, costs)
        dispatcher.utter_message(text=template(domain, "utter_cost_intro", reviewed=readable_date(aid.reviewed)))
        used = [r.source for r in (*costs.per_session, *costs.first_course_sessions,
                                   *costs.maintenance_sessions_per_year)]
        dispatcher.utter_message(text=published_text(domain, kb, aid, sums), json_message={
            "sources": source_list(kb, used),
            "cost_estimate": {"published": [
                {"currency": s.currency, "price": _figures(s.price), "course_sessions": _figures(s.course_sessions),
                 "upkeep_sessions": _figures(s.upkeep_sessions), "course": _figures(s.course),
                 "upkeep": _figures(s.upkeep), "year": _figures(s.year)} for s in sums]},
            "reviewed": aid.reviewed, "review_due": aid.review_due,
        })
        dispatcher.utter_message(
            text=clinic_text(domain, clinic, own, [s.currency for s in sums]),
            json_message={"cost_estimate": {"clinic": None if own is None else {
                "currency": own.currency, "course": _figures(own.course), "upkeep": _figures(own.upkeep),
                "year": _figures(own.year)}}},
        )
        menu = {b["payload"]: b for b in response_buttons(domain, "utter_decision_menu")}
        dispatcher.utter_message(text=template(domain, "utter_cost_end"), buttons=[
            button(domain, "utter_button_compare_cost", "compare_options", {"choice": "cost"}),
            menu["/request_callback"],
            button(domain, "utter_button_decision_menu", "decision_help"),
        ])
        return []
