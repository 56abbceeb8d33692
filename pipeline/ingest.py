"""The ingestion job: documents on disk -> pages -> overlapping chunks -> embeddings -> the index.

Chunk ids are a hash of the source and the chunk's text (and which copy of that text in the source
it is), so re-ingesting a file gives every unchanged chunk the id it had and `replace_source` swaps
its chunks in place instead of adding a second copy. A turn stores the ids of the passages it cited:
after a re-ingest an old id finds the very text that was cited, or nothing once that text is gone,
never other text that took its place.

A file whose bytes and chunk settings are those it was last ingested with is skipped: the index
keeps each document's fingerprint (`file_fingerprint`), so a re-run in another process, or an
ingest worker, knows it too. A document is a local file (`documents.SourceFile`) or an object in S3
(`s3_documents.S3Document`); both are a `DocumentFile`.

The index shows what the last read of each file found. A file indexed before that is read again and
now holds no text (emptied, or a scanned PDF read again without OCR) loses its earlier chunks. One
that cannot be read (an I/O or permission error, a broken or encrypted PDF) keeps them, and the
summary says so: what it holds now is unknown, and a file caught half-copied would otherwise vanish.
"""

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Protocol

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from pipeline.documents import READER_VERSION, Document, Page
from pipeline.embeddings import Embedder
from pipeline.errors import ConfigError, IngestError, NoTextError
from pipeline.index import Chunk, ChunkIndex
from pipeline.originals import OriginalStore

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class IngestSummary:
    files: int = 0
    unchanged: int = 0  # files skipped because their fingerprint is the one in the index
    pages: int = 0
    chunks: int = 0
    seconds: float = 0.0
    cut: int = 0  # chunks longer than the embedding model reads: their ends are not searchable by meaning
    skipped: list[str] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)  # indexed files that now hold no text: their chunks were removed
    notes: list[str] = field(default_factory=list)  # about files indexed in part (pages with no text layer)


class DocumentFile(Protocol):
    """A document to ingest, wherever it lives."""

    @property
    def source(self) -> str:
        """The name citations show and `--delete` takes."""

    def version(self) -> str:
        """A value that changes whenever the content does: a local file's SHA-256, an S3 object's
        ETag (known from the listing, so an unchanged object is never downloaded). OSError when it
        cannot be had."""

    def read(self, ocr: bool) -> Document:
        """The document's pages (`documents.read_document`); IngestError when it cannot be read."""

    def data(self) -> bytes:
        """The document's bytes, kept as its original (`originals.OriginalStore`); IngestError when
        they cannot be had."""


def file_fingerprint(file: DocumentFile, embedder: Embedder, splitter: "TokenSplitter", ocr: bool) -> str:
    """64 hex digits: the file's version (`DocumentFile.version`) together with what shapes its chunks
    and vectors (the readers' version, the embedding model, chunk and overlap tokens, and for a PDF
    whether OCR reads scans), so that changing a setting, or upgrading to readers that give other text,
    ingests a file again rather than skipping it. OSError if it cannot be read."""
    content = file.version()
    pdf_ocr = ocr and PurePosixPath(file.source).suffix.lower() == ".pdf"
    chunking = (splitter.chunk_tokens, splitter.overlap_tokens)
    shaping = (READER_VERSION, SPLITTER_VERSION, embedder.model_name, *chunking, pdf_ocr)
    settings = "\x00".join(map(str, shaping))
    return hashlib.sha256(f"{content}\x00{settings}".encode()).hexdigest()


def chunk_id(source: str, text: str, occurrence: int) -> str:
    """32 hex digits for the `occurrence`-th chunk (from 0) of `source` whose text is `text`.

    The page is left out so that a chunk moved to another page by an edit keeps its id."""
    return hashlib.sha256(f"{source}\x00{occurrence}\x00{text}".encode()).hexdigest()[:32]


# Raised whenever `TokenSplitter` cuts the same text differently (part of `file_fingerprint`).
# 2: table rows are not cut between chunks.
SPLITTER_VERSION = 2


class TokenSplitter:
    """Splits text into chunks of at most `chunk_tokens` word pieces of the embedding model's own
    tokenizer, neighbours sharing about `overlap_tokens` (between half and all of it).

    Hand-written packing on top of the library's splitter, because RecursiveCharacterTextSplitter
    overlaps only when it merges splits smaller than the overlap: two paragraphs that each fill most
    of a chunk share nothing. Here the library first cuts the text at paragraph, line and word
    boundaries into pieces of at most half the overlap, so every chunk boundary can carry the
    overlap; chunks are then cut from the original text, so its line breaks survive.

    Table rows are kept whole: a row is one line starting "|" (`html_text`), and a chunk cut inside
    a row leaves a value in one chunk and the name it belongs to in another. So a chunk that would
    end inside a row ends where the row starts, and the next chunk's overlap holds whole rows: the
    last row when it is at most half a chunk long, else none (the next chunk starts with the next
    row). A row longer than a chunk is still cut. Other lines are cut as before: in a PDF a line
    ends where the page wraps, and keeping such lines whole cost page hits in evaluation
    (bench/eval/README.md)."""

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", chunk_tokens: int, overlap_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        # The library measures every word of a long paragraph on its own; words repeat, so a cache
        # makes splitting several times faster (as `from_huggingface_tokenizer` does, but cached).
        # Texts longer than the model reads are measured on purpose, to be cut: `verbose=False`
        # keeps transformers from warning that they are too long for the model.
        self._count = lru_cache(maxsize=1 << 16)(lambda piece: len(tokenizer.tokenize(piece, verbose=False)))
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
        # line_start[i]: piece i starts a line (the pieces hold no whitespace at their edges)
        line_start = [True] + ["\n" in text[ends[i - 1] : starts[i]] for i in range(1, len(pieces))]
        chunks = []
        first = 0  # the first piece of the chunk being made
        while first < len(pieces):
            end, total = first + 1, sizes[first]
            while end < len(pieces) and total + sizes[end] <= self.chunk_tokens:
                total += sizes[end]
                end += 1
            end = self._end_before_cut_row(text, first, end, starts, line_start)
            chunks.append(text[starts[first] : ends[end - 1]])
            if end == len(pieces):
                break
            following, shared = end, 0  # the next chunk repeats the last pieces that fit in the overlap
            while following - 1 > first and shared + sizes[following - 1] <= self.overlap_tokens:
                following -= 1
                shared += sizes[following]
            first = self._overlap_start(text, first, following, end, sizes, starts, line_start)
        return chunks

    def _overlap_start(
        self, text: str, first: int, following: int, end: int, sizes: list[int], starts: list[int],
        line_start: list[bool],
    ) -> int:
        """The first piece of the chunk after the one of pieces `first` to `end` (exclusive), whose
        overlap would start at `following` (first < following <= end): inside a table row, moved so
        that the overlap holds whole rows (see the class docstring)."""
        row = next((i for i in range(following, first - 1, -1) if line_start[i]), None)
        if following == end or row is None or row == following or not text.startswith("|", starts[row]):
            return following
        later = next((i for i in range(following + 1, end) if line_start[i]), None)
        if later is not None:
            return later
        if not line_start[end]:  # this chunk ends inside a row longer than a chunk
            return following
        return row if row > first and sum(sizes[row:end]) <= self.chunk_tokens // 2 else end

    def _end_before_cut_row(self, text: str, first: int, end: int, starts: list[int], line_start: list[bool]) -> int:
        """`end`, or, when the chunk of pieces `first` to `end` (exclusive) would end inside a table
        row that starts within it, the start of that row."""
        if end == len(line_start) or line_start[end]:
            return end
        row = next((i for i in range(end - 1, first, -1) if line_start[i]), None)
        return row if row is not None and text.startswith("|", starts[row]) else end


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
    """(chunk id, page, text) for every chunk; chunks never cross a page (or a Markdown or HTML
    section: see `documents.Page`), so each cites one place."""
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

    file: DocumentFile
    fingerprint: str
    pages: list[Page]
    pieces: list[tuple[str, Page, str]]


def ingest_files(
    files: Sequence[DocumentFile],
    index: ChunkIndex,
    embedder: Embedder,
    splitter: TokenSplitter,
    progress: Callable[[IngestProgress], None] = lambda state: None,
    ocr: bool = False,
    originals: OriginalStore | None = None,
) -> IngestSummary:
    """Ingest `files` (see `documents.find_files`). A file whose fingerprint (`file_fingerprint`)
    is the one the index holds for its source is counted in `unchanged` and not read; a changed one
    replaces its source's chunks. A document that cannot be read or holds no text is recorded in
    `skipped` with the reason and the run goes on; one indexed before that now holds no text loses
    its chunks (and its original) and is named in `emptied`; `progress` is called after each file is read
    and after each encoding batch (`embedder.batch_size` chunks). Files are read and split one by
    one, then encoded and indexed in groups of about ENCODE_GROUP_CHUNKS chunks, one index write
    per group (in the embedded index, one commit); each file's chunks are replaced in one step.
    With `ocr`, scanned PDF pages are read by OCR (see `documents.read_document`). With `originals`,
    each indexed file's bytes are kept there too, and those of an unchanged file that has none yet."""
    summary = IngestSummary()
    started = time.perf_counter()
    state = IngestProgress(files=len(files))
    group: list[ParsedFile] = []
    waiting = 0  # chunks in `group`
    known = index.fingerprints()
    for file in files:
        parsed = _parse(file, known.get(file.source), embedder, splitter, ocr, summary)
        if parsed is None and originals and file.source in known and not originals.has(file.source):
            _keep_original(file, originals, summary)
        found = len(parsed.pieces) if parsed else 0
        if parsed:
            group.append(parsed)
            waiting += found
        state = replace(state, files_read=state.files_read + 1, chunks=state.chunks + found)
        progress(state)
        if waiting >= ENCODE_GROUP_CHUNKS:
            state = _index_group(group, index, embedder, summary, state, progress, originals)
            group, waiting = [], 0
    _index_group(group, index, embedder, summary, state, progress, originals)
    summary.seconds = time.perf_counter() - started
    return summary


def unlisted_sources(indexed: Iterable[str], files: Sequence[DocumentFile], collection: str) -> list[str]:
    """The `indexed` documents under `collection` (all of them when it is "") that `files`, the
    listing of whole folders, does not hold, sorted: files renamed or removed since they were
    ingested, or, without a collection, documents ingested from elsewhere. Never deleted here: a
    folder listed in part (a disk not mounted, a permission changed) would lose its documents."""
    collection = collection.strip("/")
    prefix = f"{collection}/" if collection else ""
    listed = {file.source for file in files}
    return sorted(source for source in indexed if source.startswith(prefix) and source not in listed)


def _parse(
    file: DocumentFile, known: str | None, embedder: Embedder, splitter: TokenSplitter, ocr: bool, summary: IngestSummary
) -> ParsedFile | None:
    """`file` read and split; None when its fingerprint is `known` (counted in `summary.unchanged`)
    or it cannot be read (the reason added to `summary.skipped`). A file that `known` says is indexed
    and that now holds no text is parsed as no pages, so its chunks are replaced by none."""
    try:
        fingerprint = file_fingerprint(file, embedder, splitter, ocr)
    except OSError as exc:
        summary.skipped.append(_skipped(f"{file.source}: cannot be read ({exc}).", known))
        return None
    if fingerprint == known:
        summary.unchanged += 1
        return None
    try:
        document = file.read(ocr)
    except NoTextError as exc:
        summary.skipped.append(str(exc))
        if known is None:
            return None
        summary.emptied.append(file.source)
        return ParsedFile(file, fingerprint, [], [])
    except IngestError as exc:
        summary.skipped.append(_skipped(str(exc), known))
        return None
    summary.notes.extend(document.notes)
    return ParsedFile(file, fingerprint, document.pages, split_pages(document.pages, splitter))


def _skipped(reason: str, known: str | None) -> str:
    """The reason a file was skipped, saying that its earlier text stays when it is indexed."""
    return reason if known is None else f"{reason} Its earlier text stays indexed."


def _index_group(
    group: list[ParsedFile],
    index: ChunkIndex,
    embedder: Embedder,
    summary: IngestSummary,
    state: IngestProgress,
    progress: Callable[[IngestProgress], None],
    originals: OriginalStore | None,
) -> IngestProgress:
    """Encode and index `group` (and keep its originals); returns `state` advanced by the chunks encoded."""

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
            Chunk(cid, page.source, page.page, text, vector, page_label=page.label, section=page.section)
            for (cid, page, text), vector in zip(parsed.pieces, mine, strict=True)
        ]
        documents[parsed.file.source] = chunks
        if not chunks:  # an indexed file that now holds no text (`_parse`): its chunks go
            continue
        summary.files += 1
        summary.pages += len({page.page for page in parsed.pages})  # a page may hold several sections
        summary.chunks += len(chunks)
        summary.cut += embedder.count_cut([chunk.text for chunk in chunks])
    # One write for the group: an interrupted run leaves each file either as it was or wholly new.
    index.replace_sources(documents, {parsed.file.source: parsed.fingerprint for parsed in group})
    if originals:
        for parsed in group:
            if parsed.pieces:
                _keep_original(parsed.file, originals, summary)
            else:
                originals.delete(parsed.file.source)
    return state


def _keep_original(file: DocumentFile, originals: OriginalStore, summary: IngestSummary) -> None:
    """Store the file's bytes as its original; a failure is a note, as the text is indexed already."""
    try:
        originals.put(file.source, file.data())
    except (OSError, IngestError) as exc:
        summary.notes.append(f"{file.source}: indexed, but its original could not be kept ({exc}).")


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
