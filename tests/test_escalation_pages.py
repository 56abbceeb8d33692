"""The expert queue's views and filters, and the admin page's escalation figures, on hand-made records;
the Expert page's "Add to training data" (AppTest, DynamoDB Local)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.escalation_admin import escalations_per_day, first_response_minutes
from app.expert_page import queue
from pipeline.escalation.records import Escalation, Exchange
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.settings import get_settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def made(i: int, status: str, claimed_by: str = "", user: str = "ann", reason: str = "negative",
         created: datetime = T0, claimed_after: float | None = None) -> Escalation:
    return Escalation(
        session_id="s", turn_id=f"t{i}", user=user, reason=reason, question="q", transcript=[], status=status,
        claimed_by=claimed_by, created_at=created,
        claimed_at=None if claimed_after is None else created + timedelta(minutes=claimed_after),
    )


@pytest.fixture
def escalations() -> list[Escalation]:
    return [
        made(1, "open", created=T0 + timedelta(hours=2)),
        made(2, "open", user="bob", reason="person", created=T0),
        made(3, "claimed", "dana", claimed_after=5),
        made(4, "claimed", "erik", claimed_after=7),
        made(5, "answered", "dana", created=T0 + timedelta(days=1), claimed_after=30),
        made(6, "closed", "erik", created=T0 + timedelta(days=1), claimed_after=12),
    ]


def test_views_and_filters(escalations):
    ids = lambda found: [e.turn_id for e in found]  # noqa: E731
    assert ids(queue(escalations, "Open", "dana", [], [])) == ["t2", "t1"], "longest waiting first"
    assert ids(queue(escalations, "Claimed by me", "dana", [], [])) == ["t3"]
    assert ids(queue(escalations, "Answered", "dana", [], [])) == ["t5", "t6"]
    assert ids(queue(escalations, "Open", "dana", ["person"], [])) == ["t2"]
    assert ids(queue(escalations, "All", "dana", [], ["bob"])) == ["t2"]
    assert len(queue(escalations, "All", "dana", [], [])) == 6


def test_escalations_per_day_and_time_to_first_response(escalations):
    per_day = escalations_per_day(escalations)
    assert per_day.to_dict("records") == [
        {"day": date(2026, 3, 2), "escalations": 4},
        {"day": date(2026, 3, 3), "escalations": 2},
    ]
    waits = first_response_minutes(escalations)
    assert sorted(waits) == [5, 7, 12, 30]
    assert waits.median() == 9.5


def expert_script() -> None:
    from app import services
    from app.expert_page import expert_page
    from app.identity import current_user

    expert_page(current_user(services.settings()))


@pytest.fixture
def answered_escalation(dynamo_settings, monkeypatch):
    """An escalation in DynamoDB Local that dana claimed and answered; dana is an expert."""
    monkeypatch.setenv("PLUMB_EXPERTS", '["dana"]')
    get_settings.cache_clear()
    st.cache_resource.clear()
    dynamo = DynamoFeedbackStore(get_settings())
    dynamo.save_escalation(
        Escalation(session_id="s", turn_id="t1", user="ann", reason="negative", question="What torque?",
                   transcript=[Exchange(turn_id="t1", question="What torque?", answer="Not covered.")])
    )
    dynamo.escalations.claim("s", "t1", "dana")
    dynamo.escalations.answer("s", "t1", "dana", "85 N·m.", "t2")
    yield dynamo
    st.cache_resource.clear()


def test_the_expert_adds_an_answer_to_the_training_data_once(answered_escalation):
    at = AppTest.from_function(expert_script, default_timeout=60)
    at.query_params["user"] = "dana"
    at.run()
    at.radio(key="expert-view").set_value("Answered").run()
    assert not at.exception, at.exception
    assert at.button(key="kb-t1") is not None, "next to Add to knowledge base"
    at.button(key="sft-t1").click().run()
    assert not at.exception, at.exception
    stored = answered_escalation.escalations.get("s", "t1")
    assert stored.training_by == "dana" and stored.training_at is not None
    assert not [b for b in at.button if b.key == "sft-t1"], "chosen once: the button is gone"
    assert any(c.value.startswith("In the training data (SFT, label source expert) since ") and
               c.value.endswith("chosen by dana") for c in at.caption), [c.value for c in at.caption]
