"""What the judge scores an answer against, in order: the asker's own correction of that turn; an
answer a subject-matter expert approved for the same question; otherwise nothing (reference-free).

"SME-approved" in this product: subject-matter experts are the reviewers (PLUMB_REVIEWERS) who check
the AI judge's scores on the Review page, and each of their decisions gives the answer a score on
the judge's rubric (the AI's when they accept it, their own when they override it). An answer whose
latest decision is at the top of the rubric (APPROVED_SCORE or more: every key fact there, nothing
that contradicts the passages) is one an expert approved. An on-call expert's answer to an
escalation is not one: nobody reviews it, and it already reaches training as its own SFT example and
retrieval as a knowledge document.

"The same question" is the same text once case, punctuation and spacing are ignored, as the export
groups questions for its split (pipeline/export/holdout.py `normalised`).
"""

from dataclasses import dataclass

from pipeline.export.holdout import normalised
from pipeline.judge.judge import NO_REFERENCE, Reference
from pipeline.records import Review, Turn

APPROVED_SCORE = 4.5


@dataclass(frozen=True)
class Approved:
    """An answer an expert approved: its turn and text."""

    turn_id: str
    answer: str


def approved_answers(store) -> dict[str, list[Approved]]:
    """Normalised question -> the answers experts approved for it, the most recently approved
    first, from every review version in `store` (DynamoFeedbackStore): one turn read per approved
    turn. A turn counts by its latest decision across judges, so an expert who approved an answer
    then marked it down has withdrawn the approval."""
    latest: dict[str, Review] = {}
    for review in store.reviews():
        known = latest.get(review.turn_id)
        if known is None or (review.reviewed_at, review.version) > (known.reviewed_at, known.version):
            latest[review.turn_id] = review
    approved: dict[str, list[Approved]] = {}
    for review in sorted(latest.values(), key=lambda r: r.reviewed_at, reverse=True):
        if review.score < APPROVED_SCORE:
            continue
        turn = store.get_turn(review.session_id, review.turn_id)
        if turn is not None and turn.answer.strip():
            approved.setdefault(normalised(turn.question), []).append(Approved(turn.turn_id, turn.answer))
    return approved


def reference_for(turn: Turn, store, approved: dict[str, list[Approved]]) -> Reference:
    """The reference `turn`'s answer is judged against (see the module's docstring); `approved` is
    `approved_answers(store)`. An expert's approval of this very answer is no reference for it."""
    feedback = store.latest_feedback(turn.turn_id, turn.user)
    if feedback is not None and feedback.correction:
        return Reference(feedback.correction, "correction")
    others = (a for a in approved.get(normalised(turn.question), []) if a.turn_id != turn.turn_id)
    answer = next(others, None)
    return NO_REFERENCE if answer is None else Reference(answer.answer, "sme")
