"""The original files of the indexed documents, kept beside the index so the app can show a cited
page as its reader sees it and offer the file itself.

The index holds text and vectors only, so ingestion stores each document's bytes here too: a file
named by the SHA-256 of its bytes (and its format's suffix) under `files/`, and a catalogue (SQLite,
safe for an ingest and the app at once) that maps a document's name to it. A document is looked up
by the name the index gives it, and the file's path is made from the digest the catalogue holds, so
nothing a request carries ever becomes a path. Two documents with the same bytes share one file; a
file is removed once no document names it.
"""

import hashlib
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.documents import SUFFIXES


@dataclass(frozen=True)
class Original:
    """One stored original: the document's name, the file holding its bytes, and the name to
    offer it under when downloaded (the last part of the document's name)."""

    source: str
    path: Path

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.source).name

    @property
    def suffix(self) -> str:
        return self.path.suffix


class OriginalStore:
    """Originals under `folder` (see the module doc)."""

    def __init__(self, folder: Path) -> None:
        self._files = folder / "files"
        self._files.mkdir(parents=True, exist_ok=True)
        self._catalogue = folder / "catalogue.sqlite3"
        with closing(self._connect()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS originals (source TEXT PRIMARY KEY, file TEXT NOT NULL)")

    def put(self, source: str, data: bytes) -> None:
        """Keep `data` as the original of `source`, replacing the one it had."""
        file = hashlib.sha256(data).hexdigest() + _suffix(source)
        path = self._files / file
        if not path.exists():
            partial = path.with_name(f"{file}.{os.getpid()}.partial")
            partial.write_bytes(data)
            partial.replace(path)  # atomic: a reader sees the whole file or none
        with closing(self._connect()) as db, db:
            old = self._file(db, source)
            db.execute("INSERT OR REPLACE INTO originals (source, file) VALUES (?, ?)", (source, file))
        if old and old != file:
            self._drop_unused(old)

    def get(self, source: str) -> Original | None:
        """The original of `source`, or None when none is stored (a document ingested before
        originals were kept, or not indexed)."""
        with closing(self._connect()) as db:
            file = self._file(db, source)
        if file is None or not (self._files / file).exists():
            return None
        return Original(source, self._files / file)

    def has(self, source: str) -> bool:
        return self.get(source) is not None

    def delete(self, source: str) -> None:
        with closing(self._connect()) as db, db:
            file = self._file(db, source)
            db.execute("DELETE FROM originals WHERE source = ?", (source,))
        if file:
            self._drop_unused(file)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._catalogue, timeout=30)

    @staticmethod
    def _file(db: sqlite3.Connection, source: str) -> str | None:
        row = db.execute("SELECT file FROM originals WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    def _drop_unused(self, file: str) -> None:
        with closing(self._connect()) as db:
            used = db.execute("SELECT 1 FROM originals WHERE file = ? LIMIT 1", (file,)).fetchone()
        if not used:
            (self._files / file).unlink(missing_ok=True)


def _suffix(source: str) -> str:
    """The format's suffix, which the document readers choose by; only the known ones are kept."""
    suffix = PurePosixPath(source).suffix.lower()
    return suffix if suffix in SUFFIXES else ""
