"""`plumb eval`: evaluation files, document and page hits of the full evaluation, and the
retrieval-only evaluation of each search mode."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from pipeline.chain import RagChain
from pipeline.cli import app
from pipeline.errors import PlumbError
from pipeline.evaluation.evaluate import EvalCase, check_cases, load_cases, run_eval, write_report
from pipeline.index import Chunk
from pipeline.index.embedded import EmbeddedIndex
from pipeline.evaluation.retrieval import run_retrieval_eval
from pipeline.retriever import IndexRetriever
from pipeline.sections import enclosing

# A tiny index whose rankings can be worked out by hand: 3-wide vectors, four chunks.
CHUNKS = [
    ("docs/a.md", 1, "pump curve", (1.0, 0.0, 0.0)),
    ("docs/b.pdf", 2, "valve torque", (0.0, 1.0, 0.0)),
    ("docs/b.pdf", 3, "seal for the pump housing cover", (0.0, 0.0, 1.0)),
    ("docs/c.html", 1, "flange bolt", (0.6, 0.8, 0.0)),
]

# question -> (its vector, the case's source and page)
QUESTIONS = {
    "valve torque": ((0.0, 1.0, 0.0), "docs/b.pdf", 2),
    "pump": ((0.6, 0.8, 0.0), "a.md", 1),
    "seal": ((0.0, 0.6, 0.8), "b.pdf", 2),
    "flange": ((0.6, 0.8, 0.0), "d.md", 1),
    "generator capacity": ((1.0, 0.0, 0.0), None, None),
}


class FixedEmbedder:
    """Gives each question the vector chosen above, and counts the calls to `encode`."""

    model_name = "fixed-vectors"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.array([QUESTIONS[text][0] for text in texts], dtype=np.float32).reshape(len(texts), 3)


@pytest.fixture
def tiny_index(tmp_path: Path):
    index = EmbeddedIndex(tmp_path / "tiny-index", dimension=3)
    for source in dict.fromkeys(source for source, *_ in CHUNKS):
        chunks = [
            Chunk(f"{source}-{page}", source, page, text, np.array(vector, dtype=np.float32))
            for chunk_source, page, text, vector in CHUNKS
            if chunk_source == source
        ]
        index.replace_source(source, chunks)
    yield index
    index.close()


def test_retrieval_only_scores_each_mode_by_the_ranks_worked_out_by_hand(tiny_index):
    cases = [
        EvalCase(question=question, reference="-", source=source, page=page)
        for question, (_, source, page) in QUESTIONS.items()
    ]
    embedder = FixedEmbedder()
    report = run_retrieval_eval(cases, check_cases(cases, tiny_index), tiny_index, embedder)
    assert embedder.calls == 1, "the questions are encoded in one batch"
    # "a.md" and "b.pdf" name docs/a.md and docs/b.pdf by their ends; no document is called d.md.
    assert report.unmatched == 1 and [bool(r.problem) for r in report.results] == [False, False, False, True, False]
    # Ranks by hand. Dense: cosine order. Keyword: only chunks holding a question word, the shorter
    # first. Hybrid: reciprocal rank fusion of both (1/(60+rank) summed).
    # "valve torque": b.pdf p2 first everywhere.
    # "pump" (a.md): dense c.html, b.pdf p2, a.md -> 3; keyword a.md, b.pdf p3 -> 1; hybrid a.md 1/63+1/61 first.
    # "seal" (b.pdf p2): dense b.pdf p3, b.pdf p2 -> document 1, page 2; keyword only b.pdf p3 -> page
    #   not found; hybrid b.pdf p3, b.pdf p2 -> page 2.
    # "flange" (d.md): not indexed, a miss in every mode.
    assert [r.document_rank for r in report.results[:4]] == [
        {"dense": 1, "keyword": 1, "hybrid": 1},
        {"dense": 3, "keyword": 1, "hybrid": 1},
        {"dense": 1, "keyword": 1, "hybrid": 1},
        {"dense": None, "keyword": None, "hybrid": None},
    ]
    assert [r.page_rank for r in report.results[:4]] == [
        {"dense": 1, "keyword": 1, "hybrid": 1},
        {"dense": 3, "keyword": 1, "hybrid": 1},
        {"dense": 2, "keyword": None, "hybrid": 2},
        {"dense": None, "keyword": None, "hybrid": None},
    ]
    dense, keyword, hybrid = (report.modes[mode] for mode in ("dense", "keyword", "hybrid"))
    assert (dense.hit_at_1, dense.hit_at_3, dense.hit_at_5, dense.mrr) == (0.5, 0.75, 0.75, round((1 + 1 / 3 + 1) / 4, 4))
    assert (dense.page_hit_at_1, dense.page_hit_at_3, dense.page_mrr) == (0.25, 0.75, round((1 + 1 / 3 + 1 / 2) / 4, 4))
    assert (keyword.hit_at_1, keyword.mrr, keyword.page_hit_at_1, keyword.page_hit_at_5) == (0.75, 0.75, 0.5, 0.5)
    assert (hybrid.hit_at_1, hybrid.page_hit_at_1, hybrid.page_hit_at_3, hybrid.page_mrr) == (0.75, 0.5, 0.75, 0.625)


def test_a_question_without_a_source_is_counted_apart_not_as_a_miss(tiny_index):
    cases = [
        EvalCase(question="valve torque", reference="-", source="b.pdf", page=2),
        EvalCase(question="generator capacity", reference="The documents do not say."),
    ]
    report = run_retrieval_eval(cases, check_cases(cases, tiny_index), tiny_index, FixedEmbedder())
    assert (report.cases, report.scored, report.with_page, report.without_source, report.unmatched) == (2, 1, 1, 1, 0)
    assert report.modes["dense"].hit_at_1 == 1.0 and report.modes["hybrid"].page_hit_at_1 == 1.0
    assert report.results[1].source is None and report.results[1].document_rank == {}


def test_a_case_with_a_source_but_no_page_scores_the_document_only(tiny_index):
    cases = [EvalCase(question="pump", reference="-", source="a.md")]
    report = run_retrieval_eval(cases, check_cases(cases, tiny_index), tiny_index, FixedEmbedder())
    assert report.with_page == 0 and report.modes["keyword"].hit_at_1 == 1.0
    assert report.modes["keyword"].page_hit_at_1 is None and report.results[0].page_rank == {}


# Chunks cited by section (Markdown) and by printed page label (a PDF whose page 5 is printed "1").
LOCATED = [  # source, page, page label, section, text, vector
    ("docs/spec.md", 1, "", "Design › Loads › Wind", "gust speed", (1.0, 0.0, 0.0)),
    ("docs/spec.md", 1, "", "Design › Curing", "curing time", (0.6, 0.8, 0.0)),
    ("docs/paper.pdf", 5, "1", "", "seal housing", (0.0, 0.0, 1.0)),
    ("docs/paper.pdf", 6, "2", "", "seal cover", (0.0, 0.6, 0.8)),
]
LOCATED_QUESTIONS = {"wind": (1.0, 0.0, 0.0), "curing": (1.0, 0.0, 0.0), "seal": (0.0, 0.0, 1.0)}


class LocatedEmbedder:
    model_name = "fixed-vectors"

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.array([LOCATED_QUESTIONS[text] for text in texts], dtype=np.float32).reshape(len(texts), 3)


def test_sections_and_printed_page_labels_are_scored_and_a_place_missed_in_the_right_document_is_a_miss(tmp_path):
    index = EmbeddedIndex(tmp_path / "located", dimension=3)
    for source in ("docs/spec.md", "docs/paper.pdf"):
        index.replace_source(source, [
            Chunk(f"{source}-{n}", source, page, text, np.array(vector, np.float32), label, section)
            for n, (chunk_source, page, label, section, text, vector) in enumerate(LOCATED)
            if chunk_source == source
        ])
    cases = [
        EvalCase(question="wind", reference="-", source="spec.md", section="Loads"),  # within Loads: rank 1
        EvalCase(question="curing", reference="-", source="spec.md", section="Design › Curing"),  # Wind first: rank 2
        EvalCase(question="seal", reference="-", source="paper.pdf", page="1"),  # printed "1": physical page 5
        EvalCase(question="seal", reference="-", source="paper.pdf", page=1),  # physical page 1: not retrieved
        EvalCase(question="seal", reference="-", source="paper.pdf", page=6),  # second result
    ]
    report = run_retrieval_eval(cases, check_cases(cases, index), index, LocatedEmbedder())
    index.close()
    assert report.unmatched == 1 and report.results[3].problem == 'no passage of "paper.pdf" lies on page 1'
    assert [r.document_rank["dense"] for r in report.results] == [1, 1, 1, 1, 1]
    assert [r.page_rank["dense"] for r in report.results] == [1, 2, 1, None, 2]
    assert report.with_page == 5 and report.modes["dense"].page_hit_at_1 == 0.4


def test_printed_page_labels_match_whatever_their_letter_case(tmp_path):
    index = EmbeddedIndex(tmp_path / "labelled", dimension=3)
    index.replace_source("docs/paper.pdf", [
        Chunk("preface", "docs/paper.pdf", 4, "gust speed", np.array((1.0, 0.0, 0.0), np.float32), "iv"),
        Chunk("body", "docs/paper.pdf", 5, "seal housing", np.array((0.0, 0.0, 1.0), np.float32), "1"),
    ])
    cases = [
        EvalCase(question="wind", reference="-", source="paper.pdf", page="IV"),  # printed "iv"
        EvalCase(question="wind", reference="-", source="paper.pdf", page="v"),  # no page is printed "v"
    ]
    problems = check_cases(cases, index)
    report = run_retrieval_eval(cases, problems, index, LocatedEmbedder())
    index.close()
    assert problems == ["", 'no page of "paper.pdf" is printed "v"']
    assert [r.page_rank["dense"] for r in report.results] == [1, None]


@pytest.mark.parametrize(
    ("section", "expected", "within"),
    [
        ("Design › Loads › Wind", "Design › Loads › Wind", True),
        ("Design › Loads › Wind", "Loads › Wind", True),
        ("Design › Loads › Wind", "Loads", True),
        ("Design › Loads › Wind", "loads › WIND", True),  # headings match in any letter case
        ("Design › Loads › Wind", "Design › Wind", False),
        ("Design › Loads", "Loads › Wind", False),
        ("", "Loads", False),
    ],
)
def test_a_passage_lies_within_a_section_when_its_path_holds_that_heading_path(section, expected, within):
    case = EvalCase(question="q", reference="-", source="spec.md", section=expected)
    assert case.in_place("docs/spec.md", 1, "", section) is within
    assert (expected.casefold() in enclosing(section)) is within, "the check before scoring agrees with scoring"
    assert not case.in_place("docs/other.md", 1, "", section)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("question: what?", "questions.jsonl, line 2: is not JSON; write one JSON object per line"),
        ('{"reference": "r"}', "questions.jsonl, line 2: 'question' is missing"),
        ('{"question": "", "reference": "r"}', "questions.jsonl, line 2: 'question' is wrong"),
        ('["q", "r"]', "questions.jsonl, line 2: is not a JSON object with 'question' and 'reference'"),
        ('{"question": "q", "reference": "r", "page": 0}', "questions.jsonl, line 2: 'page' is wrong"),
        ('{"question": "q", "reference": "r", "page": ""}', "questions.jsonl, line 2: 'page' is wrong"),
        ('{"question": "q", "reference": "r", "section": ""}', "questions.jsonl, line 2: 'section' is wrong"),
        ('{"question": "q", "reference": "r", "page": 3}', "questions.jsonl, line 2: 'page' is given without 'source'"),
        ('{"question": "q", "reference": "r", "page": "iv", "source": ""}', "line 2: 'page' is given without 'source'"),
        ('{"question": "q", "reference": "r", "section": "3.2"}', "line 2: 'section' is given without 'source'"),
    ],
)
def test_a_bad_line_is_named_in_one_sentence(tmp_path: Path, line: str, message: str):
    path = tmp_path / "questions.jsonl"
    path.write_text('{"question": "q", "reference": "r"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(PlumbError) as raised:
        load_cases(path)
    assert message in str(raised.value) and str(raised.value).count("\n") == 0


def test_cases_carry_an_optional_section(tmp_path: Path):
    path = tmp_path / "questions.jsonl"
    row = {"question": "How long is the curing?", "reference": "7 days.", "source": "spec.md", "page": 1, "section": "3.2 Curing"}
    path.write_text(json.dumps(row) + "\n\n", encoding="utf-8")
    assert load_cases(path) == [EvalCase(**row)]


def test_full_eval_reports_page_hits_as_well_as_document_hits(sample_index, embedder):
    llm = GenericFakeChatModel(messages=itertools.repeat(AIMessage(content="The basic design wind speed is 120 mph.")))
    retriever = IndexRetriever(index=sample_index, embedder=embedder, k=1)
    chain = RagChain(llm, retriever, model_id="fake", min_relevance=0.3)
    question = "What is the basic design wind speed?"
    curing = "How long must liquid-containing structures be wet cured?"
    cases = [
        EvalCase(question=question, reference="120 mph.", source="design-criteria.pdf", page=3),
        EvalCase(question=question, reference="120 mph.", source="design-criteria.pdf", page=1),
        EvalCase(question=question, reference="120 mph.", source="design-criteria.pdf"),
        EvalCase(question=curing, reference="14 days.", source="concrete-spec.md", section="3.2 Curing"),
        EvalCase(question=curing, reference="14 days.", source="concrete-spec.md", section="3.3 Leakage Testing"),
    ]
    report = run_eval(cases, check_cases(cases, sample_index), chain, embedder)
    assert report.unmatched == 0
    assert [(r.source_hit, r.page_hit) for r in report.results] == [
        (True, True),
        (True, False),
        (True, None),
        (True, True),
        (True, False),  # the right document, another section
    ]
    assert (report.hit_at_k, report.page_hit_at_k) == (1.0, 0.5)


def test_full_eval_scores_a_place_its_document_lacks_as_a_miss_and_counts_it_unmatched(sample_index, embedder, tmp_path):
    llm = GenericFakeChatModel(messages=itertools.repeat(AIMessage(content="They are wet cured for 14 days.")))
    chain = RagChain(llm, IndexRetriever(index=sample_index, embedder=embedder, k=1), model_id="fake", min_relevance=0.3)
    curing = "How long must liquid-containing structures be wet cured?"
    cases = [
        EvalCase(question=curing, reference="14 days.", source="concrete-spec.md", section="3.2 Curing"),
        EvalCase(question=curing, reference="14 days.", source="concrete-spec.md", section="No Such Section"),
        EvalCase(question=curing, reference="14 days.", source="design-criteria.pdf", page=99),
    ]
    report = run_eval(cases, check_cases(cases, sample_index), chain, embedder)
    assert [r.problem for r in report.results] == [
        "",
        'no passage of "concrete-spec.md" lies within the section "No Such Section"',
        'no passage of "design-criteria.pdf" lies on page 99',
    ]
    assert [r.page_hit for r in report.results] == [True, False, False] and report.unmatched == 2
    write_report(report, tmp_path / "report.json")
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["unmatched"] == 2 and written["results"][1]["problem"].startswith("no passage")


def test_cli_reports_a_source_that_names_no_indexed_document_before_scoring_it_a_miss(sample_index, tmp_path: Path):
    wind = "What is the basic design wind speed?"
    review = "How many days does the Engineer have to review a submittal?"
    rows = [
        {"question": wind, "reference": "120 mph.", "source": "design-criteria.pdf", "page": 3},
        {"question": review, "reference": "14 days.", "source": "submittal-procedure.html", "section": "1.1 Review Time"},
    ]
    (tmp_path / "typo.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "--retrieval-only", "typo.jsonl", "--out", "report.json"])
    assert result.exit_code == 0, result.output
    problem = 'source "submittal-procedure.html" names no indexed document (`plumb index sources` lists them)'
    assert f'Unmatched, scored as a miss: "{review}": {problem}\n' in result.output
    assert result.output.count("Unmatched") == 1 and "(2 with a page or section, 1 unmatched)" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["unmatched"] == 1 and [r["problem"] for r in report["results"]] == ["", problem]
    assert report["results"][1]["document_rank"] == {"dense": None, "keyword": None, "hybrid": None}
    assert report["modes"]["hybrid"]["hit_at_5"] == 0.5


def test_cli_retrieval_only_on_the_samples_writes_the_report(sample_index, tmp_path: Path):
    result = CliRunner().invoke(app, ["eval", "--retrieval-only", "samples/eval.jsonl", "--out", "report.json"])
    assert result.exit_code == 0, result.output
    assert "10 questions with a source (10 with a page or section, 0 unmatched), 1 without" in result.output
    assert "Unmatched" not in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["scored"], report["without_source"], report["unmatched"]) == (10, 1, 0)
    assert set(report["modes"]) == {"dense", "keyword", "hybrid"}
    assert report["modes"]["hybrid"]["hit_at_5"] == 1.0
    assert report["modes"]["hybrid"]["page_hit_at_5"] >= 0.9


def test_cli_retrieval_only_refuses_an_empty_index_and_a_bad_file(tmp_path: Path):
    (tmp_path / "eval.jsonl").write_text('{"question": "q", "reference": "r"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "--retrieval-only", "eval.jsonl"])
    assert result.exit_code == 1 and "The index is empty" in result.output
    (tmp_path / "bad.jsonl").write_text("not json\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "--retrieval-only", "bad.jsonl"])
    assert result.exit_code == 1 and "bad.jsonl, line 1: is not JSON" in result.output
