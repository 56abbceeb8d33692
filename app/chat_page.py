"""The chat page: the user's conversations in the sidebar, streamed answers with their citations,
and the feedback form under each answer.

Answers are shown through `answer_html`, which loads no image and follows no link an answer holds.
The conversation lives in `st.session_state` (one browser tab's state) and in the feedback store;
the chain gets this conversation's history with every question and keeps none itself.
"""

import streamlit as st

from app import services
from app.answer_html import answer_html
from app.feedback_form import feedback_form
from app.identity import User
from pipeline.errors import PlumbError
from pipeline.records import Turn, new_id

HISTORY_LIMIT = 30
QUESTION_MAX_CHARS = 4000


def chat_page(user: User) -> None:
    st.title("Ask the documents")
    _sidebar(user)
    if not services.index().sources():
        st.info("No documents are indexed yet. Add some with `plumb ingest PATH` and reload this page.")
        st.stop()
    turns: list[Turn] = st.session_state.setdefault("turns", [])
    for turn in turns:
        _show_turn(turn, user)
    if question := st.chat_input("Ask about the documents", max_chars=QUESTION_MAX_CHARS):
        _answer(question, turns, user)


def _sidebar(user: User) -> None:
    with st.sidebar:
        st.caption(f"Signed in as {user.name}")
        if st.button("New conversation", icon=":material/add:", use_container_width=True):
            _open_conversation(new_id(), [])
        st.subheader("Conversations")
        try:
            sessions = services.store().user_sessions(user.name, limit=HISTORY_LIMIT)
        except PlumbError as exc:
            st.warning(str(exc))
            return
        current = st.session_state.get("session_id")
        for summary in sessions:
            label = summary.title[:60] or "(untitled)"
            if st.button(label, key=f"conv-{summary.session_id}", disabled=summary.session_id == current, use_container_width=True):
                _load_conversation(summary.session_id, user)


def _open_conversation(session_id: str, turns: list[Turn]) -> None:
    st.session_state["session_id"] = session_id
    st.session_state["turns"] = turns
    st.query_params["conversation"] = session_id
    st.rerun()


def _load_conversation(session_id: str, user: User) -> None:
    turns = [turn for turn in services.store().session_turns(session_id) if turn.user == user.name]
    _open_conversation(session_id, turns)


def restore_conversation(user: User) -> None:
    """After a reload, reopen the conversation named in the address, if it is this user's."""
    wanted = st.query_params.get("conversation")
    if "session_id" in st.session_state:
        return
    st.session_state["session_id"] = new_id()
    st.session_state["turns"] = []
    if wanted:
        try:
            turns = [turn for turn in services.store().session_turns(wanted) if turn.user == user.name]
        except PlumbError as exc:
            st.warning(str(exc))
            return
        if turns:
            st.session_state["session_id"] = wanted
            st.session_state["turns"] = turns


def _show_turn(turn: Turn, user: User) -> None:
    with st.chat_message("user"):
        st.text(turn.question)
    with st.chat_message("assistant"):
        st.html(answer_html(turn.answer))
        _citations(turn)
        if reason := st.session_state.get("unstored", {}).get(turn.turn_id):
            st.error(f"This answer could not be stored, so it cannot be rated: {reason}")
        else:
            feedback_form(turn, user)


def _citations(turn: Turn) -> None:
    if turn.citations:
        st.caption("Sources" if not turn.not_covered else "Closest passages (not enough to answer)")
    for number, citation in enumerate(turn.citations, start=1):
        with st.expander(f"[{number}] {citation.label()}"):
            st.text(citation.passage)
            st.caption(f"score {citation.score:.3f}")
    st.caption(f"Answered by {turn.model_id} · prompt {turn.prompt_version} · {turn.timings_ms.get('total', 0) / 1000:.1f} s")


def _show_streaming(pieces) -> None:
    """The answer as it streams, rendered safely (answer_html) at every piece."""
    shown, text = st.empty(), ""
    for piece in pieces:
        text += piece
        shown.html(answer_html(text))


def _answer(question: str, turns: list[Turn], user: User) -> None:
    with st.chat_message("user"):
        st.text(question)
    history = [(turn.question, turn.answer) for turn in turns]
    with st.chat_message("assistant"):
        try:
            stream = services.chain().stream(question, history)
            _show_streaming(stream)
        except PlumbError as exc:
            st.error(str(exc))
            st.stop()
    answer = stream.answer
    turn = Turn(session_id=st.session_state["session_id"], user=user.name, **answer.model_dump())
    turns.append(turn)
    st.query_params["conversation"] = turn.session_id
    try:
        if services.store().save_turn(turn).queued:
            st.toast("The conversation is saved on this server and will sync when the feedback store is back.")
        if judge := services.online_judge():
            judge.submit(turn)
    except PlumbError as exc:
        st.session_state.setdefault("unstored", {})[turn.turn_id] = str(exc)
    st.rerun()
