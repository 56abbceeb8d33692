"""The app (AppTest) calls an expert in for an angry message before the bot answers it, and for a
rating of 1 with a note; once each, said once."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.escalation_ui import ASKED
from pipeline.escalation.notify import NOT_ANSWERED, message_text
from pipeline.escalation.records import escalation_for
from pipeline.escalation.workflow import with_bot_answer
from pipeline.feedback import make_store
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Turn

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parents[1] / "app" / "main.py"


@pytest.fixture
def app_env(dynamo_settings, prepared_models, sample_index, monkeypatch):
    sample_index.close()
    monkeypatch.setenv("PLUMB_MAX_NEW_TOKENS", "16")
    st.cache_resource.clear()
    yield dynamo_settings
    st.cache_resource.clear()


def test_rating_of_one_with_a_note_escalates_once(app_env):
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params["user"] = "alice"
    at = at.run()
    at.chat_input[0].set_value("What is the basic design wind speed?").run()
    assert not at.exception and not [i for i in at.info if i.value == ASKED], "a calm question calls nobody"
    at.feedback[0].set_value(0).run()
    turn_id = next(a.key for a in at.text_area if a.key.startswith("note-")).removeprefix("note-")
    at.text_area(key=f"note-{turn_id}").input("Wrong clause again, this cost us a day.")
    at.checkbox(key=f"fix-{turn_id}").uncheck()
    at.button(key=f"save-{turn_id}").click().run()
    at.button(key=f"change-{turn_id}").click().run()  # saved once, the form stepped aside: save the same again
    at.button(key=f"save-{turn_id}").click().run()
    assert not at.exception
    assert [i.value for i in at.info].count(ASKED) == 1
    [escalation] = DynamoFeedbackStore(app_env).escalations.all()
    assert (escalation.turn_id, escalation.reason, escalation.note) == (turn_id, "rating", "Wrong clause again, this cost us a day.")
    assert escalation.transcript[-1].question == "What is the basic design wind speed?"


def test_an_angry_message_calls_the_expert_in_before_the_bot_answers(app_env):
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params["user"] = "angie"
    at = at.run()
    at.chat_input[0].set_value("This bot is garbage and I hate it. What is the basic design wind speed?").run()
    assert not at.exception
    assert [i.value for i in at.info].count(ASKED) == 1, "told once, under the message"
    dynamo = DynamoFeedbackStore(app_env)
    [escalation] = dynamo.escalations.all()
    [turn] = dynamo.session_turns(escalation.session_id)
    assert (escalation.turn_id, escalation.reason) == (turn.turn_id, "negative")
    asked = escalation.transcript[-1]
    assert asked.answer == "" and asked.citations == turn.citations, "stored before the answer, with its passages"
    assert f"Bot: {NOT_ANSWERED}" in message_text(escalation)
    assert turn.answer and turn.escalation == "negative", "the bot still answered"
    store = make_store(app_env)
    try:
        assert with_bot_answer(store, escalation).transcript[-1].answer == turn.answer, "the expert reads it"
    finally:
        store.close()
    at.chat_input[0].set_value("And the importance factor?").run()
    assert [i.value for i in at.info].count(ASKED) == 1 and len(list(dynamo.escalations.all())) == 1


def test_asking_again_after_an_interrupted_answer_calls_the_expert_in_once(app_env):
    """A double submit: Streamlit stopped the first run after it called the expert in and before the
    answer was kept; the same question asked again keeps that run's turn id and finds its escalation."""
    question = "This is pointless garbage. What is the basic design wind speed?"
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params["user"] = "angie"
    at = at.run()
    session_id = at.session_state["session_id"]
    at.session_state["asking"] = (session_id, question, "first-run")
    dynamo = DynamoFeedbackStore(app_env)
    first = Turn(session_id=session_id, turn_id="first-run", user="angie", question=question,
                 condensed_question=question, answer="", model_id="", prompt_version="", escalation="negative")
    dynamo.save_escalation(escalation_for(first, [], "negative"))
    at.chat_input[0].set_value(question).run()
    assert not at.exception and [i.value for i in at.info].count(ASKED) == 1
    [escalation] = dynamo.escalations.all()
    [turn] = dynamo.session_turns(session_id)
    assert escalation.turn_id == turn.turn_id == "first-run" and turn.answer
