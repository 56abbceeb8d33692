"""An expert's answer as a knowledge-base document."""

from datetime import UTC, datetime

import pytest

from pipeline.escalation.knowledge import ExpertAnswerDocument, knowledge_source
from pipeline.escalation.records import Escalation, Exchange
from pipeline.records import Citation

CITATION = Citation(source="spec.pdf", page=4, passage="Bolts are torqued to 85 N·m.", score=0.8)


def answered(status: str = "answered") -> Escalation:
    return Escalation(
        session_id="s", turn_id="t2", user="ann", reason="negative", question="What torque? This is useless.",
        transcript=[Exchange(turn_id="t1", question="Which bolts?", answer="Anchor bolts."),
                    Exchange(turn_id="t2", question="What torque? This is useless.", answer="Not covered.", citations=[CITATION])],
        status=status, claimed_by="dana", answer="85 N·m, checked after 24 hours." if status != "open" else "",
        answered_at=datetime(2026, 3, 4, 10, tzinfo=UTC),
    )


def test_the_document_holds_question_answer_expert_date_and_sources():
    document = ExpertAnswerDocument(answered()).read(ocr=False)
    [page] = document.pages
    assert (page.source, page.page, page.section) == ("expert-answers/t2.md", 1, "Expert answer by dana")
    assert page.text == (
        "Question: What torque? This is useless.\n\nAnswer: 85 N·m, checked after 24 hours.\n\n"
        "Answered by expert dana on 2026-03-04.\n\nSources the expert read:\n- spec.pdf – page 4\n"
    )
    assert knowledge_source(answered()) == page.source


def test_an_unanswered_escalation_is_no_knowledge():
    with pytest.raises(ValueError, match="Only an answered escalation"):
        ExpertAnswerDocument(answered("open"))

