"""The RAG chain: condense a follow-up with the conversation, retrieve, generate, cite.

The chain holds no conversation state: the caller passes the history of its own conversation with
every question, so one user's or one session's history can never leak into another's.
"""

import re
import time
from collections.abc import Generator, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, Field

from pipeline.prompts import (
    NOT_COVERED,
    PROMPT_VERSION,
    answer_messages,
    chat_messages,
    condense_messages,
)
from pipeline.records import Citation

History = list[tuple[str, str]]


class Answer(BaseModel):
    """Everything the chain knows about one answer; the app adds session and user to make a Turn.

    `history` is the window of earlier pairs the prompts held; `generated` is False for the canned
    "not covered" answer, for which no model was asked.
    """

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


class AnswerStream:
    """Iterate to receive the answer text piece by piece as it is generated; afterwards `answer`
    holds the complete structured result (the shape `st.write_stream` consumes)."""

    def __init__(self, pieces: Generator[str, None, Answer]) -> None:
        self._pieces = pieces
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        self.answer = yield from self._pieces


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = round((now - self.last) * 1000, 2)
        self.last = now

    def total(self) -> None:
        self.timings["total"] = round((time.perf_counter() - self.start) * 1000, 2)


class RagChain:
    def __init__(
        self,
        llm: BaseChatModel,
        retriever: BaseRetriever,
        model_id: str,
        min_relevance: float,
        history_turns: int = 3,
    ) -> None:
        self.llm = llm
        self.retriever = retriever
        self.model_id = model_id
        self.min_relevance = min_relevance
        self.history_turns = history_turns

    def stream(self, question: str, history: History | None = None) -> AnswerStream:
        question = question.strip()
        if not question:
            raise ValueError("The question is empty: type a question about the documents.")
        return AnswerStream(self._run(question, list(history or [])[-self.history_turns :]))

    def invoke(self, question: str, history: History | None = None) -> Answer:
        stream = self.stream(question, history)
        for _ in stream:
            pass
        return stream.answer

    def condense(self, question: str, history: History) -> tuple[str, dict]:
        """A standalone version of a follow-up, so retrieval does not depend on earlier turns;
        returned with the token usage of the rewrite."""
        if not history:
            return question, {}
        message = self.llm.invoke(chat_messages(condense_messages(history, question)))
        rewritten = _first_line(str(message.content))
        if not rewritten.endswith("?"):
            # A small model sometimes answers instead of rewriting; the last question plus the
            # follow-up still carries the topic to the retriever.
            rewritten = f"{history[-1][0]} {question}"
        return rewritten, dict(message.usage_metadata or {})

    def _run(self, question: str, history: History) -> Generator[str, None, Answer]:
        clock = _Clock()
        condensed, condense_usage = self.condense(question, history)
        clock.lap("condense")
        documents = self.retriever.invoke(condensed)
        citations = [_citation(doc) for doc in documents]
        clock.lap("retrieve")
        relevant = bool(documents) and max(doc.metadata["similarity"] for doc in documents) >= self.min_relevance
        generated = AIMessageChunk(content="")
        if relevant:
            for chunk in self.llm.stream(chat_messages(answer_messages(history, citations, question))):
                if "first_token" not in clock.timings:
                    clock.lap("first_token")
                generated += chunk
                if chunk.content:
                    yield str(chunk.content)
            clock.lap("generate")
            text = str(generated.content).strip()
        else:
            text = NOT_COVERED
            yield text
        clock.total()
        usage = generated.usage_metadata or {}
        return Answer(
            question=question,
            condensed_question=condensed,
            answer=text,
            citations=citations,
            history=history,
            generated=relevant,
            not_covered=not relevant or text.startswith(NOT_COVERED.split(".")[0]),
            model_id=self.model_id,
            timings_ms=clock.timings,
            tokens_in=usage.get("input_tokens", 0) + condense_usage.get("input_tokens", 0),
            tokens_out=usage.get("output_tokens", 0) + condense_usage.get("output_tokens", 0),
        )


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


def build_chain(llm: BaseChatModel, retriever: BaseRetriever, model_id: str, min_relevance: float) -> RagChain:
    return RagChain(llm=llm, retriever=retriever, model_id=model_id, min_relevance=min_relevance)
