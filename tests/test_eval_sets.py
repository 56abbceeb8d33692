"""The hand-written evaluation sets in bench/eval: each is a list of `plumb eval` cases whose sources
are documents of its corpus, and each place a case expects (a PDF page, an HTML section) is one
Plumbline cites, so a hit is scored where the answer is stated and not only by document."""

from pathlib import Path

import pytest

from pipeline.documents import read_document
from pipeline.evaluation.evaluate import EvalCase, load_cases
from pipeline.sections import SEPARATOR

EVAL_DIR = Path(__file__).resolve().parents[1] / "bench" / "eval"
# A set is a NAME.jsonl with its corpus listed in NAME-files.txt (escalation-messages.jsonl is not one).
SETS = sorted(path.name.removesuffix("-files.txt") for path in EVAL_DIR.glob("*-files.txt"))
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")  # Debian's python3.11-doc


def cases(name: str) -> list[EvalCase]:
    return load_cases(EVAL_DIR / f"{name}.jsonl")


def test_every_corpus_list_has_its_set() -> None:
    assert SETS == ["latex-docs", "python-docs"]


@pytest.mark.parametrize("name", SETS)
def test_every_case_parses_and_names_a_document_of_its_corpus(name: str) -> None:
    corpus = set((EVAL_DIR / f"{name}-files.txt").read_text(encoding="utf-8").split())
    loaded = cases(name)
    assert loaded and all(isinstance(case, EvalCase) for case in loaded)
    assert {case.source for case in loaded if case.source} <= corpus
    assert any(case.source is None for case in loaded), "a few questions the documents do not answer"


@pytest.mark.parametrize("name", SETS)
def test_every_case_with_a_source_names_its_place(name: str) -> None:
    assert all(case.locates() for case in cases(name) if case.source)


def test_python_docs_cases_name_a_section_and_no_page() -> None:
    """HTML has no pages: a section places the answer, and `page` (always 1) would say nothing."""
    with_source = [case for case in cases("python-docs") if case.source]
    assert len(with_source) == 54
    assert all(case.section and case.page is None for case in with_source)


@pytest.mark.skipif(not PYTHON_DOCS.is_dir(), reason="Debian's python3.11-doc is not installed")
def test_python_docs_sections_are_heading_paths_that_plumbline_cites() -> None:
    """Each expected section below a page's title is the exact heading path of a section of its
    page as Plumbline reads the page today, so a change in how HTML headings are read shows here, not
    as a silent drop in section hit@k. Only the 22 cases below a title are read (17 pages, about 3 s
    of CPU; all 33 pages take 8 s): they hold every kind of heading path, numbered and nested."""
    nested = [case for case in cases("python-docs") if case.section and SEPARATOR in case.section]
    assert len(nested) == 22
    cited: dict[str, set[str]] = {}
    for source in {case.source for case in nested if case.source}:
        pages = read_document(PYTHON_DOCS / source, False, source).pages
        cited[source] = {page.section for page in pages}
    missing = [(case.source, case.section) for case in nested if case.section not in cited[case.source or ""]]
    assert missing == []
