"""Plumbline's default index: on disk in one directory, no server.

How it is built, and why. Figures from `bench/compare_index_engines.py` at 100k synthetic chunks
(384-wide vectors, 400-chunk documents) on the 2-core development machine, latencies p50/p95 in ms;
they vary several-fold with other work on the machine, the ranking does not:

    engine                        dense      recall@10  keyword     hybrid       replace a document
    numpy exact + SQLite FTS5     15.9/23.9  1.0        16.3/47.6   47.9/106.8   147 ms
    usearch HNSW + SQLite FTS5    0.4/0.6    0.993      16.2/44.7   17.0/45.7    396 ms, build 59 s
    FAISS HNSW + bm25s            0.3/0.4    1.0        3.0/4.0     3.5/4.5      22.9 s (full rebuild)
    numpy exact + tantivy         5.2/6.8    1.0        0.2/0.4     5.5/5.9      47 ms
    usearch HNSW + tantivy        0.5/0.7    0.988      0.2/0.4     0.8/1.3      398 ms, build 31 s
    LanceDB (native FTS)          186/231    1.0        16.7/26.4   186/222      18 ms
    this index (tantivy + IVF)    6.7/7.9    1.0        0.3/0.8     7.4/8.6      256 ms

- Keyword search decides the text side. SQLite FTS5 scores every document holding any query word,
  so ordinary questions take 15-50 ms; bm25s cannot add or delete a document (every ingest rebuilds
  everything); LanceDB's searches cost tens to hundreds of ms through its query planner. Tantivy
  (Lucene's design in Rust: BM25 with block-max WAND) answers in under a millisecond and deletes a
  source in the same atomic commit that adds its new chunks.
- Everything lives in that one tantivy index (text, metadata, vector bytes), so a write is one
  commit: a failure before it leaves the previous commit as it was, and tantivy's lock file keeps
  writers in different processes from interleaving. HNSW graphs (usearch, FAISS) are faster, but
  they would be a second file to keep consistent with the text, rewritten at every save and
  rebuilt (30-60 s at 100k) whenever it and the text disagree.
- Vectors are read into memory at open (about 3 s at 100k chunks) and searched with numpy:
  exactly below 20k chunks, above that over the nearest k-means partitions (`partitions.py`), which
  keeps dense search near 5 ms when the machine is busy, where an exact scan takes 16-45 ms.

Threads: searches read an immutable `Snapshot` (vectors, partitions and the tantivy searcher of one
commit); a write builds the next snapshot under a lock and swaps it in. A commit by another process
is noticed by comparing the commit number on disk at each search, and the snapshot is reloaded.
"""

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import IndexUnavailable
from pipeline.index.base import Chunk, Hit, Places, SearchMode, SourceFilter, checked_chunks, source_names, unit_vector
from pipeline.index.fusion import reciprocal_rank_fusion
from pipeline.index.snapshot import Snapshot
from pipeline.index.tantivy_store import TantivyStore

HYBRID_CANDIDATES = 50  # hits taken from each ranking before fusion
SEARCH_MODES = ("dense", "keyword", "hybrid")


class EmbeddedIndex:
    """A `ChunkIndex` kept in the directory `path`, for `dimension`-wide embeddings.

    `dimension=None` takes the width of the vectors it holds, so commands that only list or delete
    documents need not load the embedding model to learn it; an empty index opened so has no width
    and refuses chunks and searches (ValueError)."""

    def __init__(self, path: Path, dimension: int | None = None):
        if dimension is not None and dimension <= 0:
            raise ValueError(f"The embedding dimension must be positive, not {dimension}.")
        self._dimension = dimension
        self._store: TantivyStore | None = TantivyStore(Path(path))
        self._lock = threading.Lock()
        self._snapshot = self._load(self._store)

    def replace_source(self, source: str, chunks: Sequence[Chunk], fingerprint: str = "") -> None:
        self.replace_sources({source: chunks}, {source: fingerprint})

    def replace_sources(
        self, documents: Mapping[str, Sequence[Chunk]], fingerprints: Mapping[str, str] | None = None
    ) -> None:
        checked = {source: checked_chunks(source, chunks, self._width()) for source, chunks in documents.items()}
        self._write(checked, fingerprints or {})

    def delete_source(self, source: str) -> int:
        return self._write({source: []}, {})[source]

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int,
        mode: SearchMode = "hybrid",
        source: SourceFilter = None,
    ) -> list[Hit]:
        if mode not in SEARCH_MODES:
            raise ValueError(f"Unknown search mode {mode!r}: use one of {', '.join(SEARCH_MODES)}.")
        if k <= 0:
            raise ValueError(f"k must be a positive number of results, not {k}.")
        vector = unit_vector(query_vector, self._width(), "The query vector")
        snapshot = self._current()
        source = source_names(source)
        match mode:
            case "dense":
                ranked = snapshot.nearest(vector, k, source)
            case "keyword":
                ranked = self._keyword(snapshot, query, k, source)
            case "hybrid":
                candidates = max(k, HYBRID_CANDIDATES)
                dense = [row for row, _ in snapshot.nearest(vector, candidates, source)]
                keyword = [row for row, _ in self._keyword(snapshot, query, candidates, source)]
                ranked = reciprocal_rank_fusion([dense, keyword], k)
        return [snapshot.hit(row, score, vector) for row, score in ranked]

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        snapshot = self._current()
        found = self._open_store().find_ids(snapshot.searcher, chunk_ids)
        rows = {snapshot.chunk_ids[row]: row for row in (snapshot.row(key, position) for key, position in found)}
        return [snapshot.chunk(rows[chunk_id]) for chunk_id in chunk_ids if chunk_id in rows]

    def sources(self) -> dict[str, int]:
        return {block.source: block.count for block in self._current().blocks.values()}

    def places(self, sources: Sequence[str]) -> dict[str, Places]:
        snapshot = self._current()
        return {source: places for source in sources if (places := snapshot.places(source))}

    def fingerprints(self) -> dict[str, str]:
        return {block.source: block.fingerprint for block in self._current().blocks.values()}

    def close(self) -> None:
        with self._lock:
            self._store = None

    def _width(self) -> int:
        if self._dimension is None:
            raise ValueError("This empty index was opened without an embedding dimension: open it with the model's.")
        return self._dimension

    def _open_store(self) -> TantivyStore:
        if self._store is None:
            raise IndexUnavailable("The index has been closed; open it again to use it.")
        return self._store

    def _load(self, store: TantivyStore) -> Snapshot:
        """Read every chunk of the latest commit. The commit number is read first, so a commit
        that lands meanwhile makes the snapshot look stale (and reload) rather than be missed."""
        opstamp = store.committed_opstamp()
        searcher = store.latest_searcher()
        stored = sorted(store.read_all(searcher), key=lambda row: (row[1].source, row[0]))
        if stored and self._dimension is None:
            self._dimension = stored[0][1].vector.shape[0]
        if stored and stored[0][1].vector.shape != (self._dimension,):
            raise IndexUnavailable(
                f"The index at {store.path} holds {stored[0][1].vector.shape[0]}-wide vectors but the "
                f"embedding model makes {self._dimension}-wide ones: use the model the index was built "
                "with, or move the index away and ingest the documents again."
            )
        chunks = [chunk for _, chunk, _ in stored]
        fingerprints = {chunk.source: fingerprint for _, chunk, fingerprint in stored}
        return Snapshot.from_chunks(chunks, fingerprints, self._dimension or 0, searcher, opstamp)

    def _current(self) -> Snapshot:
        """The snapshot of the latest commit, reloaded if another process has committed since."""
        store = self._open_store()
        snapshot = self._snapshot
        if store.committed_opstamp() == snapshot.opstamp:
            return snapshot
        with self._lock:
            store = self._open_store()
            if store.committed_opstamp() != self._snapshot.opstamp:
                self._snapshot = self._load(store)
            return self._snapshot

    def _write(self, documents: Mapping[str, Sequence[Chunk]], fingerprints: Mapping[str, str]) -> dict[str, int]:
        """Replace each source's chunks and fingerprint in one commit for all of them (a commit
        writes new segment files, and tantivy later merges them, so fewer commits write fewer
        bytes); returns how many chunks each source had."""
        with self._lock:
            store = self._open_store()
            with store.writer() as writer:
                snapshot = self._snapshot
                if writer.base_opstamp != snapshot.opstamp:
                    snapshot = self._load(store)
                had = {source: block.count if (block := snapshot.block(source)) else 0 for source in documents}
                changed = {source: chunks for source, chunks in documents.items() if chunks or had[source]}
                if not changed:
                    return had
                for source, chunks in changed.items():
                    writer.replace(source, chunks, fingerprints.get(source, ""))
                opstamp = writer.commit()
                self._snapshot = snapshot.replaced(changed, fingerprints, store.latest_searcher(), opstamp)
        return had

    def _keyword(self, snapshot: Snapshot, query: str, k: int, source: list[str] | None) -> list[tuple[int, float]]:
        hits = self._open_store().keyword(snapshot.searcher, query, k, source)
        return [(snapshot.row(hit.source_key, hit.position), hit.score) for hit in hits]


