"""The ingestion job: documents on disk -> pages -> overlapping chunks -> embeddings -> the index.

Chunk ids are a hash of source, page and position, so re-ingesting a file produces the same ids and
`replace_source` swaps its chunks in place instead of adding a second copy.
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from langchain_text_splitters import RecursiveCharacterTextSplitter

from pipeline.documents import Page, read_pages
from pipeline.embeddings import Embedder
from pipeline.errors import IngestError
from pipeline.index import Chunk, ChunkIndex


@dataclass
class IngestSummary:
    files: int = 0
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


def chunk_id(source: str, page: int, ordinal: int) -> str:
    return hashlib.sha256(f"{source}\x00{page}\x00{ordinal}".encode()).hexdigest()[:32]


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    if chunk_overlap >= chunk_size:
        raise ValueError(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size}).")
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def split_pages(pages: list[Page], splitter: RecursiveCharacterTextSplitter) -> list[tuple[str, Page, str]]:
    """(chunk id, page, text) for every chunk; chunks never cross a page, so each cites one page."""
    pieces = []
    for page in pages:
        for ordinal, text in enumerate(splitter.split_text(page.text)):
            pieces.append((chunk_id(page.source, page.page, ordinal), page, text))
    return pieces


def ingest_file(path: Path, index: ChunkIndex, embedder: Embedder, splitter: RecursiveCharacterTextSplitter) -> tuple[int, int]:
    """Index one document; returns (pages, chunks)."""
    pages = read_pages(path)
    pieces = split_pages(pages, splitter)
    vectors = embedder.encode([text for _, _, text in pieces])
    chunks = [
        Chunk(chunk_id=cid, source=page.source, page=page.page, text=text, vector=vector)
        for (cid, page, text), vector in zip(pieces, vectors, strict=True)
    ]
    index.replace_source(pages[0].source, chunks)
    return len(pages), len(chunks)


def ingest_files(
    files: list[Path],
    index: ChunkIndex,
    embedder: Embedder,
    splitter: RecursiveCharacterTextSplitter,
    progress: Callable[[Path], None] = lambda path: None,
) -> IngestSummary:
    """Ingest `files` (see `documents.find_files`). A document that cannot be read is recorded in
    `skipped` with the reason and the run goes on; `progress` is called after each file."""
    summary = IngestSummary()
    started = time.perf_counter()
    for path in files:
        try:
            pages, chunks = ingest_file(path, index, embedder, splitter)
        except IngestError as exc:
            summary.skipped.append(str(exc))
        else:
            summary.files += 1
            summary.pages += pages
            summary.chunks += chunks
        progress(path)
    summary.seconds = time.perf_counter() - started
    return summary
