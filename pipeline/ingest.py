"""The ingestion job: documents on disk -> pages -> overlapping chunks -> embeddings -> the index.

Chunk ids are a hash of the source and the chunk's text (and which copy of that text in the source
it is), so re-ingesting a file gives every unchanged chunk the id it had and `replace_source` swaps
its chunks in place instead of adding a second copy. A turn stores the ids of the passages it cited:
after a re-ingest an old id finds the very text that was cited, or nothing once that text is gone,
never other text that took its place.
"""

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from pipeline.documents import Page, read_document
from pipeline.embeddings import Embedder
from pipeline.errors import ConfigError, IngestError
from pipeline.index import Chunk, ChunkIndex

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class IngestSummary:
    files: int = 0
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0
    cut: int = 0  # chunks longer than the embedding model reads: their ends are not searchable by meaning
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about files indexed in part (pages with no text layer)


def chunk_id(source: str, text: str, occurrence: int) -> str:
    """32 hex digits for the `occurrence`-th chunk (from 0) of `source` whose text is `text`.

    The page is left out so that a chunk moved to another page by an edit keeps its id."""
    return hashlib.sha256(f"{source}\x00{occurrence}\x00{text}".encode()).hexdigest()[:32]


class TokenSplitter:
    """Splits text into chunks of at most `chunk_tokens` word pieces of the embedding model's own
    tokenizer, neighbours sharing about `overlap_tokens` (between half and all of it).

    Hand-written packing on top of the library's splitter, because RecursiveCharacterTextSplitter
    overlaps only when it merges splits smaller than the overlap: two paragraphs that each fill most
    of a chunk share nothing. Here the library first cuts the text at paragraph, line and word
    boundaries into pieces of at most half the overlap, so every chunk boundary can carry the
    overlap; chunks are then cut from the original text, so its line breaks survive."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", chunk_tokens: int, overlap_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        # The library measures every word of a long paragraph on its own; words repeat, so a cache
        # makes splitting several times faster (as `from_huggingface_tokenizer` does, but cached).
        self._count = lru_cache(maxsize=1 << 16)(lambda piece: len(tokenizer.tokenize(piece)))
        self._pieces = RecursiveCharacterTextSplitter(
            chunk_size=max(1, overlap_tokens // 2) if overlap_tokens else chunk_tokens,
            chunk_overlap=0,
            length_function=self._count,
            add_start_index=True,
        )

    def split_text(self, text: str) -> list[str]:
        """The chunks of `text`, in order, each a slice of it; none for blank text."""
        pieces = self._pieces.create_documents([text])
        starts = [piece.metadata["start_index"] for piece in pieces]
        ends = [start + len(piece.page_content) for start, piece in zip(starts, pieces, strict=True)]
        sizes = [self._count(piece.page_content) for piece in pieces]
        chunks = []
        first = 0  # the first piece of the chunk being made
        while first < len(pieces):
            end, total = first + 1, sizes[first]
            while end < len(pieces) and total + sizes[end] <= self.chunk_tokens:
                total += sizes[end]
                end += 1
            chunks.append(text[starts[first] : ends[end - 1]])
            if end == len(pieces):
                break
            following, shared = end, 0  # the next chunk repeats the last pieces that fit in the overlap
            while following - 1 > first and shared + sizes[following - 1] <= self.overlap_tokens:
                following -= 1
                shared += sizes[following]
            first = following
        return chunks


def make_splitter(embedder: Embedder, chunk_tokens: int, overlap_tokens: int) -> TokenSplitter:
    """A splitter whose chunks the embedder reads whole: `chunk_tokens` word pieces of its tokenizer
    at most, plus the model's special tokens, within its `max_seq_length`. Raises ConfigError when
    they do not fit or the overlap is not smaller than the chunk."""
    if overlap_tokens >= chunk_tokens:
        raise ConfigError(
            f"PLUMB_CHUNK_OVERLAP_TOKENS ({overlap_tokens}) must be smaller than PLUMB_CHUNK_TOKENS ({chunk_tokens})."
        )
    room = embedder.max_tokens - embedder.tokenizer.num_special_tokens_to_add()
    if chunk_tokens > room:
        raise ConfigError(
            f"PLUMB_CHUNK_TOKENS ({chunk_tokens}) is more than the embedding model reads: at most {room} word pieces."
        )
    return TokenSplitter(embedder.tokenizer, chunk_tokens, overlap_tokens)


def split_pages(pages: list[Page], splitter: TokenSplitter) -> list[tuple[str, Page, str]]:
    """(chunk id, page, text) for every chunk; chunks never cross a page, so each cites one page."""
    pieces = []
    occurrences: Counter[str] = Counter()  # chunks of this source seen so far, by text
    for page in pages:
        for text in splitter.split_text(page.text):
            pieces.append((chunk_id(page.source, text, occurrences[text]), page, text))
            occurrences[text] += 1
    return pieces


# Chunks of many files are encoded in one call: sentence-transformers sorts a call's texts by length
# before batching, so a large mixed call pads far less than one small call per file (measured by
# bench/bench_ingest.py: 592 chunks took 14.1 s file by file, 11.4 s in groups of 512 or more).
ENCODE_GROUP_CHUNKS = 1024


@dataclass(frozen=True)
class IngestProgress:
    """Where a run stands, for a progress bar. Files are read ahead of encoding, so `chunks` (found
    in the files read so far) grows while files are read and is the run's total once
    `files_read == files`; `chunks_encoded` rises by one encoding batch at a time up to it."""

    files: int
    files_read: int = 0
    chunks: int = 0
    chunks_encoded: int = 0


@dataclass
class ParsedFile:
    """One document read and split, waiting for its vectors."""

    path: Path
    pages: list[Page]
    pieces: list[tuple[str, Page, str]]


def ingest_files(
    files: list[Path],
    index: ChunkIndex,
    embedder: Embedder,
    splitter: TokenSplitter,
    progress: Callable[[IngestProgress], None] = lambda state: None,
    ocr: bool = False,
) -> IngestSummary:
    """Ingest `files` (see `documents.find_files`). A document that cannot be read is recorded in
    `skipped` with the reason and the run goes on; `progress` is called after each file is read
    and after each encoding batch (`embedder.batch_size` chunks). Files are read and split one by
    one, then encoded and indexed in groups of about ENCODE_GROUP_CHUNKS chunks, one index write
    per group (in the embedded index, one commit); each file's chunks are replaced in one step.
    With `ocr`, scanned PDF pages are read by OCR (see `documents.read_document`)."""
    summary = IngestSummary()
    started = time.perf_counter()
    state = IngestProgress(files=len(files))
    group: list[ParsedFile] = []
    waiting = 0  # chunks in `group`
    for path in files:
        try:
            document = read_document(path, ocr)
        except IngestError as exc:
            summary.skipped.append(str(exc))
            state = replace(state, files_read=state.files_read + 1)
            progress(state)
            continue
        summary.notes.extend(document.notes)
        group.append(ParsedFile(path, document.pages, split_pages(document.pages, splitter)))
        waiting += len(group[-1].pieces)
        state = replace(state, files_read=state.files_read + 1, chunks=state.chunks + len(group[-1].pieces))
        progress(state)
        if waiting >= ENCODE_GROUP_CHUNKS:
            state = _index_group(group, index, embedder, summary, state, progress)
            group, waiting = [], 0
    _index_group(group, index, embedder, summary, state, progress)
    summary.seconds = time.perf_counter() - started
    return summary


def _index_group(
    group: list[ParsedFile],
    index: ChunkIndex,
    embedder: Embedder,
    summary: IngestSummary,
    state: IngestProgress,
    progress: Callable[[IngestProgress], None],
) -> IngestProgress:
    """Encode and index `group`; returns `state` advanced by the chunks encoded."""

    def encoded(count: int) -> None:
        nonlocal state
        state = replace(state, chunks_encoded=state.chunks_encoded + count)
        progress(state)

    vectors = _encode_by_batch(embedder, [text for parsed in group for _, _, text in parsed.pieces], encoded)
    offset = 0
    documents: dict[str, list[Chunk]] = {}
    for parsed in group:
        mine = vectors[offset : offset + len(parsed.pieces)]
        offset += len(parsed.pieces)
        chunks = [
            Chunk(chunk_id=cid, source=page.source, page=page.page, text=text, vector=vector)
            for (cid, page, text), vector in zip(parsed.pieces, mine, strict=True)
        ]
        documents[parsed.pages[0].source] = chunks
        summary.files += 1
        summary.pages += len(parsed.pages)
        summary.chunks += len(chunks)
        summary.cut += embedder.count_cut([chunk.text for chunk in chunks])
    # One write for the group: an interrupted run leaves each file either as it was or wholly new.
    index.replace_sources(documents)
    return state


def _encode_by_batch(embedder: Embedder, texts: list[str], encoded: Callable[[int], None]) -> np.ndarray:
    """`embedder.encode(texts)` one batch at a time, calling `encoded(batch length)` after each.

    Hand-written because sentence-transformers reports progress only to its own tqdm bar. It sorts
    one call's texts longest first before batching; sorting the same way here makes the same
    batches, so encoding a group still pads no more than one call would."""
    if not texts:
        return embedder.encode([])
    order = np.argsort([-len(text) for text in texts], kind="stable")
    batches = []
    for start in range(0, len(texts), embedder.batch_size):
        batches.append(embedder.encode([texts[i] for i in order[start : start + embedder.batch_size]]))
        encoded(len(batches[-1]))
    return np.concatenate(batches)[np.argsort(order)]
