"""What only the embedded index has to prove: its files survive restarts, other processes and
crashes. The behaviour every index shares is in test_index_contract.py."""

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import IndexUnavailable
from pipeline.index import partitions, tantivy_store
from pipeline.index.base import Chunk
from pipeline.index.embedded import EmbeddedIndex
from pipeline.index.tantivy_store import TantivyStore

DIMENSION = 8
REPO = Path(__file__).resolve().parents[1]


def chunks(source: str, count: int, version: int = 0, seed: int = 0) -> list[Chunk]:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    return [Chunk(f"{source}#{i}", source, i + 1, f"clause {i} version{version}", v) for i, v in enumerate(vectors)]


def run_python(code: str, **kwargs) -> subprocess.Popen:
    """Another process working on the same index, as ingestion does beside the app."""
    preamble = "import numpy as np\nfrom pathlib import Path\nfrom pipeline.index.embedded import EmbeddedIndex\n"
    preamble += "from tests.test_index_embedded import chunks\n"
    return subprocess.Popen([sys.executable, "-c", preamble + textwrap.dedent(code)], cwd=REPO, text=True, **kwargs)


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def index(path):
    made = EmbeddedIndex(path, DIMENSION)
    yield made
    made.close()


def test_reopen_sees_the_same_data(index, path):
    index.replace_source("a.pdf", chunks("a.pdf", 5))
    index.replace_source("b.pdf", chunks("b.pdf", 3, seed=1))
    query = np.ones(DIMENSION, np.float32)
    before = index.search("clause 2", query, 4)
    index.close()
    reopened = EmbeddedIndex(path, DIMENSION)
    assert reopened.sources() == {"a.pdf": 5, "b.pdf": 3}
    assert reopened.search("clause 2", query, 4) == before
    reopened.close()


def test_fingerprints_survive_a_reopen(index, path):
    """Ingestion in a new process skips an unchanged file only if its fingerprint is on disk."""
    index.replace_source("a.pdf", chunks("a.pdf", 5), "f1")
    index.replace_source("b.pdf", chunks("b.pdf", 3, seed=1))
    index.replace_source("a.pdf", chunks("a.pdf", 2), "f2")
    index.close()
    reopened = EmbeddedIndex(path, DIMENSION)
    assert reopened.fingerprints() == {"a.pdf": "f2", "b.pdf": ""}
    reopened.close()


def test_reopen_keeps_page_labels_and_sections(index, path):
    labelled = [replace(c, page_label=f"x{c.page}", section=f"Part {c.page} › Notes") for c in chunks("a.pdf", 3)]
    index.replace_source("a.pdf", labelled)
    index.close()
    reopened = EmbeddedIndex(path, DIMENSION)
    got = reopened.get([c.chunk_id for c in labelled])
    assert [(c.page_label, c.section) for c in got] == [(c.page_label, c.section) for c in labelled]
    hits = reopened.search("clause", np.ones(DIMENSION, np.float32), 3)
    assert {(h.page_label, h.section) for h in hits} == {(c.page_label, c.section) for c in labelled}
    reopened.close()


def test_a_second_index_on_the_same_directory_sees_writes_without_reopening(index, path):
    other = EmbeddedIndex(path, DIMENSION)
    index.replace_source("a.pdf", chunks("a.pdf", 4))
    assert other.sources() == {"a.pdf": 4}
    assert other.delete_source("a.pdf") == 4
    other.replace_source("b.pdf", chunks("b.pdf", 2))
    assert index.sources() == {"b.pdf": 2}
    assert [h.source for h in index.search("clause", np.ones(DIMENSION, np.float32), 5)] == ["b.pdf", "b.pdf"]
    other.close()


def test_writes_from_another_process_are_seen(index, path):
    index.replace_source("a.pdf", chunks("a.pdf", 4))
    writer = run_python(f"""
        index = EmbeddedIndex(Path({str(path)!r}), {DIMENSION})
        assert index.sources() == {{"a.pdf": 4}}
        index.replace_source("b.pdf", chunks("b.pdf", 6, version=7))
        """)
    assert writer.wait(timeout=60) == 0
    assert index.sources() == {"a.pdf": 4, "b.pdf": 6}
    hits = index.search("version7", np.ones(DIMENSION, np.float32), 10, mode="keyword")
    assert {h.source for h in hits} == {"b.pdf"} and len(hits) == 6


def test_a_write_that_fails_midway_changes_nothing(index, path):
    index.replace_source("a.pdf", chunks("a.pdf", 4))
    broken = chunks("a.pdf", 4, version=1)
    broken[2] = Chunk("a.pdf#2", "a.pdf", 2**70, "a page number the store cannot hold", broken[2].vector)
    with pytest.raises(OverflowError):
        index.replace_source("a.pdf", broken)
    assert index.sources() == {"a.pdf": 4}
    index.close()
    reopened = EmbeddedIndex(path, DIMENSION)
    texts = {h.text for h in reopened.search("clause", np.ones(DIMENSION, np.float32), 10, mode="keyword")}
    assert texts == {f"clause {i} version0" for i in range(4)}
    reopened.close()


def test_a_writer_killed_midway_leaves_a_whole_version(path):
    """SIGKILL while a process replaces a large source over and over: every version it left
    behind is complete, and the lock it held does not block the next writer."""
    writer = run_python(
        f"""
        index = EmbeddedIndex(Path({str(path)!r}), {DIMENSION})
        for version in range(1000):
            index.replace_source("big.pdf", chunks("big.pdf", 300, version=version))
            print(version, flush=True)
        """,
        stdout=subprocess.PIPE,
    )
    for _ in range(3):
        writer.stdout.readline()
    writer.kill()
    writer.wait(timeout=30)
    index = EmbeddedIndex(path, DIMENSION)
    assert index.sources() == {"big.pdf": 300}
    hits = index.search("clause", np.ones(DIMENSION, np.float32), 300, mode="dense")
    assert len({h.text.split()[-1] for h in hits}) == 1
    index.replace_source("big.pdf", chunks("big.pdf", 2))
    assert index.sources() == {"big.pdf": 2}
    index.close()


def test_a_busy_writer_elsewhere_is_waited_for_then_reported(index, path, monkeypatch):
    monkeypatch.setattr(tantivy_store, "WRITE_LOCK_TIMEOUT_S", 0.3)
    with TantivyStore(path).writer(), pytest.raises(IndexUnavailable, match="Another process"):
        index.replace_source("a.pdf", chunks("a.pdf", 2))
    index.replace_source("a.pdf", chunks("a.pdf", 2))
    assert index.sources() == {"a.pdf": 2}


def test_reopening_with_another_dimension_is_refused(index, path):
    index.replace_source("a.pdf", chunks("a.pdf", 2))
    with pytest.raises(IndexUnavailable, match="8-wide vectors but the embedding model makes 16-wide"):
        EmbeddedIndex(path, 16)


def test_opened_without_a_dimension_it_takes_the_stored_one(index, path):
    """How commands that only list or delete documents open it, without the embedding model."""
    index.replace_source("a.pdf", chunks("a.pdf", 2))
    index.replace_source("b.pdf", chunks("b.pdf", 3))
    sized = EmbeddedIndex(path)
    assert sized.delete_source("a.pdf") == 2
    assert sized.sources() == {"b.pdf": 3}
    sized.replace_source("c.pdf", chunks("c.pdf", 1))
    sized.close()


def test_an_empty_index_opened_without_a_dimension_lists_and_deletes_but_takes_no_chunks(path):
    empty = EmbeddedIndex(path)
    assert empty.sources() == {} and empty.delete_source("a.pdf") == 0
    with pytest.raises(ValueError, match="without an embedding dimension"):
        empty.replace_source("a.pdf", chunks("a.pdf", 1))
    empty.close()


def test_a_damaged_directory_is_reported(path):
    path.mkdir()
    (path / "meta.json").write_text("not an index")
    with pytest.raises(IndexUnavailable, match="Cannot open the index"):
        EmbeddedIndex(path, DIMENSION)


def test_a_closed_index_says_so(index):
    index.close()
    with pytest.raises(IndexUnavailable, match="closed"):
        index.sources()
    with pytest.raises(IndexUnavailable, match="closed"):
        index.replace_source("a.pdf", chunks("a.pdf", 1))


def test_zero_vectors_are_refused(index):
    with pytest.raises(ValueError, match="zero"):
        index.search("clause", np.zeros(DIMENSION, np.float32), 3)
    bad = [Chunk("a#0", "a.pdf", 1, "text", np.full(DIMENSION, np.nan, np.float32))]
    with pytest.raises(ValueError, match="not finite"):
        index.replace_source("a.pdf", bad)
    assert index.sources() == {}


WIDE = 64


def clustered(count: int, seed: int) -> np.ndarray:
    """Unit vectors around 30 topics (neighbours on one topic have cosine ~0.5, as passages on one
    subject have with all-MiniLM-L6-v2): the shape that makes partitions worth having."""
    centres = np.random.default_rng(0).standard_normal((30, WIDE))
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, 30, count)] + rng.standard_normal((count, WIDE))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def vector_chunks(source: str, vectors: np.ndarray) -> list[Chunk]:
    return [Chunk(f"{source}#{i}", source, 1, f"passage {i}", v) for i, v in enumerate(vectors)]


@pytest.fixture
def partitioned(path, monkeypatch):
    """An index large enough to search by partitions (the threshold lowered to keep it quick)."""
    monkeypatch.setattr(partitions, "MIN_ROWS", 1_000)
    index = EmbeddedIndex(path, WIDE)
    for number in range(4):
        index.replace_source(f"doc{number}.pdf", vector_chunks(f"doc{number}.pdf", clustered(500, seed=number)))
    assert index._snapshot.partitions is not None
    yield index
    index.close()


def recall_at_10(index, vectors_by_id: dict[str, np.ndarray], queries: np.ndarray) -> float:
    ids = list(vectors_by_id)
    matrix = np.stack(list(vectors_by_id.values()))
    found = 0
    for query in queries:
        exact = {ids[i] for i in np.argsort(-(matrix @ query))[:10]}
        found += len(exact & {h.chunk_id for h in index.search("", query, 10, mode="dense")})
    return found / (10 * len(queries))


def test_partitioned_dense_search_agrees_with_exact_search(partitioned):
    vectors = {f"doc{n}.pdf#{i}": v for n in range(4) for i, v in enumerate(clustered(500, seed=n))}
    assert recall_at_10(partitioned, vectors, clustered(50, seed=99)) >= 0.95


def test_partitions_follow_replacements_and_retraining(partitioned):
    fresh = clustered(500, seed=10)
    partitioned.replace_source("doc0.pdf", vector_chunks("doc0.pdf", fresh))
    hits = partitioned.search("", fresh[7], 1, mode="dense")
    assert (hits[0].chunk_id, hits[0].similarity) == ("doc0.pdf#7", pytest.approx(1.0, abs=1e-5))
    vectors = {f"doc0.pdf#{i}": v for i, v in enumerate(fresh)}
    vectors |= {f"doc{n}.pdf#{i}": v for n in range(1, 4) for i, v in enumerate(clustered(500, seed=n))}
    assert recall_at_10(partitioned, vectors, clustered(50, seed=97)) >= 0.95
    trained = partitioned._snapshot.partitions.trained_rows
    for number in range(4, 9):  # more than doubles the rows: partitions are trained afresh
        partitioned.replace_source(f"doc{number}.pdf", vector_chunks(f"doc{number}.pdf", clustered(500, seed=number)))
    assert partitioned._snapshot.partitions.trained_rows > trained
    vectors |= {f"doc{n}.pdf#{i}": v for n in range(4, 9) for i, v in enumerate(clustered(500, seed=n))}
    assert recall_at_10(partitioned, vectors, clustered(50, seed=98)) >= 0.95
    for number in range(9):
        partitioned.delete_source(f"doc{number}.pdf")
    assert partitioned._snapshot.partitions is None
    assert partitioned.search("", fresh[7], 3, mode="dense") == []
