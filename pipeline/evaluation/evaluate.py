"""`plumb eval`: run questions with reference answers through the chain and measure it.

Measures the source material uses: hit@k of the document that holds the answer and of its page
(or section), semantic similarity of answer and reference (cosine of their embeddings), the share of "not
covered" answers, and latency percentiles. `pipeline.evaluation.retrieval` measures retrieval alone.

Similarity alone rewards an answer that restates the question, so with a judge the report adds the
judge's score distribution and the RAG metrics (`pipeline.evaluation.rag_metrics`), each with mean, p90,
variance and a bootstrap 95% interval of the mean (`pipeline.evaluation.stats`).
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import BaseModel, Field, StringConstraints, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pipeline.chain import RagChain
from pipeline.embeddings import Embedder
from pipeline.errors import PlumbError
from pipeline.evaluation.stats import Spread, spread
from pipeline.index import ChunkIndex, Places
from pipeline.records import Citation
from pipeline.sections import enclosing, within

if TYPE_CHECKING:
    from pipeline.evaluation.compare import CompareReport
    from pipeline.judge.judge import Judge
    from pipeline.evaluation.retrieval import RetrievalReport

SCORES = ("judge_score", "faithfulness", "answer_relevancy", "context_precision", "context_recall")


class EvalCase(BaseModel):
    """One line of an evaluation file. `source` names the document that holds the answer (a path
    as cited, or its end: "design-criteria.pdf" matches "samples/design-criteria.pdf"); a case
    without one is a question the documents do not answer. `page` is the page that holds it: a
    number is the page's place in the file (what a PDF viewer calls "page 3 of 40"), a string its
    printed label ("iv", "A-2"; in any letter case, as roman numerals are printed in either), as the
    citation shows it; 1 for Markdown and HTML. `section` is the heading path of the Markdown or
    HTML section that holds it ("3.2 Curing" or "Design › Loads"; a passage in a subsection is
    within it); when given it is scored instead of the page. A page or section needs a source: without
    one it would be ignored, so such a case is refused."""

    question: str = Field(min_length=1)
    reference: str
    source: str | None = None
    page: int | str | None = None
    section: Annotated[str, StringConstraints(min_length=1)] | None = None

    @field_validator("page")
    @classmethod
    def _page(cls, page: int | str | None) -> int | str | None:
        if page is not None and (page == "" or (isinstance(page, int) and page < 1)):
            raise ValueError('give a page number from 1, or a printed page label such as "iv"')
        return page

    @model_validator(mode="after")
    def _place_needs_source(self) -> "EvalCase":
        place = "page" if self.page is not None else "section" if self.section is not None else None
        if place and not self.source:
            raise PydanticCustomError(
                "place_without_source",
                "'{place}' is given without 'source': name the document it is in, or leave '{place}' out",
                {"place": place},
            )
        return self

    def locates(self) -> bool:
        """Whether the case names a place in its document to score: a page or a section."""
        return bool(self.source) and (self.page is not None or self.section is not None)

    def in_place(self, source: str, page: int, page_label: str, section: str) -> bool:
        """Whether a passage (its source, page number, printed label and section) lies in the
        expected place: within the expected section when the case gives one, else on the expected
        page, by number or by printed label (a page without a label is labelled by its number)."""
        if not self.source or not matches_source(self.source, source):
            return False
        if self.section is not None:
            return within(section, self.section)
        if isinstance(self.page, str):
            return page_key(page, page_label) == self.page.casefold()
        return page == self.page


def page_key(page: int, page_label: str) -> str:
    """How a printed page label is compared: case folded, since "iv" and "IV" are the same page;
    a page without a label is labelled by its number."""
    return (page_label or str(page)).casefold()


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
    citations: list[dict]
    judge_score: float | None = None
    judge_comment: str = ""
    faithfulness: float | None = None
    answer_relevancy: float | None = None
    context_precision: float | None = None
    context_recall: float | None = None
    judge_failures: int = 0
    model_id: str = ""  # the model id the answer's turn records ("plumb-chat/3 on <base>" for a version)
    problem: str = ""  # why the index holds no document or place the case names (`check_cases`); "" when it does


def answered_by(results: list[CaseResult]) -> str:
    """The model ids that wrote these answers, for the report's header: one, unless the live
    version changed during the run."""
    return ", ".join(sorted({r.model_id for r in results if r.model_id})) or "no answers"


@dataclass
class JudgeDistribution:
    """The judge's scores of the answers: mean, share above 3 and below 3 (of those judged), and
    how many answers got each half point from 1 to 5 (keys "1.0" ... "5.0")."""

    judge_model: str
    judged: int
    failed_verdicts: int
    mean: float | None
    share_above_3: float | None
    share_below_3: float | None
    histogram: dict[str, int]


@dataclass
class EvalReport:
    cases: int
    unmatched: int  # cases whose document or place the index does not hold: scored, as misses
    hit_at_k: float | None
    page_hit_at_k: float | None
    similarity_mean: float
    similarity_p10: float
    not_covered_share: float
    latency_p50_ms: float
    latency_p95_ms: float
    model_id: str
    results: list[CaseResult]
    similarity: Spread | None = None
    judge: JudgeDistribution | None = None
    scores: dict[str, Spread | None] | None = None


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
    field = str(error["loc"][0]) if error["loc"] else ""  # the field, not the union member that failed
    match error["type"]:
        case "json_invalid":
            return "is not JSON; write one JSON object per line, with 'question' and 'reference'"
        case "model_type":
            return "is not a JSON object with 'question' and 'reference'"
        case "missing":
            return f"'{field}' is missing; every line needs 'question' and 'reference'"
        case "place_without_source":
            return error["msg"]
        case _:
            return f"'{field}' is wrong: {error['msg']}"


def matches_source(expected: str, source: str) -> bool:
    """Whether a cited `source` is the `expected` document; a file name or the end of a path
    matches wherever that file was ingested from."""
    return source == expected or source.endswith("/" + expected)


def check_cases(cases: list[EvalCase], index: ChunkIndex) -> list[str]:
    """For each case, why the index holds no document or place it names ("" when it holds them):
    a mistake in the file, such as a misspelt name, would otherwise be scored as a miss like any
    other. Reads the index's list of documents, and the pages and sections of only the documents
    the cases name, so it loads no model and its work grows with those, not with the cases times
    the index."""
    documents = _by_ending(index.sources())
    named = {document for case in cases if case.locates() for document in documents.get(case.source or "", [])}
    held = {document: _Held.of(places) for document, places in index.places(sorted(named)).items()}
    return [_unmatched(case, documents, held) for case in cases]


def _by_ending(sources: Iterable[str]) -> dict[str, list[str]]:
    """The indexed documents by every name `matches_source` accepts for them: the whole name and
    each end of it that follows a "/"."""
    documents = defaultdict(list)
    for source in sources:
        parts = source.split("/")
        for start in range(len(parts)):
            documents["/".join(parts[start:])].append(source)
    return documents


@dataclass(frozen=True)
class _Held:
    """What a case may name in one document: page numbers, printed labels as `page_key` compares
    them, and every section a passage lies within (`sections.enclosing`)."""

    numbers: frozenset[int]
    labels: frozenset[str]
    sections: frozenset[str]

    @classmethod
    def of(cls, places: Places) -> "_Held":
        return cls(
            numbers=frozenset(page for page, _ in places.pages),
            labels=frozenset(page_key(page, label) for page, label in places.pages),
            sections=frozenset(name for section in places.sections for name in enclosing(section)),
        )

    def holds(self, case: EvalCase) -> bool:
        if case.section is not None:
            return case.section.casefold() in self.sections
        if isinstance(case.page, str):
            return case.page.casefold() in self.labels
        return case.page in self.numbers


def _unmatched(case: EvalCase, documents: dict[str, list[str]], held: dict[str, _Held]) -> str:
    """Why `case` names what the index does not hold, in words for the person who wrote the file."""
    if not case.source:
        return ""
    if case.source not in documents:
        return f'source "{case.source}" names no indexed document (`plumb index sources` lists them)'
    if not case.locates():
        return ""
    if any(held[document].holds(case) for document in documents[case.source] if document in held):
        return ""  # a document deleted since `sources()` was read is left out of `held`
    if case.section is not None:
        return f'no passage of "{case.source}" lies within the section "{case.section}"'
    if isinstance(case.page, str):
        return f'no page of "{case.source}" is printed "{case.page}"'
    return f'no passage of "{case.source}" lies on page {case.page}'


def _source_hit(case: EvalCase, sources: list[str]) -> bool | None:
    """Whether the expected document is among the retrieved ones."""
    if not case.source:
        return None
    return any(matches_source(case.source, source) for source in sources)


def _page_hit(case: EvalCase, citations: list[Citation]) -> bool | None:
    """Whether a citation lies on the expected page (or in the expected section) of the expected
    document; None when the case names no place."""
    if not case.locates():
        return None
    return any(case.in_place(c.source, c.page, c.page_label, c.section) for c in citations)


def run_eval(
    cases: list[EvalCase], problems: list[str], chain: RagChain, embedder: Embedder, judge: "Judge | None" = None
) -> EvalReport:
    """Answer every case with `chain` and measure the answers; with `judge`, also its scores and
    the RAG metrics (see `pipeline.evaluation.rag_metrics`; 4 + top_k judge requests per question).
    `problems` are `check_cases`' findings, one per case, kept in its result and counted."""
    results = [answer_case(case, chain, embedder) for case in cases]
    for result, problem in zip(results, problems, strict=True):
        result.problem = problem
    if judge is not None:
        for result in results:
            judge_result(result, judge)
    return summarise(results, answered_by(results), judge.model_id if judge else None)


def answer_case(case: EvalCase, chain: RagChain, embedder: Embedder) -> CaseResult:
    """One case answered by `chain`: the answer, its similarity to the reference (SAS: cosine of
    the embeddings) and where its passages came from."""
    answer = chain.invoke(case.question)
    vectors = embedder.encode([answer.answer, case.reference])
    return CaseResult(
        question=case.question,
        answer=answer.answer,
        reference=case.reference,
        similarity=round(float(vectors[0] @ vectors[1]), 4),
        source_hit=_source_hit(case, [c.source for c in answer.citations]),
        page_hit=_page_hit(case, answer.citations),
        not_covered=answer.not_covered,
        latency_ms=answer.timings_ms["total"],
        citations=[c.model_dump() for c in answer.citations],
        model_id=answer.model_id,
    )


def judge_result(result: CaseResult, judge: "Judge") -> None:
    """Fill in `result`'s judge score and RAG metrics."""
    from pipeline.evaluation.rag_metrics import judge_answer

    citations = [Citation(**c) for c in result.citations]
    judged = judge_answer(judge, result.question, result.reference, result.answer, citations)
    result.judge_score = judged.judge_score
    result.judge_comment = judged.judge_comment
    result.faithfulness = judged.faithfulness
    result.answer_relevancy = judged.answer_relevancy
    result.context_precision = judged.context_precision
    result.context_recall = judged.context_recall
    result.judge_failures = judged.failures


def summarise(results: list[CaseResult], model_id: str, judge_model: str | None = None) -> EvalReport:
    """The report of answered (and, when `judge_model` is given, judged) cases."""
    similarities = np.array([r.similarity for r in results])
    latencies = np.array([r.latency_ms for r in results])
    judged = judge_model is not None
    return EvalReport(
        cases=len(results),
        unmatched=sum(bool(r.problem) for r in results),
        hit_at_k=_share([r.source_hit for r in results]),
        page_hit_at_k=_share([r.page_hit for r in results]),
        similarity_mean=round(float(similarities.mean()), 4),
        similarity_p10=round(float(np.percentile(similarities, 10)), 4),
        not_covered_share=round(sum(r.not_covered for r in results) / len(results), 4),
        latency_p50_ms=round(float(np.percentile(latencies, 50)), 1),
        latency_p95_ms=round(float(np.percentile(latencies, 95)), 1),
        model_id=model_id,
        results=results,
        similarity=spread(similarities.tolist()),
        judge=judge_distribution(results, judge_model) if judged else None,
        scores={name: spread(_values(results, name)) for name in SCORES} if judged else None,
    )


def judge_distribution(results: list[CaseResult], judge_model: str) -> JudgeDistribution:
    """The distribution of the judge's scores over `results` (those it judged)."""
    from pipeline.records import JUDGE_SCORES

    scores = _values(results, "judge_score")
    return JudgeDistribution(
        judge_model=judge_model,
        judged=len(scores),
        failed_verdicts=sum(r.judge_failures for r in results),
        mean=round(float(np.mean(scores)), 4) if scores else None,
        share_above_3=round(sum(s > 3 for s in scores) / len(scores), 4) if scores else None,
        share_below_3=round(sum(s < 3 for s in scores) / len(scores), 4) if scores else None,
        histogram={str(level): scores.count(level) for level in JUDGE_SCORES},
    )


def _values(results: list[CaseResult], name: str) -> list[float]:
    """The values of one judged field over the results that have it."""
    return [value for r in results if (value := getattr(r, name)) is not None]


def _share(outcomes: list[bool | None]) -> float | None:
    """The share of True among the outcomes that were scored (not None); None when none was."""
    scored = [outcome for outcome in outcomes if outcome is not None]
    return round(sum(scored) / len(scored), 4) if scored else None


def check_report_path(path: Path) -> None:
    """Refuse, before any question is answered, a report path that cannot be written: PlumbError in
    one sentence; nothing is made here (`write_report` makes the folder). The path must end in
    .json, since the Markdown report and plots go beside it under the same name."""
    if path.is_dir():
        raise PlumbError(f"--out {path} is a folder: name the JSON file to write.")
    if path.suffix != ".json":
        raise PlumbError(f"--out {path} must be a file name ending in .json: the Markdown report and plots are written beside it.")
    folder = next(parent for parent in path.absolute().parents if parent.exists())
    if not folder.is_dir():
        raise PlumbError(f"--out {path} cannot be written: {folder} is a file, not a folder.")


def write_report(report: "EvalReport | RetrievalReport | CompareReport", path: Path) -> None:
    """Write a report (this module's `EvalReport`, `retrieval_eval.RetrievalReport` or
    `eval_compare.CompareReport`) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
