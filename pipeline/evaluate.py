"""`plumb eval`: run questions with reference answers through the chain and measure it.

Measures the source material uses: hit@k of the document that holds the answer, semantic
similarity of answer and reference (cosine of their embeddings), the share of "not covered"
answers, and latency percentiles.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError

from pipeline.chain import RagChain
from pipeline.embeddings import Embedder
from pipeline.errors import PlumbError


class EvalCase(BaseModel):
    question: str
    reference: str
    source: str | None = None
    page: int | None = None


@dataclass
class CaseResult:
    question: str
    answer: str
    reference: str
    similarity: float
    source_hit: bool | None
    not_covered: bool
    latency_ms: float


@dataclass
class EvalReport:
    cases: int
    hit_at_k: float | None
    similarity_mean: float
    similarity_p10: float
    not_covered_share: float
    latency_p50_ms: float
    latency_p95_ms: float
    model_id: str
    results: list[CaseResult]


def load_cases(path: Path) -> list[EvalCase]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(EvalCase.model_validate_json(line))
        except ValidationError as exc:
            raise PlumbError(f"{path}, line {number}: each line needs 'question' and 'reference' ({exc.errors()[0]['msg']}).") from exc
    if not cases:
        raise PlumbError(f"{path} holds no questions: write one JSON object per line.")
    return cases


def _source_hit(case: EvalCase, sources: list[str]) -> bool | None:
    """Whether the expected document is among the retrieved ones; a source given as a file name
    matches wherever that file was ingested from."""
    if not case.source:
        return None
    return any(source == case.source or source.endswith("/" + case.source) for source in sources)


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
                not_covered=answer.not_covered,
                latency_ms=answer.timings_ms["total"],
            )
        )
    return _summarise(results, chain.model_id)


def _summarise(results: list[CaseResult], model_id: str) -> EvalReport:
    similarities = np.array([r.similarity for r in results])
    latencies = np.array([r.latency_ms for r in results])
    hits = [r.source_hit for r in results if r.source_hit is not None]
    return EvalReport(
        cases=len(results),
        hit_at_k=round(sum(hits) / len(hits), 4) if hits else None,
        similarity_mean=round(float(similarities.mean()), 4),
        similarity_p10=round(float(np.percentile(similarities, 10)), 4),
        not_covered_share=round(sum(r.not_covered for r in results) / len(results), 4),
        latency_p50_ms=round(float(np.percentile(latencies, 50)), 1),
        latency_p95_ms=round(float(np.percentile(latencies, 95)), 1),
        model_id=model_id,
        results=results,
    )


def write_report(report: EvalReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
