"""What every vector index offers the rest of Plumbline.

LangChain's `VectorStore` has no keyword or hybrid search and no delete-by-document, the two things
this product leans on, so the index is this small protocol and LangChain meets it at the retriever
(`pipeline.retriever`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np

SearchMode = Literal["dense", "keyword", "hybrid"]
# Search within one document (its name) or several (their names); None searches every document.
SourceFilter = str | Sequence[str] | None


def source_names(source: SourceFilter) -> list[str] | None:
    """A source filter as a list of names (None: no filter; []: no document, so no hit)."""
    if source is None:
        return None
    return [source] if isinstance(source, str) else list(source)


@dataclass(frozen=True)
class Chunk:
    """A passage of one page of one document, with its unit-length embedding. `page_label` is the
    page's printed label ("" when it has none), `section` the heading path of the Markdown or HTML
    section the passage lies in ("" when none): see `documents.Page`."""

    chunk_id: str
    source: str
    page: int
    text: str
    vector: np.ndarray
    page_label: str = ""
    section: str = ""


@dataclass(frozen=True)
class Hit:
    """A search result. `score` orders results within one search (its scale depends on the mode);
    `similarity` is always the cosine similarity of query and passage, so relevance can be judged
    the same way whatever the mode or backend."""

    chunk_id: str
    source: str
    page: int
    text: str
    score: float
    similarity: float
    page_label: str = ""
    section: str = ""


@dataclass(frozen=True)
class Places:
    """Where the chunks of one document lie: each page as (number, printed label) and each
    section's heading path, as `Chunk` gives them. An evaluation checks against these that the
    page or section a question expects is one the index holds."""

    pages: frozenset[tuple[int, str]]
    sections: frozenset[str]


class ChunkIndex(Protocol):
    """A persistent index of chunks with dense, keyword and hybrid search."""

    def replace_source(self, source: str, chunks: Sequence[Chunk], fingerprint: str = "") -> None:
        """Make `chunks` the only chunks of `source` (re-ingesting never duplicates), and remember
        `fingerprint` for it: ingestion's digest of the file and its chunk settings, compared on the
        next run to skip an unchanged file ("": none, never skipped)."""

    def replace_sources(
        self, documents: Mapping[str, Sequence[Chunk]], fingerprints: Mapping[str, str] | None = None
    ) -> None:
        """`replace_source` for each source in `documents`, with its fingerprint in `fingerprints`
        ("" when absent), in as few writes as the backend allows (one commit in the embedded index):
        ingestion writes its files a batch at a time."""

    def delete_source(self, source: str) -> int:
        """Remove every chunk of `source`; returns how many were removed."""

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int,
        mode: SearchMode = "hybrid",
        source: SourceFilter = None,
    ) -> list[Hit]:
        """The best `k` chunks for the query, best first, optionally only from `source`: one
        document's name or a sequence of names (`SourceFilter`)."""

    def get(self, chunk_ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids, in the order asked; an id the index does not hold (its text
        was edited or its document deleted) is left out. This is how a cited passage is found again."""

    def sources(self) -> dict[str, int]:
        """Every indexed document with its number of chunks."""

    def places(self, sources: Sequence[str]) -> dict[str, Places]:
        """The pages and sections of each of these documents (by exact name; one not indexed is
        left out), read from what the index keeps beside the vectors: no model, no search, and
        only these documents' chunks."""

    def fingerprints(self) -> dict[str, str]:
        """Every indexed document with the fingerprint it was last written with ("" when none)."""

    def close(self) -> None:
        """Release files and connections."""


def unit_vector(vector: np.ndarray, dimension: int, what: str) -> np.ndarray:
    """`vector` scaled to length 1 (so inner product is cosine similarity), or a ValueError that says what is wrong."""
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dimension,):
        raise ValueError(
            f"{what} has shape {array.shape}, but this index holds {dimension}-wide vectors: "
            "embed with the model the index was built with."
        )
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"{what} is zero or not finite; it cannot be compared by cosine similarity.")
    return array / norm


def checked_chunks(source: str, chunks: Sequence[Chunk], dimension: int) -> list[Chunk]:
    """Every index refuses bad input before anything is written, and stores unit vectors."""
    if not source:
        raise ValueError("A source (the document's path) is required.")
    seen: set[str] = set()
    checked = []
    for chunk in chunks:
        if chunk.source != source:
            raise ValueError(f"Chunk {chunk.chunk_id!r} belongs to {chunk.source!r}, not to {source!r}.")
        if chunk.chunk_id in seen:
            raise ValueError(f"Chunk id {chunk.chunk_id!r} appears twice in {source!r}.")
        seen.add(chunk.chunk_id)
        checked.append(replace(chunk, vector=unit_vector(chunk.vector, dimension, f"The vector of chunk {chunk.chunk_id!r}")))
    return checked
