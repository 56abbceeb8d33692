"""Escalations in DynamoDB (the `escalations` table of pipeline/feedback/tables.py).

Creation is a conditional put on the triggering turn's key: the first write stores the record and
every later one (a retry, an outbox replay, a second tab) gets the stored record back. Each step of
the expert's work is a conditional update on the status it moves from, so two experts claiming at
once leave one claim, and an answer is accepted only from the expert who claimed.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from pynamodb.exceptions import PynamoDBException

from pipeline.errors import PlumbError
from pipeline.escalation.records import Escalation, Exchange
from pipeline.feedback.tables import EscalationItem, TranscriptMap
from pipeline.records import Citation


class EscalationConflict(PlumbError):
    """The escalation is not in the state the step needs (another expert claimed it first, ...)."""


def _citation_map(citation: Citation):
    from pipeline.feedback.dynamo import citation_map  # the turns' size rule: passages cut at 2,000 characters

    return citation_map(citation)


def escalation_item(table: type[EscalationItem], escalation: Escalation) -> EscalationItem:
    transcript = [
        TranscriptMap(
            turn_id=e.turn_id,
            question=e.question,
            answer=e.answer,
            citations=[_citation_map(c) for c in e.citations],
            expert=e.expert,
        )
        for e in escalation.transcript
    ]
    fields = escalation.model_dump(exclude={"session_id", "turn_id", "transcript"})
    return table(escalation.session_id, escalation.turn_id, transcript=transcript, **fields)


def item_escalation(item: EscalationItem) -> Escalation:
    fields = {name: getattr(item, name) for name in Escalation.model_fields if name != "transcript"}
    transcript = [
        Exchange(
            turn_id=t.turn_id,
            question=t.question,
            answer=t.answer,
            expert=t.expert,
            citations=[Citation(**c.as_dict()) for c in t.citations],
        )
        for t in item.transcript
    ]
    return Escalation(transcript=transcript, **fields)


class Escalations:
    """Reads and the expert's steps. `errors` translates DynamoDB's errors into the project's
    (the feedback store's `_errors`), so a user meets one clear sentence."""

    def __init__(self, table: type[EscalationItem], errors: Callable[[], AbstractContextManager[None]]) -> None:
        self._table = table
        self._errors = errors

    def create(self, escalation: Escalation) -> Escalation:
        """Store `escalation` unless its turn already has one; returns the stored record either way."""
        table = self._table
        with self._errors():
            try:
                escalation_item(table, escalation).save(condition=table.turn_id.does_not_exist())
            except PynamoDBException as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
                return item_escalation(table.get(escalation.session_id, escalation.turn_id, consistent_read=True))
        return escalation

    def get(self, session_id: str, turn_id: str) -> Escalation | None:
        with self._errors():
            try:
                return item_escalation(self._table.get(session_id, turn_id, consistent_read=True))
            except self._table.DoesNotExist:
                return None

    def of_session(self, session_id: str) -> list[Escalation]:
        with self._errors():
            return [item_escalation(i) for i in self._table.query(session_id, consistent_read=True)]

    def all(self) -> Iterator[Escalation]:
        """Every escalation (a scan: see tables.py), in no particular order."""
        with self._errors():
            for item in self._table.scan():
                yield item_escalation(item)

    def claim(self, session_id: str, turn_id: str, expert: str) -> Escalation:
        """Open → claimed by `expert`. EscalationConflict when it is not open any more."""
        t = self._table
        return self._step(
            session_id, turn_id, [t.status.set("claimed"), t.claimed_by.set(expert), t.claimed_at.set(_now())],
            t.status == "open", "it is not open any more: another expert may have claimed it",
        )

    def answer(self, session_id: str, turn_id: str, expert: str, text: str, answer_turn_id: str) -> Escalation:
        """Claimed by `expert` → answered with `text`, stored as turn `answer_turn_id` of the conversation."""
        if not text.strip():
            raise EscalationConflict("The answer is empty: write the answer the user should read.")
        t = self._table
        return self._step(
            session_id, turn_id,
            [t.status.set("answered"), t.answer.set(text.strip()), t.answer_turn_id.set(answer_turn_id),
             t.answered_at.set(_now())],
            (t.status == "claimed") & (t.claimed_by == expert), "only the expert who claimed it can answer it",
        )

    def close(self, session_id: str, turn_id: str) -> Escalation:
        t = self._table
        return self._step(session_id, turn_id, [t.status.set("closed"), t.closed_at.set(_now())],
                          t.status != "closed", "it is closed already")

    def added_to_knowledge(self, session_id: str, turn_id: str, source: str) -> Escalation:
        """Record the index source the answer was ingested as."""
        t = self._table
        return self._step(session_id, turn_id, [t.knowledge_source.set(source)],
                          t.answer_turn_id != "", "it has no answer yet")

    def added_to_training(self, session_id: str, turn_id: str, expert: str) -> Escalation:
        """Record that `expert` chose the answer as training data (pipeline/export/expert_labels.py).
        Once only: choosing it again keeps the first choice and its time, so an incremental export
        reads it in one window. EscalationConflict when it has no answer yet."""
        t = self._table
        try:
            return self._step(session_id, turn_id, [t.training_by.set(expert), t.training_at.set(_now())],
                              (t.answer_turn_id != "") & t.training_at.does_not_exist(), "it has no answer yet")
        except EscalationConflict:
            stored = self.get(session_id, turn_id)
            if stored is None or stored.training_at is None:
                raise
            return stored

    def _step(self, session_id: str, turn_id: str, actions: list, condition, why: str) -> Escalation:
        item = self._table(session_id, turn_id)
        with self._errors():
            try:
                item.update(actions, condition=condition & self._table.turn_id.exists())
            except PynamoDBException as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise EscalationConflict(f"This escalation cannot change that way: {why}.") from None
                raise
        return item_escalation(item)


def _now() -> datetime:
    return datetime.now(UTC)
