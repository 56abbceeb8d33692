"""What the judge says of one evaluated answer: its 1-5 score against the reference, and the four
RAG metrics (faithfulness, answer relevancy, context precision, context recall).

The RAG metrics are MLflow 3's GenAI judges (`mlflow.genai.judges`: groundedness, relevance to the
query, retrieval relevance, context sufficiency), their prompts as MLflow ships and versions them,
asked of the configured judge model through `Judge.ask`. MLflow's own judge functions only reach a
model by URI (its AI gateway or LiteLLM), which cannot call the in-process demo judge, so the
prompts are taken and the model is ours; the reply is MLflow's JSON (`rationale`, `result` yes/no),
enforced as the response format like every verdict. Each verdict is a yes or no (1.0 or 0.0);
context precision is the average precision of the passages the judge found relevant, by rank (the
formula of ragas' context precision), so a relevant passage ranked first counts more than one
ranked fifth.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from pipeline.judge.judge import Judge, JudgeFailed
from pipeline.judge.prompts import score_messages
from pipeline.judge.verdicts import ScoreVerdict
from pipeline.records import Citation

METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


class YesNoVerdict(BaseModel):
    """The reply MLflow's judge prompts ask for."""

    rationale: str = Field(min_length=1, max_length=600)
    result: Literal["yes", "no"]


@dataclass
class Judged:
    """The judge's view of one answer; a value is None when the judge gave no valid verdict for it
    (`failures` counts those verdicts)."""

    judge_score: float | None
    judge_comment: str
    faithfulness: float | None
    answer_relevancy: float | None
    context_precision: float | None
    context_recall: float | None
    failures: int


def judge_answer(judge: Judge, question: str, reference: str, answer: str, citations: Sequence[Citation]) -> Judged:
    """Score `answer` to `question` (1-5 against `reference`) and measure the four RAG metrics on
    the passages it was given. Asks the judge 4 + len(citations) times (each with its retries)."""
    from mlflow.genai.judges.prompts import context_sufficiency, groundedness, relevance_to_query, retrieval_relevance

    failures = 0

    def yes(prompt: str) -> float | None:
        nonlocal failures
        try:
            return 1.0 if judge.ask([{"role": "user", "content": prompt}], YesNoVerdict).result == "yes" else 0.0
        except JudgeFailed:
            failures += 1
            return None

    context = "\n\n".join(f"[{n}] {c.label()}\n{c.passage}" for n, c in enumerate(citations, start=1))
    try:
        verdict: ScoreVerdict | None = judge.ask(score_messages(question, citations, answer, reference, "sme"), ScoreVerdict)
    except JudgeFailed:
        failures += 1
        verdict = None
    relevant = [yes(retrieval_relevance.get_prompt(question, c.passage)) for c in citations]
    return Judged(
        judge_score=verdict.score if verdict else None,
        judge_comment=verdict.comment if verdict else "",
        faithfulness=yes(groundedness.get_prompt(request=question, response=answer, context=context)),
        answer_relevancy=yes(relevance_to_query.get_prompt(question, answer)),
        context_precision=None if None in relevant else average_precision(relevant),
        context_recall=yes(context_sufficiency.get_prompt(request=question, context=context, expected_response=reference)),
        failures=failures,
    )


def average_precision(relevant: Sequence[float]) -> float:
    """Mean of precision@k over the ranks k that hold a relevant passage (1.0 relevant, 0.0 not);
    0.0 when none is relevant or there are no passages. [1, 0, 1] -> (1/1 + 2/3) / 2 = 0.8333."""
    hits = 0
    total = 0.0
    for rank, value in enumerate(relevant, start=1):
        if value:
            hits += 1
            total += hits / rank
    return round(total / hits, 4) if hits else 0.0
