"""Writes waiting for DynamoDB, kept on local disk so that neither an outage nor a restart loses one.

SQLite in WAL mode with `synchronous=FULL`: a record is on disk (fsync'd) when `put` returns.
Records come back out in the order they went in; one is removed only after it was stored.
"""

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pipeline.records import Feedback, Turn
from pipeline.settings import Settings

KINDS: dict[str, type[Turn] | type[Feedback]] = {"turn": Turn, "feedback": Feedback}


def outbox_path(settings: Settings) -> Path:
    return settings.data_dir / "outbox.sqlite3"


class Outbox:
    """A durable first-in first-out queue of turns and feedback, shared safely by the app's threads
    (one connection behind a lock) and by other processes (SQLite's own file locking)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            "seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL, queued_at TEXT NOT NULL)"
        )

    def put(self, record: Turn | Feedback) -> None:
        kind = "turn" if isinstance(record, Turn) else "feedback"
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (kind, body, queued_at) VALUES (?, ?, ?)",
                (kind, record.model_dump_json(), datetime.now(UTC).isoformat()),
            )

    def peek(self) -> tuple[int, Turn | Feedback] | None:
        """The oldest waiting record with its sequence number, or None when nothing waits."""
        with self._lock:
            row = self._db.execute("SELECT seq, kind, body FROM outbox ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        seq, kind, body = row
        return seq, KINDS[kind].model_validate_json(body)

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
