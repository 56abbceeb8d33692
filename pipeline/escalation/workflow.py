"""The steps of an escalation that touch more than its record: calling an expert in, and an
expert's answer becoming a turn of the user's conversation."""

from datetime import UTC, datetime

from pipeline.escalation.notify import Notifier
from pipeline.escalation.records import Escalation, escalation_for
from pipeline.feedback.resilient import ResilientStore
from pipeline.records import Turn, new_id

EXPERT_PROMPT_VERSION = "expert"  # an expert's answer had no prompt: the turn says so


def escalate(store: ResilientStore, notifier: Notifier, turn: Turn, earlier: list[Turn], reason: str, note: str = "") -> Escalation:
    """Create `turn`'s escalation (once: a second call finds it) through the never-lost path, and queue
    its notifications (once per channel). Returns the escalation as sent."""
    escalation = escalation_for(turn, earlier, reason, note)
    store.save_escalation(escalation)
    notifier.enqueue(escalation)
    return escalation


def with_bot_answer(store: ResilientStore, escalation: Escalation) -> Escalation:
    """`escalation` with the bot's answer to the escalated question read from its stored turn: the
    record is made before the bot answers, so its own exchange has no answer yet. Unchanged while
    the turn is not stored (still answering, or the answer was interrupted)."""
    asked = next((e for e in escalation.transcript if e.turn_id == escalation.turn_id), None)
    if asked is None or asked.answer:
        return escalation
    turn = store.get_turn(escalation.session_id, escalation.turn_id)
    if turn is None or not turn.answer:
        return escalation
    transcript = [
        e.model_copy(update={"answer": turn.answer}) if e.turn_id == escalation.turn_id else e
        for e in escalation.transcript
    ]
    return escalation.model_copy(update={"transcript": transcript})


def expert_turn(escalation: Escalation, expert: str, text: str, turn_id: str) -> Turn:
    """The expert's answer as a turn of the user's conversation: the escalated question, the answer,
    the passages the bot was given (which the expert read), `expert` naming who wrote it."""
    asked = next(e for e in escalation.transcript if e.turn_id == escalation.turn_id)
    return Turn(
        session_id=escalation.session_id,
        turn_id=turn_id,
        user=escalation.user,
        created_at=datetime.now(UTC),
        question=escalation.question,
        condensed_question=escalation.question,
        answer=text.strip(),
        citations=asked.citations,
        generated=False,
        model_id=f"expert {expert}",
        prompt_version=EXPERT_PROMPT_VERSION,
        expert=expert,
    )


def answer(store: ResilientStore, escalation: Escalation, expert: str, text: str) -> Escalation:
    """Record `expert`'s answer (only the expert who claimed it may; EscalationConflict otherwise),
    then store it as a turn of the conversation, never lost (queued while DynamoDB is down)."""
    turn_id = new_id()
    answered = store.escalations.answer(escalation.session_id, escalation.turn_id, expert, text, turn_id)
    store.save_turn(expert_turn(answered, expert, text, turn_id))
    return answered
