"""Experts' answers to escalations (pipeline/escalation) as a label source of the export: SFT rows
with `label_source = expert`, for the escalations an expert chose as training data on the Expert page.

Training data is what the model was given: the prompt is the escalated turn's own, rebuilt from the
stored Turn (its history window, passages and question) exactly as every other row's prompt, never
from the escalation's transcript, which may hold more or other earlier turns. The completion is the
expert's answer. An escalation is read in the export window that holds the time it was chosen
(`training_at`, set once), so an incremental export reads it once. Its turn not found is counted as
left out, not guessed.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pipeline.export.formats import Rated
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Escalation, Feedback, Turn


@dataclass(frozen=True)
class ExpertAnswer:
    """An escalated turn and the expert's answer to it: `rated.feedback` names the expert as the
    verdict's user, at version 1 (the choice is made once); its rating enters no row."""

    rated: Rated
    answer: str


def expert_answer(turn: Turn, escalation: Escalation) -> ExpertAnswer:
    feedback = Feedback(
        session_id=turn.session_id, turn_id=turn.turn_id, user=escalation.claimed_by, rating=5,
        created_at=escalation.training_at,
    )
    return ExpertAnswer(Rated(turn=turn, feedback=feedback), escalation.answer)


def exclusion(turn: Turn) -> str | None:
    """Why an expert's answer to `turn` gives no row (a key of formats.EXCLUSIONS), or None. Unlike a
    user's verdict, the bot's own answer does not matter: one held for the expert (not generated, but
    with its prompt built) still gives a row; a question nothing relevant was retrieved for does not,
    since no prompt was built."""
    if turn.history is None:
        return "history_not_recorded"
    if not turn.generated and turn.not_covered:
        return "retrieval_miss"
    if any(citation.passage_truncated for citation in turn.citations):
        return "passage_truncated"
    return None


class ExpertLabels:
    """Reads the escalations chosen as training data (a scan, as the expert queue reads them)."""

    def __init__(self, dynamo: DynamoFeedbackStore) -> None:
        self._dynamo = dynamo
        self.missing_turns = 0

    def answers(self, start: datetime | None, end: datetime) -> Iterator[ExpertAnswer]:
        """The answer of every escalation chosen as training data in [start, end), by that time."""
        chosen = [
            e for e in self._dynamo.escalations.all()
            if e.training_at is not None and e.answer and (start is None or start <= e.training_at) and e.training_at < end
        ]
        for escalation in sorted(chosen, key=lambda e: (e.training_at, e.key)):
            turn = self._dynamo.get_turn(escalation.session_id, escalation.turn_id)
            if turn is None:
                self.missing_turns += 1
                continue
            yield expert_answer(turn, escalation)
