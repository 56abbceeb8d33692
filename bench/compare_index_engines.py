"""Measure candidate engines for the embedded index on the same synthetic corpus.

    .venv/bin/python bench/compare_index_engines.py                 # 10k and 100k chunks
    .venv/bin/python bench/compare_index_engines.py --sizes 10000 --engines numpy+tantivy lancedb

For each engine: build time, reopen time (a restart), replacing one 400-chunk document on disk,
dense p50/p95 and recall@10 against exact search, keyword p50/p95 and hybrid (reciprocal rank
fusion of dense and keyword, with the cosine similarity of every hit) p50/p95. Engines that pair a
vector library with a keyword library fuse in Python; LanceDB fuses with its own RRF reranker.
The last engine is the one chosen, Plumbline's own `EmbeddedIndex`, ingested document by document.
"""

import argparse
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from synthetic_corpus import DIMENSION, Corpus, exact_top_k, make_corpus, make_queries

K = 10
CANDIDATES = 50  # hits taken from each side before fusion
RRF_K = 60
SOURCE_SIZE = 400  # chunks per document: a 200-page specification


def english_stopwords() -> set[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return set(STOPWORDS_EN)


def fuse(dense: list[int], keyword: list[int], k: int) -> list[int]:
    scores: dict[int, float] = {}
    for ranking in (dense, keyword):
        for rank, row in enumerate(ranking):
            scores[row] = scores.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores, key=scores.__getitem__, reverse=True)[:k]


class NumpyVectors:
    """Exact search: one matrix-vector product over every vector."""

    name = "numpy exact"

    def build(self, vectors: np.ndarray, directory: Path) -> None:
        self.vectors = vectors.copy()

    def search(self, query_vector: np.ndarray, k: int) -> list[int]:
        scores = self.vectors @ query_vector
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])].tolist()

    def similarity(self, rows: list[int], query_vector: np.ndarray) -> np.ndarray:
        return self.vectors[rows] @ query_vector

    def replace(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self.vectors[rows] = vectors

    def reopen(self, directory: Path) -> None:
        """Vectors live in the keyword store's rows and are read back from there."""


class UsearchVectors:
    name = "usearch HNSW"

    def build(self, vectors: np.ndarray, directory: Path) -> None:
        from usearch.index import Index

        self.path = directory / "vectors.usearch"
        self.index = Index(
            ndim=DIMENSION, metric="ip", dtype="f32", connectivity=16, expansion_add=128, expansion_search=64
        )
        self.index.add(np.arange(len(vectors)), vectors)
        self.index.save(str(self.path))

    def search(self, query_vector: np.ndarray, k: int) -> list[int]:
        return self.index.search(query_vector, k).keys.tolist()

    def similarity(self, rows: list[int], query_vector: np.ndarray) -> np.ndarray:
        return self.index.get(np.array(rows, dtype=np.uint64)) @ query_vector

    def replace(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self.index.remove(rows)
        self.index.add(rows, vectors)
        self.index.save(str(self.path))

    def reopen(self, directory: Path) -> None:
        self.index.load(str(self.path))


class FaissVectors:
    name = "FAISS HNSW"

    def build(self, vectors: np.ndarray, directory: Path) -> None:
        import faiss

        self.path = directory / "vectors.faiss"
        self.vectors = vectors
        self.index = faiss.IndexHNSWFlat(DIMENSION, 32, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 80
        self.index.add(vectors)
        self.index.hnsw.efSearch = 64
        faiss.write_index(self.index, str(self.path))

    def search(self, query_vector: np.ndarray, k: int) -> list[int]:
        return self.index.search(query_vector[None], k)[1][0].tolist()

    def similarity(self, rows: list[int], query_vector: np.ndarray) -> np.ndarray:
        return np.stack([self.index.reconstruct(row) for row in rows]) @ query_vector

    def replace(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """HNSW in FAISS cannot remove: the whole graph is rebuilt."""
        self.vectors[rows] = vectors
        self.build(self.vectors, self.path.parent)

    def reopen(self, directory: Path) -> None:
        import faiss

        self.index = faiss.read_index(str(self.path))
        self.index.hnsw.efSearch = 64


class Fts5Keywords:
    """SQLite FTS5 with its bm25(); vectors ride along as blobs so SQLite is the one store."""

    name = "SQLite FTS5"

    def build(self, corpus: Corpus, directory: Path) -> None:
        self.path = directory / "chunks.sqlite"
        self.stopwords = english_stopwords()
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("CREATE TABLE chunks(rowid INTEGER PRIMARY KEY, source TEXT, vector BLOB)")
        self.db.execute("CREATE INDEX chunks_source ON chunks(source)")
        self.db.execute("CREATE VIRTUAL TABLE chunk_text USING fts5(text)")
        with self.db:
            self.db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?)",
                ((i, s, v.tobytes()) for i, (s, v) in enumerate(zip(corpus.source_of, corpus.vectors))),
            )
            self.db.executemany("INSERT INTO chunk_text(rowid, text) VALUES (?, ?)", enumerate(corpus.texts))

    def search(self, query: str, k: int) -> list[int]:
        words = [w for w in re.findall(r"\w+", query.lower()) if w not in self.stopwords]
        match = " OR ".join(f'"{w}"' for w in words)
        rows = self.db.execute(
            "SELECT rowid FROM chunk_text WHERE chunk_text MATCH ? ORDER BY rank LIMIT ?", (match, k)
        )
        return [row for (row,) in rows]

    def replace(self, source: str, rows: np.ndarray, corpus: Corpus) -> None:
        with self.db:
            old = [r for (r,) in self.db.execute("SELECT rowid FROM chunks WHERE source = ?", (source,))]
            self.db.executemany("DELETE FROM chunk_text WHERE rowid = ?", ((r,) for r in old))
            self.db.execute("DELETE FROM chunks WHERE source = ?", (source,))
            self.db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?)", ((int(r), source, corpus.vectors[r].tobytes()) for r in rows)
            )
            self.db.executemany(
                "INSERT INTO chunk_text(rowid, text) VALUES (?, ?)", ((int(r), corpus.texts[r]) for r in rows)
            )

    def reopen(self, directory: Path) -> np.ndarray:
        self.db.close()
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        blobs = self.db.execute("SELECT vector FROM chunks ORDER BY rowid").fetchall()
        return np.frombuffer(b"".join(b for (b,) in blobs), dtype=np.float32).reshape(-1, DIMENSION).copy()


class TantivyKeywords:
    """Tantivy (Lucene's design in Rust: BM25 with block-max WAND); vectors are stored bytes."""

    name = "tantivy"

    def build(self, corpus: Corpus, directory: Path) -> None:
        import tantivy

        self.tantivy = tantivy
        self.path = directory / "tantivy"
        self.path.mkdir()
        builder = tantivy.SchemaBuilder()
        builder.add_unsigned_field("row", stored=True, fast=True, indexed=True)
        builder.add_text_field("source", stored=True, tokenizer_name="raw")
        builder.add_text_field("text", stored=True, tokenizer_name="en_text")
        builder.add_bytes_field("vector", stored=True)
        self.schema = builder.build()
        self.index = self._open()
        writer = self.index.writer(heap_size=256_000_000, num_threads=1)
        for i, (text, source) in enumerate(zip(corpus.texts, corpus.source_of)):
            writer.add_document(self._doc(i, source, text, corpus.vectors[i]))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()

    def _open(self):
        tantivy = self.tantivy
        index = tantivy.Index(self.schema, path=str(self.path))
        analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stopword("english"))
            .build()
        )
        index.register_tokenizer("en_text", analyzer)
        self.analyzer = analyzer
        return index

    def _doc(self, row: int, source: str, text: str, vector: np.ndarray):
        doc = self.tantivy.Document()
        doc.add_unsigned("row", row)
        doc.add_text("source", source)
        doc.add_text("text", text)
        doc.add_bytes("vector", vector.tobytes())
        return doc

    def search(self, query: str, k: int) -> list[int]:
        tantivy = self.tantivy
        terms = [
            (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "text", t))
            for t in self.analyzer.analyze(query)
        ]
        searcher = self.index.searcher()
        hits = searcher.search(tantivy.Query.boolean_query(terms), k, count=False).hits
        return searcher.fast_field_values("row", [address for _, address in hits])

    def replace(self, source: str, rows: np.ndarray, corpus: Corpus) -> None:
        writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        writer.delete_documents_by_term("source", source)
        for r in rows:
            writer.add_document(self._doc(int(r), source, corpus.texts[r], corpus.vectors[r]))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()

    def reopen(self, directory: Path) -> np.ndarray:
        self.index = self._open()
        searcher = self.index.searcher()
        hits = searcher.search(self.tantivy.Query.all_query(), searcher.num_docs, count=False).hits
        addresses = [address for _, address in hits]
        rows = np.array(searcher.fast_field_values("row", addresses))
        vectors = np.stack([np.frombuffer(searcher.doc(a)["vector"][0], dtype=np.float32) for a in addresses])
        return vectors[np.argsort(rows)]


class Bm25sKeywords:
    """bm25s: BM25 precomputed into a sparse matrix; it has no incremental update."""

    name = "bm25s"

    def build(self, corpus: Corpus, directory: Path) -> None:
        import bm25s

        self.bm25s = bm25s
        self.path = directory / "bm25s"
        self.texts = list(corpus.texts)
        self.retriever = bm25s.BM25()
        self.retriever.index(bm25s.tokenize(self.texts, stopwords="en", show_progress=False), show_progress=False)
        self.retriever.save(str(self.path))

    def search(self, query: str, k: int) -> list[int]:
        tokens = self.bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        rows, _ = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return rows[0].tolist()

    def replace(self, source: str, rows: np.ndarray, corpus: Corpus) -> None:
        """No incremental update: the whole index is rebuilt."""
        for r in rows:
            self.texts[r] = corpus.texts[r]
        self.build(Corpus(corpus.vectors, self.texts, corpus.source_of), self.path.parent)

    def reopen(self, directory: Path) -> None:
        self.retriever = self.bm25s.BM25.load(str(self.path))


class Paired:
    """A vector library and a keyword library side by side, fused in Python."""

    def __init__(self, vectors, keywords):
        self.vectors, self.keywords = vectors, keywords
        self.name = f"{vectors.name} + {keywords.name}"

    def build(self, corpus: Corpus, directory: Path) -> None:
        self.keywords.build(corpus, directory)
        self.vectors.build(corpus.vectors, directory)

    def dense(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        rows = self.vectors.search(query_vector, k)
        self.vectors.similarity(rows, query_vector)
        return rows

    def keyword(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        rows = self.keywords.search(query, k)
        self.vectors.similarity(rows, query_vector)
        return rows

    def hybrid(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        rows = fuse(self.vectors.search(query_vector, CANDIDATES), self.keywords.search(query, CANDIDATES), k)
        self.vectors.similarity(rows, query_vector)
        return rows

    def replace(self, source: str, rows: np.ndarray, corpus: Corpus) -> None:
        self.keywords.replace(source, rows, corpus)
        self.vectors.replace(rows, corpus.vectors[rows])

    def reopen(self, directory: Path) -> None:
        vectors = self.keywords.reopen(directory)
        if isinstance(self.vectors, NumpyVectors):
            self.vectors.vectors = vectors
        else:
            self.vectors.reopen(directory)


class LanceEngine:
    """LanceDB: one versioned table, its native BM25 index, flat (exact) vector scan, RRF reranker."""

    name = "LanceDB (flat vectors, native FTS)"

    def build(self, corpus: Corpus, directory: Path) -> None:
        import lancedb
        import pyarrow as pa
        from lancedb.index import FTS
        from lancedb.rerankers import RRFReranker

        self.pa, self.lancedb, self.path = pa, lancedb, directory / "lance"
        self.reranker = RRFReranker(K=RRF_K)
        self.table = lancedb.connect(self.path).create_table("chunks", self._rows(corpus, np.arange(len(corpus))))
        self.table.create_index("text", config=FTS())

    def _rows(self, corpus: Corpus, rows: np.ndarray):
        pa = self.pa
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(corpus.vectors[rows].ravel()), DIMENSION)
        return pa.table(
            {
                "row": pa.array(rows, pa.int64()),
                "source": [corpus.source_of[r] for r in rows],
                "text": [corpus.texts[r] for r in rows],
                "vector": vectors,
            }
        )

    @staticmethod
    def _rows_and_similarity(table, query_vector: np.ndarray) -> list[int]:
        vectors = np.asarray(table["vector"].combine_chunks().flatten()).reshape(-1, DIMENSION)
        vectors @ query_vector
        return table["row"].to_pylist()

    def dense(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        result = (
            self.table.search(query_vector)
            .distance_type("dot")
            .limit(k)
            .select(["row", "vector", "_distance"])
            .to_arrow()
        )
        return result["row"].to_pylist()

    def keyword(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        result = self.table.search(query, query_type="fts").limit(k).select(["row", "vector", "_score"]).to_arrow()
        return self._rows_and_similarity(result, query_vector)

    def hybrid(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        result = (
            self.table.search(query_type="hybrid")
            .vector(query_vector)
            .text(query)
            .distance_type("dot")
            .rerank(self.reranker)
            .limit(k)
            .select(["row", "vector"])
            .to_arrow()
        )
        return self._rows_and_similarity(result, query_vector)

    def replace(self, source: str, rows: np.ndarray, corpus: Corpus) -> None:
        self.table.delete(f"source = '{source}'")
        self.table.add(self._rows(corpus, rows))

    def reopen(self, directory: Path) -> None:
        self.table = self.lancedb.connect(self.path).open_table("chunks")


class EmbeddedEngine:
    """What was built from these figures: tantivy plus IVF partitions over an in-memory matrix."""

    name = "EmbeddedIndex: tantivy + IVF"

    def build(self, corpus: Corpus, directory: Path) -> None:
        from pipeline.index.embedded import EmbeddedIndex

        self.path = directory / "embedded"
        self.index = EmbeddedIndex(self.path, DIMENSION)
        rows_of: dict[str, list[int]] = {}
        for row, source in enumerate(corpus.source_of):
            rows_of.setdefault(source, []).append(row)
        for source, rows in rows_of.items():
            self.replace(source, np.array(rows), corpus)

    def _rows(self, hits) -> list[int]:
        return [int(hit.chunk_id) for hit in hits]

    def dense(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        return self._rows(self.index.search(query, query_vector, k, mode="dense"))

    def keyword(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        return self._rows(self.index.search(query, query_vector, k, mode="keyword"))

    def hybrid(self, query: str, query_vector: np.ndarray, k: int) -> list[int]:
        return self._rows(self.index.search(query, query_vector, k, mode="hybrid"))

    def replace(self, source: str, rows: np.ndarray, corpus: Corpus) -> None:
        from pipeline.index.base import Chunk

        chunks = [Chunk(str(r), source, 1, corpus.texts[r], corpus.vectors[r]) for r in rows]
        self.index.replace_source(source, chunks)

    def reopen(self, directory: Path) -> None:
        from pipeline.index.embedded import EmbeddedIndex

        self.index.close()
        self.index = EmbeddedIndex(self.path, DIMENSION)


ENGINES: dict[str, Callable[[], object]] = {
    "numpy+fts5": lambda: Paired(NumpyVectors(), Fts5Keywords()),
    "usearch+fts5": lambda: Paired(UsearchVectors(), Fts5Keywords()),
    "faiss+bm25s": lambda: Paired(FaissVectors(), Bm25sKeywords()),
    "numpy+tantivy": lambda: Paired(NumpyVectors(), TantivyKeywords()),
    "usearch+tantivy": lambda: Paired(UsearchVectors(), TantivyKeywords()),
    "lancedb": LanceEngine,
    "embedded": EmbeddedEngine,
}
NOTES = {
    "numpy+fts5": "SQLite transactions; vectors as blobs",
    "usearch+fts5": "2 stores: index file rewritten on save",
    "faiss+bm25s": "no delete: full rebuild per update",
    "numpy+tantivy": "one store, atomic commits",
    "usearch+tantivy": "2 stores: index file rewritten on save",
    "lancedb": "one store, versioned commits",
    "embedded": "one store, atomic commits",
}


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def latencies_ms(search, queries: list[str], vectors: np.ndarray) -> tuple[float, float]:
    for query, vector in zip(queries[:10], vectors[:10]):
        search(query, vector, K)
    times = [timed(search, q, v, K) * 1000 for q, v in zip(queries, vectors)]
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def measure(name: str, corpus: Corpus, queries: list[str], query_vectors: np.ndarray, truth) -> dict:
    engine = ENGINES[name]()
    directory = Path(tempfile.mkdtemp(prefix="plumb-bench-"))
    try:
        build_s = timed(engine.build, corpus, directory)
        reopen_s = timed(engine.reopen, directory)
        dense_rows = [engine.dense(q, v, K) for q, v in zip(queries, query_vectors)]
        recall = np.mean([len(truth[i] & set(rows)) / K for i, rows in enumerate(dense_rows)])
        source = corpus.source_of[0]
        rows = np.array([i for i, s in enumerate(corpus.source_of[: SOURCE_SIZE * 2]) if s == source])
        replace_ms = timed(engine.replace, source, rows, corpus) * 1000
        return {
            "engine": engine.name,
            "build s": build_s,
            "reopen s": reopen_s,
            "replace doc ms": replace_ms,
            "dense p50/p95": latencies_ms(engine.dense, queries, query_vectors),
            "recall@10": recall,
            "keyword p50/p95": latencies_ms(engine.keyword, queries, query_vectors),
            "hybrid p50/p95": latencies_ms(engine.hybrid, queries, query_vectors),
            "persistence": NOTES[name],
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def cell(value) -> str:
    if isinstance(value, tuple):
        return "/".join(f"{v:.2f}" for v in value)
    if isinstance(value, float):
        return f"{value:.3f}" if value < 1 else f"{value:.1f}"
    return str(value)


def print_table(size: int, results: list[dict]) -> None:
    columns = list(results[0])
    widths = [max(len(c), *(len(cell(r[c])) for r in results)) for c in columns]
    print(f"\n{size} chunks (latencies in ms)")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for result in results:
        print("  ".join(cell(result[c]).ljust(w) for c, w in zip(columns, widths)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    for size in args.sizes:
        corpus = make_corpus(size, chunks_per_source=SOURCE_SIZE)
        queries, query_vectors = make_queries(corpus, args.queries)
        truth = exact_top_k(corpus.vectors, query_vectors, K)
        results = []
        for name in args.engines:
            results.append(measure(name, corpus, queries, query_vectors, truth))
            print(f"  measured {name}", flush=True)
        print_table(size, results)


if __name__ == "__main__":
    main()
