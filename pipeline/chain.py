"""The RAG chain: condense a follow-up with the conversation, retrieve, generate, cite.

The chain holds no conversation state: the caller passes the history of its own conversation with
every question, so one user's or one session's history can never leak into another's.
"""

import re
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, Field

from pipeline.errors import PlumbError
from pipeline.escalation.detection import Detector
from pipeline.prompts import (
    NOT_COVERED,
    PROMPT_VERSION,
    answer_messages,
    chat_messages,
    condense_messages,
)
from pipeline.records import Citation, new_id

if TYPE_CHECKING:
    from pipeline.tracing import ChainTracer

History = list[tuple[str, str]]
# Called once, before the answer is generated, when the question calls in an expert: with the turn
# id the answer will have, the detector's reason and the passages retrieved for the question.
EscalateHook = Callable[[str, str, list[Citation]], None]
# The answer while an expert is asked and PLUMB_ESCALATION_HOLD holds the bot's own.
HELD = "An expert has been asked to answer this; their answer will appear in this conversation."
# Where a small model, done answering, starts writing the next turn of the prompt itself.
ANSWER_STOP = ["\nQuestion:", "\nPassages:", "\nUser:"]


class EmptyQuestion(PlumbError, ValueError):
    """A question of nothing but whitespace: the user is told, nothing is asked."""


class Answer(BaseModel):
    """Everything the chain knows about one answer; the app adds session and user to make a Turn.

    `history` is the window of earlier pairs the prompts held; `generated` is False for the canned
    "not covered" answer, for which no model was asked. `turn_id` is the id the turn is stored
    under, made here so that the turn's trace carries it.
    """

    turn_id: str = Field(default_factory=new_id)
    question: str
    condensed_question: str
    answer: str
    citations: list[Citation]
    history: History
    generated: bool
    not_covered: bool
    model_id: str
    prompt_version: str = PROMPT_VERSION
    timings_ms: dict[str, float] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    escalation: str = ""
    sentiment: float = 0.0


class AnswerStream:
    """Iterate to receive the answer text piece by piece as it is generated; afterwards `answer`
    holds the complete structured result (the shape `st.write_stream` consumes)."""

    def __init__(self, pieces: Generator[str, None, Answer]) -> None:
        self._pieces = pieces
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        self.answer = yield from self._pieces


class _Clock:
    """Milliseconds per step (`timings`) and the wall-clock nanoseconds at each step's end
    (`marks`, with "start" and "end"), which place a trace's spans."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.marks = {"start": time.time_ns()}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = round((now - self.last) * 1000, 2)
        self.marks[step] = time.time_ns()
        self.last = now

    def total(self) -> None:
        self.timings["total"] = round((time.perf_counter() - self.start) * 1000, 2)
        self.marks["end"] = time.time_ns()


class RagChain:
    def __init__(
        self,
        llm: BaseChatModel,
        retriever: BaseRetriever,
        model_id: str,
        min_relevance: float,
        *,
        history_turns: int = 3,
        detector: Detector | None = None,
        hold_escalated: bool = False,
        tracer: "ChainTracer | None" = None,
        prompt_version: str = PROMPT_VERSION,
    ) -> None:
        self.llm = llm
        self.prompt_version = prompt_version
        self.retriever = retriever
        self.model_id = model_id
        self.min_relevance = min_relevance
        self.history_turns = history_turns
        self.detector = detector
        self.hold_escalated = hold_escalated
        self.tracer = tracer

    def stream(
        self,
        question: str,
        history: History | None = None,
        sources: list[str] | None = None,
        on_escalate: EscalateHook | None = None,
        turn_id: str | None = None,
    ) -> AnswerStream:
        """The answer to `question`, streamed; `sources` restricts retrieval to those documents
        (None: every document). `on_escalate` is called before generation when the detector says
        the question needs a person, so the expert is called in before the bot answers. `turn_id`
        is the answer's (a new one when None): asking again under the same id after an interrupted
        answer finds the escalation already made."""
        question = question.strip()
        if not question:
            raise EmptyQuestion("The question is empty: type a question about the documents.")
        window = list(history or [])[-self.history_turns :] if self.history_turns else []
        return AnswerStream(self._run(question, window, sources, on_escalate, turn_id or new_id()))

    def invoke(self, question: str, history: History | None = None, sources: list[str] | None = None) -> Answer:
        stream = self.stream(question, history, sources)
        for _ in stream:
            pass
        return stream.answer

    def pinned(self) -> tuple[BaseChatModel, str]:
        """The model that writes one whole answer and the model id its turn records: fixed here; a
        chain that follows the live trained version picks them per answer (pipeline/models/serving.py)."""
        return self.llm, self.model_id

    def condense(self, llm: BaseChatModel, question: str, history: History) -> tuple[str, dict]:
        """A standalone version of a follow-up, so retrieval does not depend on earlier turns;
        returned with the token usage of the rewrite."""
        if not history:
            return question, {}
        message = llm.invoke(chat_messages(condense_messages(history, question)))
        rewritten = _first_line(str(message.content))
        if not rewritten.endswith("?"):
            # A small model sometimes answers instead of rewriting; the last question plus the
            # follow-up still carries the topic to the retriever.
            rewritten = f"{history[-1][0]} {question}"
        return rewritten, dict(message.usage_metadata or {})

    def _run(
        self, question: str, history: History, sources: list[str] | None, on_escalate: EscalateHook | None,
        turn_id: str,
    ) -> Generator[str, None, Answer]:
        clock = _Clock()
        llm, model_id = self.pinned()
        decision = self.detector.check(question) if self.detector else None
        clock.lap("detect")
        condensed, condense_usage = self.condense(llm, question, history)
        clock.lap("condense")
        documents = self.retriever.invoke(condensed, sources=sources)
        citations = [_citation(doc) for doc in documents]
        clock.lap("retrieve")
        if decision and decision.escalate and on_escalate is not None:
            on_escalate(turn_id, decision.reason, citations)
            clock.lap("escalate")
        relevant = bool(documents) and max(doc.metadata["similarity"] for doc in documents) >= self.min_relevance
        generated = AIMessageChunk(content="")
        held = bool(decision and decision.escalate and self.hold_escalated)
        prompt = answer_messages(history, citations, question, self.prompt_version) if relevant and not held else None
        if held:
            text = HELD
            yield text
        elif prompt is not None:
            for chunk in llm.stream(chat_messages(prompt), stop=ANSWER_STOP):
                if "first_token" not in clock.timings:
                    clock.lap("first_token")
                generated += chunk
                if chunk.content:
                    yield str(chunk.content)
            clock.lap("generate")
            text = _before_stop(str(generated.content)).strip()
        else:
            text = NOT_COVERED
            yield text
        clock.total()
        usage = generated.usage_metadata or {}
        answer = Answer(
            turn_id=turn_id,
            question=question,
            condensed_question=condensed,
            answer=text,
            citations=citations,
            history=history,
            generated=relevant and not held,
            not_covered=not relevant or text.startswith(NOT_COVERED.split(".")[0]),
            model_id=model_id,
            prompt_version=self.prompt_version,
            timings_ms=clock.timings,
            tokens_in=usage.get("input_tokens", 0) + condense_usage.get("input_tokens", 0),
            tokens_out=usage.get("output_tokens", 0) + condense_usage.get("output_tokens", 0),
            escalation=decision.reason if decision else "",
            sentiment=decision.sentiment if decision else 0.0,
        )
        if self.tracer is not None and self.tracer.sampled():
            self.tracer.record(answer, clock.marks, prompt, {"condense": condense_usage, "generate": dict(usage)})
        return answer


def _before_stop(text: str) -> str:
    """The answer without a stop sequence and what follows it (a local model's output keeps them)."""
    for stop in ANSWER_STOP:
        text = text.split(stop, 1)[0]
    return text


def _first_line(text: str) -> str:
    """Small models add a preamble or a second line; keep the first line that reads like a question."""
    prefix = r"^(standalone question|follow-up question|question|user|assistant)\s*:\s*"
    lines = [re.sub(prefix, "", line.strip(), flags=re.I) for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[0] if lines else ""


def _citation(doc) -> Citation:
    meta = doc.metadata
    return Citation(
        source=meta["source"],
        page=meta["page"],
        page_label=meta.get("page_label", ""),  # a retriever other than IndexRetriever may not know them
        section=meta.get("section", ""),
        passage=doc.page_content,
        score=round(float(meta["score"]), 6),
        chunk_id=meta["chunk_id"],
    )

