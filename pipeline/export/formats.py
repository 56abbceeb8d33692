"""Rows in TRL's own dataset formats, built from a turn and the latest feedback on it.

Conversational style: a prompt is the list of messages the model was sent for the answer, built by
the chain's own function (`pipeline.prompts.answer_messages`) from what the turn recorded: the
earlier (question, answer) pairs as user and assistant messages, then one user message with the
retrieved passages ("source – page N") and the question as typed. A completion is a single assistant
message. Only what a model wrote is used as model output: turns whose prompt cannot be rebuilt or
whose answer no model wrote are left out with a reason (`exclusion`). Each function is pure and small
so that the export job only decides which rows go to which file, with which provenance columns.
See TRL's "Dataset formats" guide for the column names.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol, TypeVar

from pipeline.export.options import KtoNeutral
from pipeline.prompts import Message, answer_messages
from pipeline.records import Feedback, Turn

Row = dict[str, Any]

FORMATS = ("sft", "preference", "reward", "kto", "ratings")

# Who gave the verdict a row carries: people, through the feedback form (judges come later).
LABEL_SOURCE = "human"

# Many users can get the same prompt; its best-rated answer is paired with at most this many
# lower-rated ones, the lowest rated first (the clearest signal).
MAX_PAIRS_PER_PROMPT = 50

# Why a rated turn yields no row, as the manifest and the dataset card count it, in the order checked.
EXCLUSIONS = {
    "history_not_recorded": "stored before turns recorded their conversation history, so the prompt the "
    "model saw cannot be rebuilt",
    "not_generated": "the answer is the canned \"not covered\" text, which no model wrote",
    "retrieval_miss": "a correction of a \"not covered\" answer: the user knew an answer the retriever did not "
    "find; no model was prompted, so there is no prompt to train on (counted to measure retrieval)",
    "empty_answer": "the model's answer is empty or only whitespace",
    "passage_truncated": "a passage was stored cut to fit DynamoDB's item size, so the prompt cannot be rebuilt "
    "exactly",
}


@dataclass(frozen=True)
class Rated:
    """A turn joined with the feedback that counts for it (the latest version)."""

    turn: Turn
    feedback: Feedback

    @cached_property
    def prompt(self) -> list[Message]:
        """Built once: every dataset row of this turn starts with it."""
        return prompt(self.turn)


@dataclass(frozen=True)
class RatedAnswer:
    """One verdict on one answer, as pairing answers to the same prompt needs it."""

    turn_id: str
    user: str
    feedback_version: int
    model_id: str
    prompt_version: str
    answer: str
    rating: int

    @classmethod
    def of(cls, rated: Rated) -> "RatedAnswer":
        turn, feedback = rated.turn, rated.feedback
        return cls(
            turn.turn_id,
            feedback.user,
            feedback.version,
            turn.model_id,
            turn.prompt_version,
            turn.answer,
            feedback.rating,
        )


def exclusion(rated: Rated) -> str | None:
    """Why this rated turn yields no row (a key of EXCLUSIONS), or None when it yields rows."""
    turn = rated.turn
    if turn.history is None:
        return "history_not_recorded"
    if not turn.generated:
        return "retrieval_miss" if rated.feedback.correction else "not_generated"
    if not turn.answer.strip():
        return "empty_answer"
    if any(citation.passage_truncated for citation in turn.citations):
        return "passage_truncated"
    return None


def provenance(rated: Rated, export_id: str) -> Row:
    """The columns that tie a single-turn row to its turn and verdict (TRL ignores them)."""
    turn, feedback = rated.turn, rated.feedback
    return {
        "turn_id": turn.turn_id,
        "user": feedback.user,
        "feedback_version": feedback.version,
        "model_id": turn.model_id,
        "prompt_version": turn.prompt_version,
        "label_source": LABEL_SOURCE,
        "export_id": export_id,
    }


def pair_provenance(
    pair: Literal["correction", "rating", "judge"], chosen: RatedAnswer, rejected: RatedAnswer, export_id: str
) -> Row:
    """The columns of a preference or reward row: both sides' turn and verdict. A correction pair
    names its one turn on both sides; its chosen side was written by a person, so its model is ""."""
    return {
        "pair": pair,
        "chosen_turn_id": chosen.turn_id,
        "chosen_user": chosen.user,
        "chosen_feedback_version": chosen.feedback_version,
        # "" rather than null, so the column has one type in every file (datasets' JSON loader infers
        # a type per file, and a train split of correction pairs alone would make it null).
        "chosen_model_id": "" if pair == "correction" else chosen.model_id,
        "rejected_turn_id": rejected.turn_id,
        "rejected_user": rejected.user,
        "rejected_feedback_version": rejected.feedback_version,
        "rejected_model_id": rejected.model_id,
        "prompt_version": rejected.prompt_version,
        "label_source": LABEL_SOURCE,
        "export_id": export_id,
    }


def question_text(turn: Turn) -> str:
    """The standalone question: the condensed one, which is what the passages were retrieved for."""
    return turn.condensed_question.strip() or turn.question.strip()


def prompt(turn: Turn) -> list[Message]:
    """The messages the model was sent for this turn's answer (role/content dicts).

    Raises ValueError for a turn that did not record its history (see `exclusion`).
    """
    if turn.history is None:
        raise ValueError(f"turn {turn.turn_id} did not record its history: its prompt cannot be rebuilt")
    return answer_messages(turn.history, turn.citations, turn.question, turn.prompt_version)


def completion(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


# Who wrote a row's completion: the model that answered, or the user who corrected it.
CompletionSource = Literal["model", "correction"]


def _completion_row(rated: Rated, source: CompletionSource, **extra: Any) -> Row:
    text = rated.turn.answer if source == "model" else rated.feedback.correction
    return {"prompt": rated.prompt, "completion": completion(text), **extra, "completion_source": source}


def sft_rows(rated: Rated) -> list[Row]:
    """The user's correction when there is one, else the bot's answer when rated 4-5."""
    feedback = rated.feedback
    if feedback.correction:
        return [_completion_row(rated, "correction")]
    if feedback.rating >= 4:
        return [_completion_row(rated, "model")]
    return []


def correction_preference_rows(rated: Rated) -> list[Row]:
    """The user's correction preferred over the answer it corrects."""
    correction = rated.feedback.correction
    if not correction or correction == rated.turn.answer:
        return []
    return [preference_row(rated.prompt, correction, rated.turn.answer)]


class Rating(Protocol):
    """What pairing answers to one prompt reads of each: its rating and its text."""

    @property
    def rating(self) -> int: ...

    @property
    def answer(self) -> str: ...


A = TypeVar("A", bound=Rating)


def rating_pairs(answers: Iterable[A]) -> list[tuple[A, A]]:
    """(chosen, rejected) pairs among verdicts on answers to one prompt, given a best-rated one
    first and the rest lowest-rated first: the first answer over each lower-rated, different one, at
    most MAX_PAIRS_PER_PROMPT.

    One pass, so linear in the number of answers; never across prompts.
    """
    answers = iter(answers)
    best = next(answers, None)
    pairs = []
    for other in answers:
        if other.rating < best.rating and other.answer != best.answer:
            pairs.append((best, other))
            if len(pairs) == MAX_PAIRS_PER_PROMPT:
                break
    return pairs


def preference_row(prompt: list[Message], chosen: str, rejected: str) -> Row:
    return {"prompt": prompt, "chosen": completion(chosen), "rejected": completion(rejected)}


def reward_row(preference: Row) -> Row:
    """A preference row with the prompt folded into both sides (TRL's implicit-prompt format)."""
    return {
        "chosen": preference["prompt"] + preference["chosen"],
        "rejected": preference["prompt"] + preference["rejected"],
    }


def kto_rows(rated: Rated, neutral: KtoNeutral = "omit") -> list[Row]:
    """The answer labelled desirable (4-5) or not (1-2); a correction is always desirable."""
    rating = rated.feedback.rating
    rows = []
    label = {1: False, 2: False, 4: True, 5: True}.get(rating)
    if rating == 3 and neutral != "omit":
        label = neutral == "desirable"
    if label is not None:
        rows.append(_completion_row(rated, "model", label=label))
    if rated.feedback.correction:
        rows.append(_completion_row(rated, "correction", label=True))
    return rows


def ratings_row(rated: Rated, score: float | None = None) -> Row:
    """The answer with its 1-5 score and note, for scores used directly as rewards or to check a judge.
    The score is a float in every row, so a file holding an AI judge's half points (`score`) and
    people's whole ones has one column type."""
    return _completion_row(rated, "model", score=float(score or rated.feedback.rating), note=rated.feedback.note)
