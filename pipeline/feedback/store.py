"""What the app and the export need from the feedback store, and the checks every write passes first.

Two implementations: `DynamoFeedbackStore` (DynamoDB itself) and `ResilientStore` (the same, plus a
local outbox that keeps writes while DynamoDB cannot be reached).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from pipeline.errors import InvalidFeedback, PlumbError
from pipeline.records import Escalation
from pipeline.records import Feedback, Judgement, PairJudgement, Review, Turn

R = TypeVar("R", Turn, Feedback, Judgement, PairJudgement, Review, Escalation)


class TurnRejected(PlumbError):
    """A turn the store cannot take (an empty id, too large for one item); nothing was stored."""


@dataclass(frozen=True)
class Saved(Generic[R]):
    """The outcome of a write. `queued` means DynamoDB could not be reached: the record is kept in the
    local outbox and syncs when it is back ("saved, will sync"); `record` is then the record as sent."""

    record: R
    queued: bool = False


@dataclass(frozen=True)
class SessionSummary:
    """One line of the chat sidebar."""

    session_id: str
    title: str
    updated_at: datetime


@dataclass(frozen=True)
class DeletedSession:
    """What deleting a conversation did: answers kept because they were rated (their feedback
    marked as from a deleted conversation), and unrated answers removed."""

    kept: int
    removed: int


class FeedbackStore(Protocol):
    def save_turn(self, turn: Turn) -> Saved[Turn]: ...

    def save_feedback(self, feedback: Feedback) -> Saved[Feedback]: ...

    def get_turn(self, session_id: str, turn_id: str) -> Turn | None: ...

    def session_turns(self, session_id: str) -> list[Turn]: ...

    def user_sessions(self, user: str, limit: int = 20) -> list[SessionSummary]: ...

    def rename_session(self, user: str, session_id: str, title: str) -> None: ...

    def delete_session(self, user: str, session_id: str) -> DeletedSession: ...

    def latest_feedback(self, turn_id: str, user: str) -> Feedback | None: ...

    def feedback_history(self, turn_id: str, user: str) -> list[Feedback]: ...

    def feedback_between(self, start: datetime, end: datetime) -> Iterator[Feedback]: ...


def _describe(error: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "feedback"
    if field == "rating":
        return "the rating must be a whole number from 1 (strongly disagree) to 5 (strongly agree)"
    if error["type"] == "string_too_long":
        return f"the {field} is longer than {error['ctx']['max_length']} characters: shorten it"
    if error["type"] == "missing":
        return f"{field} is missing"
    return f"{field}: {error['msg'].removeprefix('Value error, ')}"


def checked_feedback(feedback: Feedback | Mapping[str, Any]) -> Feedback:
    """Validate feedback again right before it is stored or queued.

    A `Feedback` may have been built with `model_construct` or changed after it was made, and
    a bad record in the outbox would block every record behind it, so nothing is trusted.
    Raises InvalidFeedback with one sentence listing every problem.
    """
    data = feedback.model_dump() if isinstance(feedback, Feedback) else dict(feedback)
    try:
        checked = Feedback.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise InvalidFeedback(f"The feedback was not saved: {problems}.") from None
    for name in ("session_id", "turn_id", "user", "submission_id"):
        if not getattr(checked, name):
            raise InvalidFeedback(f"The feedback was not saved: its {name} is empty.")
    if "#" in checked.turn_id:
        raise InvalidFeedback("The feedback was not saved: a turn id cannot contain '#'.")
    return checked


def checked_ids(turn: Turn) -> Turn:
    """DynamoDB refuses empty key values, and feedback keys join turn id and user with '#':
    say what is wrong instead of passing on DynamoDB's error or storing a turn nobody can rate."""
    for name in ("session_id", "turn_id", "user"):
        if not getattr(turn, name):
            raise TurnRejected(f"The answer was not stored: its {name} is empty.")
    if "#" in turn.turn_id:
        raise TurnRejected("The answer was not stored: a turn id cannot contain '#'.")
    return turn
