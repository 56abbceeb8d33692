"""`plumb eval --retrieval-only`: how well each search mode finds the passage that answers a
question, without generating answers.

The questions are encoded in one batch and each is searched once per mode, DEPTH results deep, so a
thousand questions take seconds. For each case and mode the report keeps the rank of the first
result from the expected document and of the first from its expected page, or its section when the
case gives one (`EvalCase.in_place`; the "page" scores count both); hit@k is the share of
cases with that rank at most k, MRR the mean of 1/rank (0 when not found). A case without a source
(a question the documents do not answer) has nothing to find: it is counted apart, not as a miss.
A case that names a document or place the index does not hold (`evaluate.check_cases`) is scored,
a miss, and counted as unmatched, so a reader knows the figures may understate.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.embeddings import Embedder
from pipeline.evaluation.evaluate import EvalCase, matches_source
from pipeline.index import ChunkIndex, Hit, SearchMode

MODES: tuple[SearchMode, ...] = ("dense", "keyword", "hybrid")
DEPTH = 5  # results searched per question: the largest k reported


@dataclass
class CaseRanks:
    """Where the answer of one case was found, by mode: 1 is the first result, None not in the
    first DEPTH. Empty for a case without a source; `page_rank` (of its page or section) empty
    for one with neither. `problem`: why the index holds no document or place the case names
    ("" when it does)."""

    question: str
    source: str | None
    page: int | str | None
    section: str | None
    document_rank: dict[str, int | None] = field(default_factory=dict)
    page_rank: dict[str, int | None] = field(default_factory=dict)
    problem: str = ""


@dataclass
class ModeScores:
    """Shares (0-1) over the cases with a source; the page ones over the cases with a page or a
    section too."""

    hit_at_1: float | None
    hit_at_3: float | None
    hit_at_5: float | None
    mrr: float | None
    page_hit_at_1: float | None
    page_hit_at_3: float | None
    page_hit_at_5: float | None
    page_mrr: float | None


@dataclass
class RetrievalReport:
    cases: int
    scored: int  # cases with a source
    with_page: int  # of those, cases with a page or a section
    without_source: int  # counted apart: nothing to find
    unmatched: int  # cases whose document or place the index does not hold: scored, as misses
    depth: int
    embedding_model: str
    seconds: float  # encoding the questions (and loading the model, if not yet loaded) and searching
    modes: dict[str, ModeScores]
    results: list[CaseRanks]


def run_retrieval_eval(cases: list[EvalCase], problems: list[str], index: ChunkIndex, embedder: Embedder) -> RetrievalReport:
    """Search every case with a source in each mode of `MODES` and score where its document and
    its page (or section) rank; `problems` are `check_cases`' findings, one per case."""
    started = time.perf_counter()
    scored = [case for case in cases if case.source]
    vectors = iter(embedder.encode([case.question for case in scored]))
    results = []
    for case, problem in zip(cases, problems, strict=True):
        ranks = CaseRanks(case.question, case.source or None, case.page, case.section, problem=problem)
        if case.source:
            _rank_case(ranks, case, next(vectors), index)
        results.append(ranks)
    return RetrievalReport(
        cases=len(cases),
        scored=len(scored),
        with_page=sum(case.locates() for case in scored),
        without_source=len(cases) - len(scored),
        unmatched=sum(bool(problem) for problem in problems),
        depth=DEPTH,
        embedding_model=embedder.model_name,
        seconds=round(time.perf_counter() - started, 2),
        modes={mode: _scores(results, mode) for mode in MODES},
        results=results,
    )


def _rank_case(ranks: CaseRanks, case: EvalCase, vector: np.ndarray, index: ChunkIndex) -> None:
    for mode in MODES:
        hits = index.search(case.question, vector, DEPTH, mode=mode)
        ranks.document_rank[mode] = _first_rank(hits, lambda hit: matches_source(case.source, hit.source))
        if case.locates():
            ranks.page_rank[mode] = _first_rank(
                hits, lambda hit: case.in_place(hit.source, hit.page, hit.page_label, hit.section)
            )


def _first_rank(hits: list[Hit], found: Callable[[Hit], bool]) -> int | None:
    return next((rank for rank, hit in enumerate(hits, start=1) if found(hit)), None)


def _scores(results: list[CaseRanks], mode: str) -> ModeScores:
    documents = [r.document_rank[mode] for r in results if mode in r.document_rank]
    pages = [r.page_rank[mode] for r in results if mode in r.page_rank]
    return ModeScores(
        hit_at_1=_hit_at(documents, 1),
        hit_at_3=_hit_at(documents, 3),
        hit_at_5=_hit_at(documents, 5),
        mrr=_mrr(documents),
        page_hit_at_1=_hit_at(pages, 1),
        page_hit_at_3=_hit_at(pages, 3),
        page_hit_at_5=_hit_at(pages, 5),
        page_mrr=_mrr(pages),
    )


def _hit_at(ranks: list[int | None], k: int) -> float | None:
    if not ranks:
        return None
    return round(sum(rank is not None and rank <= k for rank in ranks) / len(ranks), 4)


def _mrr(ranks: list[int | None]) -> float | None:
    if not ranks:
        return None
    return round(sum(1 / rank for rank in ranks if rank is not None) / len(ranks), 4)
