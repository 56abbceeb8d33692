"""The expert's page: the queue of escalated conversations, each transcript with its passages, and
the steps claim → answer → add to the knowledge base and/or to the training data.

Only users listed in `settings.experts` may open it. The answer is stored as a turn of the user's
conversation, marked as the named expert's, so the user reads it when they open the conversation
again; adding it to the knowledge base ingests it as a document that retrieval finds and cites;
adding it to the training data makes it an SFT row of `plumb export --label-source expert`.
"""

from collections.abc import Iterable

import streamlit as st

from app import services
from app.literal import literal
from app.identity import User
from pipeline.errors import PlumbError
from pipeline.escalation.knowledge import add_to_knowledge, knowledge_source
from pipeline.escalation.records import Escalation
from pipeline.escalation.workflow import answer, with_bot_answer
from pipeline.ingest import make_splitter

VIEWS = ("Open", "Claimed by me", "Answered", "All")
NOT_ANSWERED = "(no answer stored: the expert was called in before the bot answered)"


def queue(escalations: Iterable[Escalation], view: str, me: str, reasons: list[str], users: list[str]) -> list[Escalation]:
    """The escalations a view and the filters keep, oldest open first (the one waiting longest on top)
    for "Open", newest first otherwise. `reasons`/`users` empty means any."""
    keep = {
        "Open": lambda e: e.status == "open",
        "Claimed by me": lambda e: e.status == "claimed" and e.claimed_by == me,
        "Answered": lambda e: e.status in ("answered", "closed"),
        "All": lambda e: True,
    }[view]
    chosen = [e for e in escalations if keep(e) and (not reasons or e.reason in reasons) and (not users or e.user in users)]
    return sorted(chosen, key=lambda e: e.created_at, reverse=view != "Open")


def expert_page(user: User) -> None:
    if not user.is_expert:
        st.error("This page is for experts: ask an administrator to add you to PLUMB_EXPERTS.")
        st.stop()
    st.title("Escalations")
    if error := st.session_state.pop("expert-error", None):
        st.error(error)
    try:
        escalations = list(services.store().escalations.all())
    except PlumbError as exc:
        st.error(str(exc))
        st.stop()
    view_column, reason_column, user_column = st.columns(3)
    view = view_column.radio("Queue", VIEWS, horizontal=True, key="expert-view")
    reasons = reason_column.multiselect("Reason", sorted({e.reason for e in escalations}), key="expert-reasons")
    users = user_column.multiselect("User", sorted({e.user for e in escalations}), key="expert-users")
    shown = queue(escalations, view, user.name, reasons, users)
    if not shown:
        st.info("Nothing here.")
    for escalation in shown:
        _card(_bot_answered(escalation), user)


def _card(escalation: Escalation, user: User) -> None:
    key = escalation.turn_id
    with st.container(border=True):
        st.markdown(
            f"**{escalation.user}** · {escalation.reason} · **{escalation.status}**"
            f"{' by ' + escalation.claimed_by if escalation.claimed_by else ''} · "
            f"{escalation.created_at:%Y-%m-%d %H:%M} UTC"
        )
        if escalation.note:
            st.text(f"Their note: {escalation.note}")
        _transcript(escalation)
        if escalation.status == "open" and st.button("Claim", key=f"claim-{key}", type="primary"):
            _step(lambda: services.store().escalations.claim(escalation.session_id, key, user.name))
        if escalation.status == "claimed" and escalation.claimed_by == user.name:
            text = st.text_area("Your answer", key=f"answer-{key}", height=160)
            if st.button("Send answer", key=f"send-{key}", type="primary"):
                _step(lambda: answer(services.store(), escalation, user.name, text))
        if escalation.status in ("answered", "closed"):
            st.text(f"Answer from {escalation.claimed_by}:")
            st.code(escalation.answer, language=None, wrap_lines=True)
            knowledge, training = st.columns(2)
            if escalation.knowledge_source:
                knowledge.caption(f"In the knowledge base as {escalation.knowledge_source}")
            elif knowledge.button("Add to knowledge base", key=f"kb-{key}"):
                _step(lambda: _add_to_knowledge(escalation))
            if escalation.training_at:
                training.caption(
                    f"In the training data (SFT, label source expert) since {escalation.training_at:%Y-%m-%d %H:%M} "
                    f"UTC, chosen by {escalation.training_by}"
                )
            elif training.button("Add to training data", key=f"sft-{key}"):
                _step(lambda: services.store().escalations.added_to_training(escalation.session_id, key, user.name))
        if escalation.status == "answered" and st.button("Close", key=f"close-{key}"):
            _step(lambda: services.store().escalations.close(escalation.session_id, key))


def _bot_answered(escalation: Escalation) -> Escalation:
    try:
        return with_bot_answer(services.store(), escalation)
    except PlumbError:  # the card still shows the question and passages; the answer comes back with the store
        return escalation


def _transcript(escalation: Escalation) -> None:
    for exchange in escalation.transcript:
        marker = " ← escalated" if exchange.turn_id == escalation.turn_id else ""
        st.markdown(f"**User{marker}:**")
        st.text(exchange.question)
        st.markdown(f"**{'Expert ' + exchange.expert if exchange.expert else 'Bot'}:**")
        st.text(exchange.answer or NOT_ANSWERED)
        for number, citation in enumerate(exchange.citations, start=1):
            with st.expander(f"[{number}] {literal(citation.label())}"):
                st.text(citation.passage)


def _add_to_knowledge(escalation: Escalation) -> None:
    settings, embedder = services.settings(), services.embedder()
    splitter = make_splitter(embedder, settings.chunk_tokens, settings.chunk_overlap_tokens)
    add_to_knowledge(escalation, services.index(), embedder, splitter)
    services.store().escalations.added_to_knowledge(escalation.session_id, escalation.turn_id, knowledge_source(escalation))


def _step(action) -> None:
    """Run one step; a conflict (another expert was quicker) or an outage is one line, then the queue reloads."""
    try:
        action()
    except PlumbError as exc:
        st.session_state["expert-error"] = str(exc)
    st.rerun()
