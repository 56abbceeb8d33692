"""The escalation of a turn with its transcript (the record itself, `Escalation`, is the store's, in
pipeline/records.py): one per user message that called in an expert, from open to closed.

Keyed by the triggering turn (session_id, turn_id), so creating it again (a retry, an outbox
replay, a double submit of the same turn) finds the one already stored and writes nothing.
"""

from pipeline.records import Escalation, Exchange, Turn

__all__ = ["Escalation", "Exchange", "TRANSCRIPT_TURNS", "escalation_for", "exchange"]

TRANSCRIPT_TURNS = 10  # the triggering turn and the nine before it: enough context, well inside 400 KB


def exchange(turn: Turn) -> Exchange:
    return Exchange(
        turn_id=turn.turn_id, question=turn.question, answer=turn.answer, citations=turn.citations, expert=turn.expert
    )


def escalation_for(turn: Turn, earlier: list[Turn], reason: str, note: str = "") -> Escalation:
    """The escalation of `turn`, with the transcript of its conversation up to it (`earlier` oldest first)."""
    turns = [t for t in earlier if t.turn_id != turn.turn_id][-(TRANSCRIPT_TURNS - 1) :] + [turn]
    return Escalation(
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        user=turn.user,
        reason=reason,
        note=note,
        question=turn.question,
        transcript=[exchange(t) for t in turns],
    )
