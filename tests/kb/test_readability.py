"""Plain language: knowledge answers a 13-year-old can follow, each with its review date.

Measured with eval.readability (Flesch-Kincaid grade, textstat 0.7.3 with Pyphen), the
same measure ``make readability`` reports for every text the assistant can send.
"""

from __future__ import annotations

import pytest

from bot import paths
from bot.dialogue.replies import answer_reply
from bot.kb.build import validate
from bot.kb.model import KnowledgeBase
from eval import readability

MAX_GRADE = 8.0
MIN_SHARE = 0.9


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return validate(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir())


def test_grade_tells_an_easy_text_from_a_hard_one() -> None:
    easy = "The cat sat on the mat. It was a warm day. The dog ran to the park."
    hard = ("Pharmacological interventions demonstrating statistically significant "
            "improvements in terminal hair density necessitate rigorous, independently "
            "replicated, placebo-controlled methodological evaluation.")
    assert readability.grade(easy) <= 2
    assert readability.grade(hard) > 16
    # Line breaks and runs of spaces do not change the grade.
    assert readability.grade("The cat sat\n\n on the   mat.") == readability.grade("The cat sat on the mat.")


def test_summary_counts_bands_and_the_share_at_or_below_the_grade() -> None:
    summary = readability.summarise([3.0, 6.0, 7.9, 8.0, 9.5, 11.0, 14.2], max_grade=8)
    assert summary["bands"] == {"<=6": 2, "6-8": 2, "8-10": 1, "10-12": 1, ">12": 1}
    assert summary["at_or_below"] == 4 and summary["share_at_or_below"] == round(4 / 7, 4)
    assert summary["median"] == 8.0
    assert readability.percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 0.9) == 10.0


def test_at_least_90_percent_of_answers_are_at_or_below_grade_8(domain: dict, kb: KnowledgeBase) -> None:
    answers = [m for m in readability.knowledge_texts(domain, kb) if m.kind == "knowledge"]
    assert len(answers) == len(kb.entries)
    easy_enough = [m for m in answers if m.grade <= MAX_GRADE]
    too_hard = sorted(f"{m.id}: grade {m.grade}" for m in answers if m.grade > MAX_GRADE)
    assert len(easy_enough) / len(answers) >= MIN_SHARE, too_hard


def test_every_reply_shows_the_date_its_entry_was_reviewed(domain: dict, kb: KnowledgeBase) -> None:
    for entry in kb.entries.values():
        text = answer_reply(domain, kb, entry).text
        assert readability.readable_date(entry.reviewed) in text, entry.id
    assert readability.missing_review_dates(domain, kb) == []


def test_domain_templates_are_measured_with_their_placeholders_filled(domain: dict, kb: KnowledgeBase) -> None:
    measured = {m.id: m for m in readability.domain_texts(domain, kb.clinic)}
    assert measured, "domain.yml has responses"
    assert all("{" not in m.text for m in measured.values())
    assert not readability.only_placeholders("Opening hours: {hours}.")
    assert readability.only_placeholders("{answer}\n\n{booking}")


def test_every_share_of_people_is_measured_and_reads_at_grade_8(domain: dict, kb: KnowledgeBase) -> None:
    measured = {m.id: m for m in readability.frequency_texts(domain, kb)}
    assert set(measured) == {f"frequencies:{fid}" for fid in kb.frequencies}
    assert all("out of 100" in m.text and "How sure:" in m.text for m in measured.values())
    assert {i: m.grade for i, m in measured.items() if m.grade > MAX_GRADE} == {}
