"""The judge client: asks a chat model for a verdict in JSON, validates it, and tries again on a
reply that is not one; never guesses a score from free text.

The model is any LangChain chat model: an OpenAI-compatible endpoint (vLLM) or the packaged small
model in-process, which is a demo judge only (too small to judge engineering answers well); both
take the schema as `response_format`.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError, PlumbError
from pipeline.judge.prompts import JUDGE_PROMPT_VERSION, pairwise_messages, score_messages
from pipeline.judge.verdicts import PairVerdict, ScoreVerdict, response_format
from pipeline.prompts import Message, chat_messages
from pipeline.records import Citation, Judgement, ReferenceKind, Turn
from pipeline.settings import Settings

log = logging.getLogger(__name__)

V = TypeVar("V", bound=BaseModel)

DEMO_JUDGE = "SmolLM2-135M-Instruct (demo judge)"


class JudgeFailed(PlumbError):
    """The judge gave no valid verdict in the tries allowed."""


@dataclass(frozen=True)
class Reference:
    """What an answer is judged against: the text and where it came from; text None for none."""

    text: str | None
    kind: ReferenceKind


NO_REFERENCE = Reference(None, "none")

Outcome = Literal["A", "B", "tie"]
SWAPPED: dict[Outcome, Outcome] = {"A": "B", "B": "A", "tie": "tie"}


@dataclass(frozen=True)
class PairVerdicts:
    """The pairwise judge's verdict in each order, each as the judge said it ("A" is the answer it
    was shown first): `in_order` with the first answer shown as A, `swapped` with the second shown
    as A. Position consistency and bias are counted as in the MT-Bench study (Zheng et al. 2023)."""

    in_order: Outcome
    swapped: Outcome

    @property
    def outcome(self) -> Outcome:
        """"A" (the first answer) or "B" only when both orders name it, otherwise "tie"."""
        return self.in_order if self.consistent else "tie"

    @property
    def sides(self) -> tuple[Outcome, Outcome]:
        """The answer preferred in each order, named by its place in the call ("A" the first answer
        given, "B" the second): both "A" is a consistent win for the first."""
        return self.in_order, SWAPPED[self.swapped]

    @property
    def consistent(self) -> bool:
        """Both orders say the same of the two answers (a tie in both counts)."""
        return self.in_order == SWAPPED[self.swapped]

    @property
    def position(self) -> Literal["first", "second"] | None:
        """The place the judge chose in both orders although the answers swapped places: "first"
        when it said "A" both times, "second" for "B" both times; otherwise None."""
        if self.in_order != self.swapped or self.in_order == "tie":
            return None
        return "first" if self.in_order == "A" else "second"


def position_counts(verdicts: Iterable[PairVerdicts]) -> dict[str, int]:
    """Over pairs judged in both orders: `consistent` (the orders agreed), `first_position` and
    `second_position` (the same place chosen in both orders), as the MT-Bench study counts them."""
    counts = {"consistent": 0, "first_position": 0, "second_position": 0}
    for verdict in verdicts:
        counts["consistent"] += verdict.consistent
        if verdict.position:
            counts[f"{verdict.position}_position"] += 1
    return counts


class Judge:
    """Scores answers and compares pairs with one chat model; `model_id` names it in every judgement."""

    def __init__(self, llm: BaseChatModel, model_id: str, attempts: int = 3) -> None:
        self.llm = llm
        self.model_id = model_id
        self.attempts = attempts

    def score(self, turn: Turn, reference: Reference = NO_REFERENCE) -> Judgement:
        """A judgement of `turn`'s answer: 1-5 in half points with a comment. Raises JudgeFailed
        after `attempts` replies that are not a valid verdict."""
        messages = score_messages(turn.question, turn.citations, turn.answer, reference.text, reference.kind)
        verdict = self.ask(messages, ScoreVerdict)
        return Judgement(
            session_id=turn.session_id,
            turn_id=turn.turn_id,
            user=turn.user,
            judge_model=self.model_id,
            prompt_version=JUDGE_PROMPT_VERSION,
            score=verdict.score,
            comment=verdict.comment,
            reference_kind=reference.kind,
        )

    def compare(
        self, question: str, citations: list[Citation], first: str, second: str, reference: str | None = None
    ) -> Outcome:
        """Which of two answers to one prompt is better, asked in both orders: "A" (the first) or "B"
        only when both orders agree, otherwise "tie" (the position-bias defence of the MT-Bench study,
        Zheng et al. 2023)."""
        return self.verdicts(question, citations, first, second, reference).outcome

    def verdicts(
        self, question: str, citations: list[Citation], first: str, second: str, reference: str | None = None
    ) -> PairVerdicts:
        """The verdicts of both orders, first then second shown as A; JudgeFailed as `ask`."""
        return PairVerdicts(
            in_order=self.ask(pairwise_messages(question, citations, first, second, reference), PairVerdict).better,
            swapped=self.ask(pairwise_messages(question, citations, second, first, reference), PairVerdict).better,
        )

    def ask(self, messages: list[Message], verdict: type[V]) -> V:
        """The judge's reply to `messages` as a `verdict` (its JSON schema sent as the response
        format); JudgeFailed after `attempts` replies that are not one. Evaluation asks its own
        questions (RAG metrics, eval scores) through it."""
        problems = []
        for _ in range(self.attempts):
            reply = self.llm.invoke(chat_messages(messages), response_format=response_format(verdict))
            try:
                return verdict.model_validate_json(reply.text)
            except ValidationError as error:
                problems.append(error.errors()[0]["msg"])
                log.info("The judge's reply is not a valid %s: %r", verdict.__name__, reply.text[:200])
        raise JudgeFailed(
            f"The judge {self.model_id} gave no valid {verdict.__name__} in {self.attempts} tries "
            f"({'; '.join(problems)})."
        )


def make_judge(settings: Settings) -> Judge:
    """The configured judge, at temperature 0 (a judge should say the same thing twice)."""
    match settings.judge_backend:
        case "local":
            from pipeline.llm.local_chat import LocalChatModel
            from pipeline.llm.local_model import prepare_local_model

            llm = LocalChatModel.load(
                prepare_local_model(settings.models_dir),
                model_name=DEMO_JUDGE,
                max_new_tokens=settings.judge_max_tokens,
                temperature=0.0,
            )
            return Judge(llm, DEMO_JUDGE, settings.judge_attempts)
        case "openai":
            from pipeline.llm.openai_chat import EndpointChatModel

            llm = EndpointChatModel(
                base_url=settings.judge_base_url,
                model=settings.judge_model,
                api_key=settings.judge_api_key,
                timeout=settings.llm_timeout,
                max_retries=settings.llm_max_retries,
                temperature=0.0,
                max_tokens=settings.judge_max_tokens,
                use_responses_api=False,
            )
            return Judge(llm, settings.judge_model, settings.judge_attempts)
        case other:
            raise ConfigError(f"Unknown PLUMB_JUDGE_BACKEND {other!r}: use 'local' or 'openai'.")
