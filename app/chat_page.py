"""The chat page: the user's conversations in the sidebar, streamed answers with their citations,
and the feedback form under each answer.

Answers are shown through `answer_html`, which loads no image and follows no link an answer holds.
The conversation lives in `st.session_state` (one browser tab's state) and in the feedback store;
the chain gets this conversation's history with every question and keeps none itself.
"""

import streamlit as st

from app import services
from app.answer_html import answer_html
from app.citation_links import citation_addresses
from app.escalation_ui import before_answering, escalation_notice, show_expert_turn
from app.feedback_form import feedback_form
from app.identity import User
from app.literal import literal
from pipeline.errors import PlumbError
from pipeline.feedback.dynamo import TITLE_MAX_CHARS
from pipeline.feedback.store import SessionSummary
from pipeline.markers import cited_numbers
from pipeline.records import Turn, new_id
from pipeline.scope import scope_options, scope_sources

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
        if question.strip():
            _answer(question, turns, user)
        else:
            st.warning("The question is empty: type a question about the documents.")


def _sidebar(user: User) -> None:
    with st.sidebar:
        st.caption(f"Signed in as {user.name}")
        if st.button("New conversation", icon=":material/add:", use_container_width=True):
            _open_conversation(new_id(), [])
        _scope_picker()
        st.subheader("Conversations")
        try:
            sessions = services.store().user_sessions(user.name, limit=HISTORY_LIMIT)
        except PlumbError as exc:
            st.warning(str(exc))
            return
        current = st.session_state.get("session_id")
        for summary in sessions:
            _conversation_row(summary, summary.session_id == current, user)


def _conversation_row(summary: SessionSummary, current: bool, user: User) -> None:
    """One conversation in the sidebar: its date (UTC, when it was last asked in) then its title,
    so a title cut to the sidebar's width never hides the date, and a menu to rename or delete it."""
    label = f"{summary.updated_at:%d %b %Y} · {literal(summary.title[:60]) or '(untitled)'}"
    opened, menu = st.columns([5, 1], vertical_alignment="center")
    if opened.button(label, key=f"conv-{summary.session_id}", disabled=current, use_container_width=True):
        _load_conversation(summary.session_id, user)
    with menu.popover("", icon=":material/more_vert:", help="Rename or delete"):
        title = st.text_input("Name", value=summary.title, key=f"title-{summary.session_id}", max_chars=TITLE_MAX_CHARS)
        if st.button("Rename", key=f"rename-{summary.session_id}"):
            try:
                services.store().rename_session(user.name, summary.session_id, title)
            except PlumbError as exc:
                st.error(str(exc))
            else:
                st.rerun()
        if st.button("Delete…", key=f"delete-{summary.session_id}"):
            _confirm_delete(summary, user)


@st.dialog("Delete this conversation?")
def _confirm_delete(summary: SessionSummary, user: User) -> None:
    st.write(f"**{literal(summary.title) or '(untitled)'}** leaves your list and its unrated answers are removed.")
    st.write("Answers you rated are kept with your feedback for training, marked as from a deleted conversation.")
    if st.button("Delete", type="primary", key="confirm-delete"):
        try:
            services.store().delete_session(user.name, summary.session_id)
        except PlumbError as exc:
            st.error(str(exc))
            return
        if st.session_state.get("session_id") == summary.session_id:
            _open_conversation(new_id(), [])
        st.rerun()


def _scope_picker() -> None:
    """The documents and collections this conversation asks within (none chosen: all of them)."""
    try:
        options = scope_options(services.index().sources())
    except PlumbError as exc:
        st.warning(str(exc))
        return
    chosen = st.session_state.pop("next_scope", st.session_state.get("scope", []))
    st.session_state["scope"] = [name for name in chosen if name in options]
    st.multiselect("Ask within", options, key="scope", placeholder="All documents",
                   help='Restrict this conversation to some documents, or to collections ("specs/": every document '
                        "whose name starts so).")


def _open_conversation(session_id: str, turns: list[Turn]) -> None:
    st.session_state["session_id"] = session_id
    st.session_state["turns"] = turns
    # Applied before the picker is drawn on the rerun: a widget's value cannot change after it is drawn.
    st.session_state["next_scope"] = list(turns[-1].scope) if turns else []
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
            st.session_state["scope"] = list(turns[-1].scope)


def _show_turn(turn: Turn, user: User) -> None:
    if turn.expert:
        show_expert_turn(turn)
        return
    with st.chat_message("user"):
        st.text(turn.question)
    with st.chat_message("assistant"):
        links = citation_addresses(turn.citations)
        st.html(answer_html(turn.answer, links))
        _citations(turn, links)
        escalation_notice(turn)
        if reason := st.session_state.get("unstored", {}).get(turn.turn_id):
            st.error(f"This answer could not be stored, so it cannot be rated: {reason}")
        else:
            feedback_form(turn, user)


def _citations(turn: Turn, links: dict[int, str]) -> None:
    """The passages the answer cites first, in the order it cites them, then the others under
    "also retrieved"; each keeps the number the prompt gave it, so it matches the answer's [n]."""
    numbers = range(1, len(turn.citations) + 1)
    if turn.scope:
        st.caption("Asked within: " + literal(", ".join(turn.scope)))
    if turn.not_covered:
        if turn.citations:
            st.caption("Closest passages (not enough to answer)")
        for number in numbers:
            _passage(turn, number, links)
    else:
        cited = cited_numbers(turn.answer, len(turn.citations))
        st.caption("Cited in the answer" if cited else "The answer cites none of the passages.")
        for number in cited:
            _passage(turn, number, links)
        if rest := [number for number in numbers if number not in cited]:
            st.caption("Also retrieved")
            for number in rest:
                _passage(turn, number, links)
    st.caption(f"Answered by {turn.model_id} · prompt {turn.prompt_version} · {turn.timings_ms.get('total', 0) / 1000:.1f} s")


def _passage(turn: Turn, number: int, links: dict[int, str]) -> None:
    citation = turn.citations[number - 1]
    with st.expander(f"[{number}] {literal(citation.label())}"):
        if number in links:
            what = "section" if citation.section else "page"
            st.link_button(f"Open the {what}", links[number], icon=":material/open_in_new:", key=f"open-{turn.turn_id}-{number}")
        st.text(citation.passage)
        st.caption(f"score {citation.score:.3f}")


def _show_streaming(pieces) -> None:
    """The answer as it streams, rendered safely (answer_html) at every piece."""
    shown, text = st.empty(), ""
    for piece in pieces:
        text += piece
        shown.html(answer_html(text))


def _turn_id(session_id: str, question: str) -> str:
    """The id the answer to `question` gets: the one of the same question's last run when that run was
    cut short before its answer was kept (a double submit: Streamlit stops a run when the page sends
    again), so an expert called in by the first run is found again rather than called twice."""
    asking = st.session_state.get("asking")
    if asking and asking[:2] == (session_id, question):
        return asking[2]
    st.session_state["asking"] = (session_id, question, new_id())
    return st.session_state["asking"][2]


def _answer(question: str, turns: list[Turn], user: User) -> None:
    with st.chat_message("user"):
        st.text(question)
    history = [(turn.question, turn.answer) for turn in turns]
    scope = list(st.session_state.get("scope", []))
    with st.chat_message("assistant"):
        try:
            sources = scope_sources(scope, services.index().sources()) if scope else None
            call_expert = before_answering(st.session_state["session_id"], user.name, question, scope)
            turn_id = _turn_id(st.session_state["session_id"], question)
            stream = services.chain().stream(question, history, sources, on_escalate=call_expert, turn_id=turn_id)
            _show_streaming(stream)
        except PlumbError as exc:
            st.error(str(exc))
            st.stop()
    answer = stream.answer
    turn = Turn(session_id=st.session_state["session_id"], user=user.name, scope=scope, **answer.model_dump())
    turns.append(turn)
    st.session_state.pop("asking", None)
    st.query_params["conversation"] = turn.session_id
    try:
        if services.store().save_turn(turn).queued:
            st.toast("The conversation is saved on this server and will sync when the feedback store is back.")
        if judge := services.online_judge():
            judge.submit(turn)
    except PlumbError as exc:
        st.session_state.setdefault("unstored", {})[turn.turn_id] = str(exc)
    st.rerun()
