"""What the chat shows and does about escalations: calling an expert in for a turn, the one notice
that one was asked, and an expert's answer marked as theirs."""

import streamlit as st

from app import services
from app.answer_html import answer_html
from app.literal import literal
from pipeline.chain import EscalateHook
from pipeline.errors import PlumbError
from pipeline.escalation.workflow import escalate
from pipeline.records import Citation, Turn

ASKED = "An expert was asked to look at this conversation; their answer will appear here."


def escalate_turn(turn: Turn, reason: str, note: str = "") -> None:
    """Call an expert in for `turn` (once per turn, whatever is retried) with the conversation so far;
    a store that cannot take it is said in one line, the answer stays."""
    earlier: list[Turn] = st.session_state.get("turns", [])
    try:
        escalate(services.store(), services.notifier(), turn, earlier, reason, note)
    except PlumbError as exc:
        st.warning(f"An expert could not be asked: {exc}")
        return
    st.session_state.setdefault("escalated", set()).add(turn.turn_id)


def before_answering(session_id: str, user: str, question: str, scope: list[str]) -> EscalateHook:
    """The chain's hook for `question`: called before the bot answers when detection says a person
    is needed, it calls the expert in with the question and its passages (the answer not written yet)
    and tells the user, once, at once."""

    def call_expert(turn_id: str, reason: str, citations: list[Citation]) -> None:
        asked = Turn(session_id=session_id, turn_id=turn_id, user=user, question=question.strip(),
                     condensed_question=question.strip(), answer="", citations=citations, model_id="",
                     prompt_version="", escalation=reason, scope=scope)
        escalate_turn(asked, reason)
        escalation_notice(asked)

    return call_expert


def escalation_notice(turn: Turn) -> None:
    """Under the turn that called an expert in: said once, by that turn, not by every later one."""
    if turn.escalation or turn.turn_id in st.session_state.get("escalated", set()):
        st.info(ASKED, icon=":material/support_agent:")


def show_expert_turn(turn: Turn) -> None:
    """An expert's answer, marked as from the named expert, under the question it answers."""
    with st.chat_message("expert", avatar=":material/support_agent:"):
        st.caption(literal(f"Answer from expert {turn.expert} to: {turn.question[:200]}"))
        st.html(answer_html(turn.answer))
