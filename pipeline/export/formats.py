"""Rows in TRL's own dataset formats, built from a turn and the latest feedback on it.

Conversational style: a prompt is a list of messages whose single user message is the chain's own
answer prompt (retrieved passages with "source – page N", then the standalone question), so a model
is trained on the prompt it answers with; a completion is a single assistant message. Each function is
pure and small so that the export job only decides which rows go to which file.
See TRL's "Dataset formats" guide for the column names.
"""

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any

from pipeline.export.job import KtoNeutral
from pipeline.prompts import ANSWER_REQUEST
from pipeline.records import Feedback, Turn

Row = dict[str, Any]
Message = dict[str, str]

FORMATS = ("sft", "preference", "reward", "kto", "ratings")

# A question asked by many users could pair every answer with every other; the largest rating
# gaps carry the clearest signal, so only that many pairs are kept per question.
MAX_PAIRS_PER_QUESTION = 50


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
    """What pairing answers by rating needs of a rated turn, small enough to keep on disk per item."""

    prompt: list[Message]
    answer: str
    rating: int

    @classmethod
    def of(cls, rated: Rated) -> "RatedAnswer":
        return cls(rated.prompt, rated.turn.answer, rated.feedback.rating)


def question_text(turn: Turn) -> str:
    """The standalone question: the condensed one, which is what the passages were retrieved for."""
    return turn.condensed_question.strip() or turn.question.strip()


def question_key(turn: Turn) -> str:
    """Identity of a question across users and sessions: case and spacing do not make a new one."""
    return " ".join(question_text(turn).casefold().split())


def user_content(turn: Turn) -> str:
    """The answer prompt's user message, filled with the turn's passages and standalone question.

    The conversation history is left out: the condensed question already stands on its own.
    """
    context = "\n\n".join(
        f"[{n}] {citation.label()}\n{citation.passage}" for n, citation in enumerate(turn.citations, 1)
    )
    return ANSWER_REQUEST.format(context=context, question=question_text(turn))


def prompt(turn: Turn) -> list[Message]:
    return [{"role": "user", "content": user_content(turn)}]


def completion(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def sft_rows(rated: Rated) -> list[Row]:
    """The user's correction when there is one, else the bot's answer when rated 4-5."""
    feedback = rated.feedback
    if feedback.correction:
        return [{"prompt": rated.prompt, "completion": completion(feedback.correction)}]
    if feedback.rating >= 4:
        return [{"prompt": rated.prompt, "completion": completion(rated.turn.answer)}]
    return []


def correction_preference_rows(rated: Rated) -> list[Row]:
    """The user's correction preferred over the answer it corrects."""
    correction = rated.feedback.correction
    if not correction or correction == rated.turn.answer:
        return []
    return [{"prompt": rated.prompt, "chosen": completion(correction), "rejected": completion(rated.turn.answer)}]


def rating_preference_rows(answers: list[RatedAnswer]) -> list[Row]:
    """Higher-rated over lower-rated answers to one question, the widest rating gaps first.

    The prompt is the preferred turn's: its passages are the context the better answer came from.
    """
    ordered = sorted(answers, key=lambda a: (-a.rating, a.answer))
    pairs = [
        (better, worse)
        for better, worse in combinations(ordered, 2)
        if better.rating > worse.rating and better.answer != worse.answer
    ]
    pairs.sort(key=lambda pair: pair[1].rating - pair[0].rating)
    return [
        {"prompt": better.prompt, "chosen": completion(better.answer), "rejected": completion(worse.answer)}
        for better, worse in pairs[:MAX_PAIRS_PER_QUESTION]
    ]


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
        rows.append({"prompt": rated.prompt, "completion": completion(rated.turn.answer), "label": label})
    if rated.feedback.correction:
        rows.append({"prompt": rated.prompt, "completion": completion(rated.feedback.correction), "label": True})
    return rows


def ratings_row(rated: Rated) -> Row:
    """The answer with its 1-5 score and note, for scores used directly as rewards or to check a judge."""
    return {
        "prompt": rated.prompt,
        "completion": completion(rated.turn.answer),
        "score": rated.feedback.rating,
        "note": rated.feedback.note,
    }
