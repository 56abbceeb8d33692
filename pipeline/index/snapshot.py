"""The in-memory half of the embedded index: every chunk's vector in one matrix, its partitions
for dense search, and the tantivy searcher of the same commit, so that dense and keyword results
always describe the same data.

A snapshot is never changed: a write builds the next one and swaps it in, so searching threads
need no lock. Rows are grouped by source, which makes a source one slice of the matrix.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tantivy

from pipeline.index.base import Chunk, Hit, Places
from pipeline.index.partitions import Partitions
from pipeline.index.tantivy_store import source_key


@dataclass(frozen=True)
class Block:
    """The rows of one source: `start` to `start + count`, and the fingerprint they were written with."""

    source: str
    start: int
    count: int
    fingerprint: str


def _matrix(chunks: Sequence[Chunk], dimension: int) -> np.ndarray:
    return np.array([c.vector for c in chunks], dtype=np.float32).reshape(len(chunks), dimension)


@dataclass(frozen=True)
class Snapshot:
    vectors: np.ndarray
    chunk_ids: list[str]
    sources: list[str]
    pages: list[int]
    page_labels: list[str]
    sections: list[str]
    texts: list[str]
    blocks: dict[int, Block]  # by source_key(source)
    partitions: Partitions | None  # None: too few rows, dense search scans them all
    searcher: tantivy.Searcher
    opstamp: int

    @classmethod
    def from_chunks(
        cls,
        chunks: Sequence[Chunk],
        fingerprints: dict[str, str],
        dimension: int,
        searcher: tantivy.Searcher,
        opstamp: int,
    ) -> "Snapshot":
        """A snapshot of `chunks`, which must come grouped by source; `fingerprints` by source."""
        blocks: dict[int, Block] = {}
        for row, chunk in enumerate(chunks):
            key = source_key(chunk.source)
            count = blocks[key].count if key in blocks else 0
            blocks[key] = Block(chunk.source, row - count, count + 1, fingerprints[chunk.source])
        vectors = _matrix(chunks, dimension)
        return cls(
            vectors=vectors,
            chunk_ids=[c.chunk_id for c in chunks],
            sources=[c.source for c in chunks],
            pages=[c.page for c in chunks],
            page_labels=[c.page_label for c in chunks],
            sections=[c.section for c in chunks],
            texts=[c.text for c in chunks],
            blocks=blocks,
            partitions=Partitions.train(vectors),
            searcher=searcher,
            opstamp=opstamp,
        )

    def block(self, source: str) -> Block | None:
        return self.blocks.get(source_key(source))

    def replaced(
        self,
        documents: Mapping[str, Sequence[Chunk]],
        fingerprints: Mapping[str, str],
        searcher: tantivy.Searcher,
        opstamp: int,
    ) -> "Snapshot":
        """This snapshot with each source's chunks in `documents` as its only rows (none: the
        source is gone), written with its fingerprint in `fingerprints` ("" when absent). Kept rows
        keep their order; the new rows follow, source by source."""
        replaced_keys = {source_key(source) for source in documents}
        kept = sorted((block for key, block in self.blocks.items() if key not in replaced_keys), key=lambda b: b.start)
        rows = np.concatenate([np.arange(b.start, b.start + b.count) for b in kept] + [np.empty(0, dtype=np.int64)])
        blocks, start = {}, 0
        for block in kept:
            blocks[source_key(block.source)] = Block(block.source, start, block.count, block.fingerprint)
            start += block.count
        added = [chunk for source, chunks in documents.items() for chunk in chunks]
        for source, chunks in documents.items():
            if chunks:
                blocks[source_key(source)] = Block(source, start, len(chunks), fingerprints.get(source, ""))
                start += len(chunks)
        new_vectors = _matrix(added, self.vectors.shape[1])
        vectors = np.concatenate([self.vectors[rows], new_vectors])
        partitions = self.partitions and self.partitions.replaced(rows, new_vectors)
        return Snapshot(
            vectors=vectors,
            chunk_ids=[self.chunk_ids[row] for row in rows] + [c.chunk_id for c in added],
            sources=[self.sources[row] for row in rows] + [c.source for c in added],
            pages=[self.pages[row] for row in rows] + [c.page for c in added],
            page_labels=[self.page_labels[row] for row in rows] + [c.page_label for c in added],
            sections=[self.sections[row] for row in rows] + [c.section for c in added],
            texts=[self.texts[row] for row in rows] + [c.text for c in added],
            blocks=blocks,
            partitions=partitions or Partitions.train(vectors),
            searcher=searcher,
            opstamp=opstamp,
        )

    def nearest(self, query_vector: np.ndarray, k: int, sources: list[str] | None) -> list[tuple[int, float]]:
        """The k rows nearest by cosine (rows and query are unit vectors), best first: from the
        nearest partitions when there are partitions, else (and within the given sources) exactly."""
        if sources is not None:
            blocks = [block for source in dict.fromkeys(sources) if (block := self.block(source))]
            if not blocks:
                return []
            if len(blocks) == 1:
                return _best(self.vectors, slice(blocks[0].start, blocks[0].start + blocks[0].count), query_vector, k)
            rows = np.concatenate([np.arange(block.start, block.start + block.count) for block in blocks])
            return _best(self.vectors, rows, query_vector, k)
        if self.partitions is not None:
            rows = self.partitions.candidates(query_vector)
            if len(rows) >= k:
                return _best(self.vectors, rows, query_vector, k)
        return _best(self.vectors, slice(0, len(self.vectors)), query_vector, k)

    def places(self, source: str) -> Places | None:
        """The pages and sections of `source`'s rows (one slice, since rows are grouped by source);
        None when it is not indexed."""
        block = self.block(source)
        if block is None:
            return None
        rows = slice(block.start, block.start + block.count)
        return Places(
            pages=frozenset(zip(self.pages[rows], self.page_labels[rows])),
            sections=frozenset(self.sections[rows]),
        )

    def row(self, key: int, position: int) -> int:
        """The row of a keyword hit; the searcher and the blocks come from one commit."""
        return self.blocks[key].start + position

    def chunk(self, row: int) -> Chunk:
        return Chunk(
            chunk_id=self.chunk_ids[row],
            source=self.sources[row],
            page=self.pages[row],
            text=self.texts[row],
            vector=self.vectors[row].copy(),
            page_label=self.page_labels[row],
            section=self.sections[row],
        )

    def hit(self, row: int, score: float, query_vector: np.ndarray) -> Hit:
        return Hit(
            chunk_id=self.chunk_ids[row],
            source=self.sources[row],
            page=self.pages[row],
            text=self.texts[row],
            score=score,
            similarity=float(self.vectors[row] @ query_vector),
            page_label=self.page_labels[row],
            section=self.sections[row],
        )


def _best(vectors: np.ndarray, rows: slice | np.ndarray, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The best k of `rows` (a slice or row numbers) by dot product, best first."""
    # einsum rather than `@`: `@` hands the product to multithreaded BLAS, whose thread handoffs
    # cost more than they save on a small machine shared with other work (8 ms against 2 ms for
    # 10k rows on the 2-core development machine); one thread per search also suits several
    # users searching at once.
    scores = np.einsum("ij,j->i", vectors[rows], query_vector)
    k = min(k, len(scores))
    if k == 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    found = rows[top] if isinstance(rows, np.ndarray) else top + rows.start
    return [(int(row), float(score)) for row, score in zip(found, scores[top])]
