"""The feedback form under each answer: a five-level rating, a note, a corrected answer and a flag
per citation, stored against the exact turn.

The feedback id is derived from the turn and the user. Each click on "Save feedback" is one
submission with its own id, so a retry or an outbox replay of it is stored once; the store gives it
its version, so changing one's mind keeps the earlier versions and the verdict saved last counts.
Once a verdict is saved the form steps aside: the answer shows the verdict compactly with "Change",
which opens the form again.
"""

import uuid

import streamlit as st
from pydantic import ValidationError

from app import services
from app.escalation_ui import escalate_turn
from app.identity import User
from app.literal import literal
from pipeline.errors import PlumbError
from pipeline.records import CORRECTION_MAX_CHARS, NOTE_MAX_CHARS, RATING_LABELS, Feedback, Turn

# st.feedback's faces carry no labels of their own; each face shows its level's label on hover.
FACE_LABELS = "".join(
    f'[data-testid="stFeedback"] button:nth-of-type({level}):hover::after{{content:"{label}"}}'
    for level, label in RATING_LABELS.items()
)
FACE_STYLE = (
    "<style>[data-testid=\"stFeedback\"] button{position:relative}"
    "[data-testid=\"stFeedback\"] button:hover::after{position:absolute;top:100%;left:50%;transform:translateX(-50%);"
    "white-space:nowrap;font-size:0.75rem;padding:0.1rem 0.4rem;border-radius:0.25rem;background:#31333f;"
    f"color:#fff;z-index:10}}{FACE_LABELS}</style>"
)
RATE_CAPTION = "Rate this answer: " + " · ".join(
    f"{face} {RATING_LABELS[level]}" for level, face in zip(RATING_LABELS, ["😞", "🙁", "😐", "🙂", "😀"])
)


def feedback_id(turn: Turn, user: User) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"plumbline:{turn.turn_id}:{user.name}").hex


def _stored(turn: Turn, user: User) -> Feedback | None:
    """The user's latest feedback on this turn, read once per page session."""
    cache: dict[str, Feedback | None] = st.session_state.setdefault("feedback", {})
    if turn.turn_id not in cache:
        try:
            cache[turn.turn_id] = services.store().latest_feedback(turn.turn_id, user.name)
        except PlumbError:
            return None
    return cache[turn.turn_id]


def feedback_form(turn: Turn, user: User) -> None:
    stored = _stored(turn, user)
    _confirm(turn)
    key = turn.turn_id
    editing: set[str] = st.session_state.setdefault("editing", set())
    if stored:
        _show_stored(stored, turn.turn_id in st.session_state.get("syncing", set()))
        if key not in editing:
            if st.button("Change", key=f"change-{key}", icon=":material/edit:", type="tertiary"):
                editing.add(key)
                st.rerun()
            return
    st.html(FACE_STYLE)
    chosen = st.feedback("faces", key=f"rating-{key}", default=stored.rating - 1 if stored else None)
    if chosen is None:
        st.caption(RATE_CAPTION)
        return
    rating = chosen + 1
    st.caption(f"Your rating: **{RATING_LABELS[rating]}**")
    note = st.text_area("Note (optional)", value=stored.note if stored else "", key=f"note-{key}", max_chars=NOTE_MAX_CHARS,
                        placeholder="e.g. this is on page 21 of section 01 13 10")
    correction = _correction_input(turn, stored, rating)
    flags = [number for number, citation in enumerate(turn.citations)
             if st.checkbox(f"[{number + 1}] {literal(citation.label())} is wrong or irrelevant", key=f"flag-{key}-{number}",
                            value=bool(stored and number in stored.flagged_citations))]
    if st.button("Save feedback", key=f"save-{key}", type="primary"):
        _save(turn, user, rating, note, correction, flags)


def _correction_input(turn: Turn, stored: Feedback | None, rating: int) -> str | None:
    """Offered pre-filled with the bot's answer when the rating is 3 or lower; an unedited copy of
    the answer is not a correction."""
    wanted = rating <= 3 or bool(stored and stored.correction)
    if not st.checkbox("Suggest a corrected answer", value=wanted, key=f"fix-{turn.turn_id}"):
        return None
    prefill = stored.correction if stored and stored.correction else turn.answer
    text = st.text_area("Corrected answer", value=prefill, key=f"correction-{turn.turn_id}", max_chars=CORRECTION_MAX_CHARS)
    return None if text.strip() == turn.answer.strip() else text


def _save(turn: Turn, user: User, rating: int, note: str, correction: str | None, flags: list[int]) -> None:
    try:
        feedback = Feedback(
            feedback_id=feedback_id(turn, user),
            session_id=turn.session_id,
            turn_id=turn.turn_id,
            user=user.name,
            rating=rating,
            note=note,
            correction=correction,
            flagged_citations=flags,
        )
    except ValidationError as exc:
        st.error("Not saved: " + "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors()))
        return
    try:
        saved = services.store().save_feedback(feedback)
    except PlumbError as exc:
        st.error(f"Not saved: {exc}")
        return
    st.session_state["feedback"][turn.turn_id] = saved.record
    if rating == 1 and saved.record.note:  # the user's own words that the answer failed them: a person should look
        escalate_turn(turn, "rating", saved.record.note)
    st.session_state.setdefault("editing", set()).discard(turn.turn_id)
    st.session_state.setdefault("saved", {})[turn.turn_id] = saved.queued
    syncing: set[str] = st.session_state.setdefault("syncing", set())
    if saved.queued:
        syncing.add(turn.turn_id)
    else:
        syncing.discard(turn.turn_id)
    st.rerun()


def _confirm(turn: Turn) -> None:
    """The confirmation of a save, shown once on the rerun that follows it."""
    queued = st.session_state.get("saved", {}).pop(turn.turn_id, None)
    if queued:
        st.warning("Feedback saved on this server; it will sync to the feedback store as soon as it is reachable.")
    elif queued is not None:
        st.success("Thank you, your feedback is saved.")


def _show_stored(feedback: Feedback, syncing: bool) -> None:
    """A queued verdict has no version yet: the store gives it one when it syncs."""
    where = "waiting to sync" if syncing else f"version {feedback.version}"
    st.caption(f"Saved feedback ({where}): {feedback.rating_label}")
    if feedback.note:
        st.text(f"Note: {feedback.note}")
    if feedback.correction:
        st.text(f"Correction: {feedback.correction}")
