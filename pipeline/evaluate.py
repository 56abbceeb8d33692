"""`plumb eval`: run questions with reference answers through the chain and measure it.

Measures the source material uses: hit@k of the document that holds the answer and of its page,
semantic similarity of answer and reference (cosine of their embeddings), the share of "not
covered" answers, and latency percentiles. `pipeline.retrieval_eval` measures retrieval alone.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from pipeline.chain import RagChain
from pipeline.embeddings import Embedder
from pipeline.errors import PlumbError

if TYPE_CHECKING:
    from pipeline.retrieval_eval import RetrievalReport


class EvalCase(BaseModel):
    """One line of an evaluation file. `source` names the document that holds the answer (a path
    as cited, or its end: "design-criteria.pdf" matches "samples/design-criteria.pdf"); a case
    without one is a question the documents do not answer. `page` is the page that holds it (1
    for Markdown and HTML); `section`, the heading path, is carried for documents cited by
    section and not yet scored."""

    question: str = Field(min_length=1)
    reference: str
    source: str | None = None
    page: int | None = Field(None, ge=1)
    section: str | None = None


@dataclass
class CaseResult:
    question: str
    answer: str
    reference: str
    similarity: float
    source_hit: bool | None
    page_hit: bool | None
    not_covered: bool
    latency_ms: float


@dataclass
class EvalReport:
    cases: int
    hit_at_k: float | None
    page_hit_at_k: float | None
    similarity_mean: float
    similarity_p10: float
    not_covered_share: float
    latency_p50_ms: float
    latency_p95_ms: float
    model_id: str
    results: list[CaseResult]


def load_cases(path: Path) -> list[EvalCase]:
    """The cases of a JSONL file, one JSON object per line (blank lines skipped); PlumbError with
    one sentence naming the file and line when the file cannot be read or a line is not a case."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PlumbError(f"{path} cannot be read as UTF-8 text ({exc}).") from exc
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cases.append(EvalCase.model_validate_json(line))
        except ValidationError as exc:
            raise PlumbError(f"{path}, line {number}: {_problem(exc)}.") from exc
    if not cases:
        raise PlumbError(f"{path} holds no questions: write one JSON object per line.")
    return cases


def _problem(exc: ValidationError) -> str:
    """The first thing wrong with a line, said the way the person who wrote the file thinks of it."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    match error["type"]:
        case "json_invalid":
            return "is not JSON; write one JSON object per line, with 'question' and 'reference'"
        case "model_type":
            return "is not a JSON object with 'question' and 'reference'"
        case "missing":
            return f"'{field}' is missing; every line needs 'question' and 'reference'"
        case _:
            return f"'{field}' is wrong: {error['msg']}"


def matches_source(expected: str, source: str) -> bool:
    """Whether a cited `source` is the `expected` document; a file name or the end of a path
    matches wherever that file was ingested from."""
    return source == expected or source.endswith("/" + expected)


def _source_hit(case: EvalCase, sources: list[str]) -> bool | None:
    """Whether the expected document is among the retrieved ones."""
    if not case.source:
        return None
    return any(matches_source(case.source, source) for source in sources)


def _page_hit(case: EvalCase, places: list[tuple[str, int]]) -> bool | None:
    """Whether the expected page of the expected document is among the retrieved (source, page) pairs."""
    if not case.source or case.page is None:
        return None
    return any(matches_source(case.source, source) and page == case.page for source, page in places)


def run_eval(cases: list[EvalCase], chain: RagChain, embedder: Embedder) -> EvalReport:
    results = []
    for case in cases:
        answer = chain.invoke(case.question)
        vectors = embedder.encode([answer.answer, case.reference])
        results.append(
            CaseResult(
                question=case.question,
                answer=answer.answer,
                reference=case.reference,
                similarity=round(float(vectors[0] @ vectors[1]), 4),
                source_hit=_source_hit(case, [c.source for c in answer.citations]),
                page_hit=_page_hit(case, [(c.source, c.page) for c in answer.citations]),
                not_covered=answer.not_covered,
                latency_ms=answer.timings_ms["total"],
            )
        )
    return _summarise(results, chain.model_id)


def _summarise(results: list[CaseResult], model_id: str) -> EvalReport:
    similarities = np.array([r.similarity for r in results])
    latencies = np.array([r.latency_ms for r in results])
    return EvalReport(
        cases=len(results),
        hit_at_k=_share([r.source_hit for r in results]),
        page_hit_at_k=_share([r.page_hit for r in results]),
        similarity_mean=round(float(similarities.mean()), 4),
        similarity_p10=round(float(np.percentile(similarities, 10)), 4),
        not_covered_share=round(sum(r.not_covered for r in results) / len(results), 4),
        latency_p50_ms=round(float(np.percentile(latencies, 50)), 1),
        latency_p95_ms=round(float(np.percentile(latencies, 95)), 1),
        model_id=model_id,
        results=results,
    )


def _share(outcomes: list[bool | None]) -> float | None:
    """The share of True among the outcomes that were scored (not None); None when none was."""
    scored = [outcome for outcome in outcomes if outcome is not None]
    return round(sum(scored) / len(scored), 4) if scored else None


def write_report(report: "EvalReport | RetrievalReport", path: Path) -> None:
    """Write a report (this module's `EvalReport` or `retrieval_eval.RetrievalReport`) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
