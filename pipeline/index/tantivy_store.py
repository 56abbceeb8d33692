"""The on-disk half of the embedded index: one tantivy index that holds every chunk, its text
(analysed for BM25), its metadata and its vector (as stored bytes).

Keeping everything in one tantivy index makes each write a single atomic commit: a crash or an
error before `commit()` leaves the previous commit untouched. Tantivy's lock file lets one writer
at a time work on the directory, whatever the process.
"""

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

import numpy as np
import tantivy

from pipeline.errors import IndexUnavailable
from pipeline.index.base import Chunk

ANALYZER = "plumb_english"
WRITER_HEAP_BYTES = 64_000_000
WRITE_LOCK_TIMEOUT_S = 30.0


def source_key(source: str) -> int:
    """A 64-bit number for `source`: tantivy can read numbers of many hits at once (fast fields),
    not strings, and keyword hits are matched to in-memory rows by (source key, position)."""
    return int.from_bytes(blake2b(source.encode(), digest_size=8).digest(), "big")


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("source", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("source_key", fast=True)
    builder.add_unsigned_field("position", stored=True, fast=True)
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("fingerprint", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("page", stored=True)
    builder.add_text_field("page_label", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("section", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("text", stored=True, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_bytes_field("vector", stored=True)
    return builder.build()


def _english_analyzer() -> tantivy.TextAnalyzer:
    """Words and numbers as tokens, lower-cased, English stop words dropped, stemmed: so "walls"
    finds "wall", and clause numbers like "01 13 10" or part codes stay searchable."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


@dataclass(frozen=True)
class KeywordHit:
    source_key: int
    position: int
    score: float


class ChunkWriter:
    """One write under tantivy's lock. `base_opstamp` is the commit the write starts from."""

    def __init__(self, writer: tantivy.IndexWriter):
        self._writer = writer
        self.base_opstamp: int = writer.commit_opstamp

    def replace(self, source: str, chunks: Sequence[Chunk], fingerprint: str) -> None:
        """Delete `source`'s chunks and add `chunks`, each carrying the source's `fingerprint`."""
        self._writer.delete_documents_by_term("source", source)
        key = source_key(source)
        for position, chunk in enumerate(chunks):
            document = tantivy.Document()
            document.add_text("source", source)
            document.add_unsigned("source_key", key)
            document.add_unsigned("position", position)
            document.add_text("chunk_id", chunk.chunk_id)
            document.add_text("fingerprint", fingerprint)
            document.add_integer("page", chunk.page)
            document.add_text("page_label", chunk.page_label)
            document.add_text("section", chunk.section)
            document.add_text("text", chunk.text)
            document.add_bytes("vector", np.asarray(chunk.vector, dtype=np.float32).tobytes())
            self._writer.add_document(document)

    def commit(self) -> int:
        return self._writer.commit()


class TantivyStore:
    """The tantivy index under `path`, opened with a manually reloaded reader so that a searcher
    only moves on when the in-memory half of the index moves with it."""

    def __init__(self, path: Path):
        self.path = path
        self.schema = _schema()
        self._analyzer = _english_analyzer()
        self._meta_cache: tuple[tuple[int, int, int], int] | None = None
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(self.schema, path=str(path))
        except (OSError, ValueError) as error:
            raise IndexUnavailable(
                f"Cannot open the index at {path} ({error}). If it was made by another version of "
                "Plumbline, move it away and ingest the documents again."
            ) from error
        self._index.register_tokenizer(ANALYZER, self._analyzer)
        self._index.config_reader(reload_policy="Manual")

    def committed_opstamp(self) -> int:
        """The number of the last commit on disk, from any process.

        Tantivy's Python API cannot tell which commit a searcher shows, so this reads the
        `opstamp` of `meta.json`, the file tantivy replaces atomically at each commit (merges
        rewrite it with the same opstamp). The parsed value is cached by the file's identity
        because every search asks."""
        meta = self.path / "meta.json"
        try:
            stat = meta.stat()
        except FileNotFoundError:
            return 0
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._meta_cache
        if cached is None or cached[0] != signature:
            cached = (signature, int(json.loads(meta.read_text())["opstamp"]))
            self._meta_cache = cached
        return cached[1]

    def latest_searcher(self) -> tantivy.Searcher:
        self._index.reload()
        return self._index.searcher()

    @contextmanager
    def writer(self) -> Iterator[ChunkWriter]:
        """Hold tantivy's write lock for one write; anything not committed is rolled back."""
        writer = self._acquire_writer()
        try:
            yield ChunkWriter(writer)
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()

    def _acquire_writer(self) -> tantivy.IndexWriter:
        """Wait for a writer in another process to finish rather than fail at once."""
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT_S
        while True:
            try:
                return self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
            except ValueError as error:
                if "LockBusy" not in str(error):
                    raise
                if time.monotonic() > deadline:
                    raise IndexUnavailable(
                        f"Another process has been writing to the index at {self.path} for "
                        f"{WRITE_LOCK_TIMEOUT_S:.0f} s; try again when it has finished."
                    ) from error
                time.sleep(0.05)

    def read_all(self, searcher: tantivy.Searcher) -> list[tuple[int, Chunk, str]]:
        """Every chunk the searcher sees, with its position in its source and its source's fingerprint."""
        if searcher.num_docs == 0:
            return []
        hits = searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False).hits
        chunks = []
        for _, address in hits:
            document = searcher.doc(address)
            chunk = Chunk(
                chunk_id=document.get_first("chunk_id"),
                source=document.get_first("source"),
                page=document.get_first("page"),
                text=document.get_first("text"),
                vector=np.frombuffer(document.get_first("vector"), dtype=np.float32),
                page_label=document.get_first("page_label"),
                section=document.get_first("section"),
            )
            chunks.append((document.get_first("position"), chunk, document.get_first("fingerprint")))
        return chunks

    def find_ids(self, searcher: tantivy.Searcher, chunk_ids: Sequence[str]) -> list[tuple[int, int]]:
        """(source key, position) of every chunk the searcher holds under one of `chunk_ids`."""
        wanted = set(chunk_ids)
        if not wanted:
            return []
        should = tantivy.Occur.Should
        query = tantivy.Query.boolean_query(
            [(should, tantivy.Query.term_query(self.schema, "chunk_id", chunk_id)) for chunk_id in wanted]
        )
        # Ingestion makes an id unique in the whole index (it hashes the source), so this limit finds all.
        addresses = [address for _, address in searcher.search(query, len(wanted), count=False).hits]
        keys = searcher.fast_field_values("source_key", addresses)
        positions = searcher.fast_field_values("position", addresses)
        return list(zip(keys, positions))

    def keyword(self, searcher: tantivy.Searcher, query: str, limit: int, sources: list[str] | None) -> list[KeywordHit]:
        """BM25 over the analysed text: any query word may match (OR), as search boxes expect."""
        words = dict.fromkeys(self._analyzer.analyze(query))
        if not words:
            return []
        should = tantivy.Occur.Should
        text_query = tantivy.Query.boolean_query(
            [(should, tantivy.Query.term_query(self.schema, "text", word)) for word in words]
        )
        if sources is not None:
            if not sources:
                return []
            any_source = [(should, tantivy.Query.term_query(self.schema, "source", source)) for source in sources]
            only_source = tantivy.Query.const_score_query(tantivy.Query.boolean_query(any_source), 0.0)
            text_query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, text_query), (tantivy.Occur.Must, only_source)]
            )
        hits = searcher.search(text_query, limit, count=False).hits
        addresses = [address for _, address in hits]
        keys = searcher.fast_field_values("source_key", addresses)
        positions = searcher.fast_field_values("position", addresses)
        return [KeywordHit(k, p, score) for k, p, (score, _) in zip(keys, positions, hits)]
