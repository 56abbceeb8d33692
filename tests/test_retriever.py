"""The retriever over the real embedded index: one passage is never cited twice in an answer."""

from pathlib import Path

from pipeline.documents import find_files
from pipeline.index import Hit
from pipeline.ingest import ingest_files, make_splitter
from pipeline.retriever import IndexRetriever, distinct

CURING = "Liquid-containing structures are wet cured for 14 days."
OTHERS = [
    "Curing compound may be used on slabs that hold no liquid.",
    "Formwork for walls may be removed after 24 hours.",
    "Concrete placed in cold weather is kept above 10 degrees for 7 days.",
]


def test_the_same_passage_in_two_documents_is_cited_once(tmp_path: Path, index, embedder):
    """Two copies of one file (as two collections) and a third file holding a paragraph of it: the
    retriever returns each text once, at its best rank, and still fills `k` from the next hits."""
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "curing.md").write_text("\n\n".join([CURING, *OTHERS]))
    (tmp_path / "copy.md").write_text(CURING + "\n")
    splitter = make_splitter(embedder, 20, 0)
    for collection in ("main", "mirror"):
        ingest_files(find_files([tmp_path / "spec"], collection), index, embedder, splitter)
    ingest_files(find_files([tmp_path / "copy.md"]), index, embedder, splitter)
    question = "How long are liquid-containing structures wet cured?"
    assert [hit.text for hit in index.search(question, embedder.encode_one(question), 3)].count(CURING) >= 2

    documents = IndexRetriever(index=index, embedder=embedder, k=4).invoke(question)

    texts = [document.page_content for document in documents]
    assert texts[0] == CURING and sorted(texts) == sorted([CURING, *OTHERS])


def test_distinct_keeps_the_first_of_equal_texts_and_ids():
    def hit(chunk_id: str, source: str, text: str) -> Hit:
        return Hit(chunk_id, source, 1, text, score=1.0, similarity=0.5)

    hits = [
        hit("a", "x.md", "Cure for 14 days."),
        hit("a", "x.md", "Cure for 14 days."),
        hit("b", "y.md", "Cure  for 14\ndays. "),
        hit("c", "y.md", "Strip forms after 24 hours."),
        hit("d", "z.md", "Protect from frost."),
    ]
    assert [h.chunk_id for h in distinct(hits, 2)] == ["a", "c"]
    assert [h.chunk_id for h in distinct(hits, 5)] == ["a", "c", "d"]
